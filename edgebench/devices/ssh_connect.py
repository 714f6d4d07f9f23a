"""Opening an SSH connection the way OpenSSH users expect: ~/.ssh/config aliases, a key file or the agent,
known_hosts verified by default, ProxyJump/ProxyCommand, timeouts and keepalive. Every failure becomes
one line that says what is wrong and how to fix it; no secret ever reaches a message or a log."""

from __future__ import annotations

import getpass
import logging
import os
import socket
from dataclasses import dataclass, field
from pathlib import Path

import paramiko

from edgebench.config import Connection
from edgebench.errors import EdgebenchError, ExitStatus

log = logging.getLogger("edgebench.ssh")


class Unreachable(EdgebenchError):
    """The network path failed (refused, timed out, dropped): worth a retry after a drop, unlike auth errors."""

    status = ExitStatus.DEVICE


@dataclass
class Target:
    """Where a host or alias really points once ~/.ssh/config is applied; profile fields win."""

    hostname: str
    port: int
    user: str
    key_files: list[str]
    proxy_jump: str | None = None
    proxy_command: str | None = None

    @property
    def label(self) -> str:
        return f"{self.user}@{self.hostname}:{self.port}"


@dataclass
class Session:
    """An open client plus the jump-host clients its socket runs through (closed together)."""

    client: paramiko.SSHClient
    target: Target
    jumps: list[paramiko.SSHClient] = field(default_factory=list)

    def active(self) -> bool:
        transport = self.client.get_transport()
        return bool(transport and transport.is_active())

    def close(self) -> None:
        for client in [self.client, *reversed(self.jumps)]:
            client.close()


def resolve(conn: Connection) -> Target:
    config_path = Path(conn.ssh_config).expanduser()
    config = paramiko.SSHConfig.from_path(str(config_path)) if config_path.is_file() else paramiko.SSHConfig()
    opts = config.lookup(conn.host or "localhost")
    keys = [conn.key_file] if conn.key_file else list(opts.get("identityfile", []))
    jump = opts.get("proxyjump")
    command = opts.get("proxycommand")
    return Target(
        hostname=opts.get("hostname", conn.host or "localhost"),
        port=conn.port or int(opts.get("port", 22)),
        user=conn.user or opts.get("user") or getpass.getuser(),
        key_files=[str(Path(k).expanduser()) for k in keys],
        proxy_jump=None if not jump or jump.lower() == "none" else jump,
        proxy_command=None if not command or command.lower() == "none" else command,
    )


class _UnknownHostKey(Exception):
    def __init__(self, hostname: str, key: paramiko.PKey) -> None:
        super().__init__(hostname)
        self.hostname, self.key = hostname, key


class _Refuse(paramiko.MissingHostKeyPolicy):
    def missing_host_key(self, client: paramiko.SSHClient, hostname: str, key: paramiko.PKey) -> None:
        raise _UnknownHostKey(hostname, key)


class _AcceptNew(paramiko.MissingHostKeyPolicy):
    """OpenSSH's StrictHostKeyChecking=accept-new: record an unknown key; a changed one is refused by paramiko."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def missing_host_key(self, client: paramiko.SSHClient, hostname: str, key: paramiko.PKey) -> None:
        client.get_host_keys().add(hostname, key.get_name(), key)
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        with os.fdopen(fd, "a") as f:
            f.write(f"{hostname} {key.get_name()} {key.get_base64()}\n")
        log.warning("recorded the new host key of %s (%s) in %s", hostname, key.fingerprint, self.path)


def _split_jump(spec: str) -> tuple[str, str | None, int | None]:
    user, _, rest = spec.rpartition("@")
    host, _, port = rest.partition(":")
    return host, user or None, int(port) if port else None


def open_session(conn: Connection, device: str) -> Session:
    """Connect and authenticate; raises EdgebenchError (Unreachable for network failures)."""
    target = resolve(conn)
    jumps: list[paramiko.SSHClient] = []
    sock: paramiko.Channel | paramiko.ProxyCommand | None = None
    if target.proxy_jump:
        for hop in target.proxy_jump.split(","):  # hops are chained: each one is reached through the last
            host, user, port = _split_jump(hop.strip())
            hop_conn = conn.model_copy(update={"host": host, "user": user, "port": port, "key_file": None})
            jumps.append(_connect(hop_conn, resolve(hop_conn), device, jumps[-1] if jumps else None).client)
        sock = _channel_to(jumps[-1], target, device)
    elif target.proxy_command:
        sock = paramiko.ProxyCommand(target.proxy_command)
    session = _connect(conn, target, device, None, sock)
    session.jumps = jumps
    return session


def _channel_to(jump: paramiko.SSHClient, target: Target, device: str) -> paramiko.Channel:
    try:
        transport = jump.get_transport()
        if transport is None:
            raise paramiko.SSHException("the jump host's connection is closed")
        return transport.open_channel("direct-tcpip", (target.hostname, target.port), ("127.0.0.1", 0))
    except (paramiko.ChannelException, paramiko.SSHException, OSError) as exc:
        raise Unreachable(f"device {device!r}: the jump host cannot reach {target.hostname}:{target.port} ({exc}): "
                          "check HostName/Port and the jump host's AllowTcpForwarding") from None


def _connect(conn: Connection, target: Target, device: str, via: paramiko.SSHClient | None,
             sock: paramiko.Channel | paramiko.ProxyCommand | None = None) -> Session:
    if via is not None:
        sock = _channel_to(via, target, device)
    where = f"device {device!r} ({target.label})"
    known_hosts = Path(conn.known_hosts).expanduser()
    for key in target.key_files if conn.key_file else []:
        if not Path(key).is_file():
            raise EdgebenchError(f"{where}: key_file {key} not found: fix 'connection.key_file' in the profile",
                                 ExitStatus.CONFIG)
    password = None
    if conn.password_env:
        password = os.environ.get(conn.password_env)
        if password is None:
            raise EdgebenchError(f"{where}: password_env names ${conn.password_env}, which is not set: export it "
                                 "or use a key", ExitStatus.CONFIG)
    client = paramiko.SSHClient()
    if known_hosts.is_file():
        client.load_host_keys(str(known_hosts))
    client.set_missing_host_key_policy(_AcceptNew(known_hosts) if conn.host_key_policy == "accept-new" else _Refuse())
    timeout = conn.connect_timeout_s
    try:
        client.connect(target.hostname, target.port, target.user, password=password,
                       # paramiko takes a list of key files too; types-paramiko says str only
                       key_filename=target.key_files or None,  # type: ignore[arg-type]
                       look_for_keys=not target.key_files,
                       allow_agent=True, timeout=timeout, banner_timeout=timeout, auth_timeout=timeout,
                       channel_timeout=timeout, sock=sock)
    except _UnknownHostKey as exc:
        client.close()
        raise EdgebenchError(
            f"{where}: unknown host key {exc.key.fingerprint} (not in {known_hosts}): verify it, then add it with "
            f"'ssh-keyscan -p {target.port} {target.hostname} >> {known_hosts}' or set "
            "'connection.host_key_policy: accept-new'", ExitStatus.DEVICE) from None
    except paramiko.BadHostKeyException as exc:
        client.close()
        raise EdgebenchError(
            f"{where}: the host key CHANGED (got {exc.key.fingerprint}, {known_hosts} has "
            f"{exc.expected_key.fingerprint}); refusing to connect: if the device was reinstalled, remove the old "
            f"key with 'ssh-keygen -R \"[{target.hostname}]:{target.port}\" -f {known_hosts}'",
            ExitStatus.DEVICE) from None
    except paramiko.PasswordRequiredException:
        client.close()
        raise EdgebenchError(f"{where}: the private key is encrypted: load it into ssh-agent with 'ssh-add' first",
                             ExitStatus.DEVICE) from None
    except paramiko.AuthenticationException:
        client.close()
        tried = ", ".join(target.key_files) if target.key_files else "ssh-agent and ~/.ssh/id_*"
        raise EdgebenchError(f"{where}: authentication failed (tried {tried}): check 'user' and 'key_file', and that "
                             "the public key is in the device's ~/.ssh/authorized_keys", ExitStatus.DEVICE) from None
    except (socket.timeout, TimeoutError) as exc:
        client.close()
        raise Unreachable(f"{where}: no answer within {timeout:g} s ({exc or 'timed out'}): check that the device is "
                          "on and the host/port are right") from None
    except (paramiko.SSHException, OSError, EOFError) as exc:
        client.close()
        reason = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
        raise Unreachable(f"{where}: cannot connect ({reason}): check that the device is on, sshd runs and the "
                          "host/port are right") from None
    transport = client.get_transport()
    if transport is not None and conn.keepalive_s:
        transport.set_keepalive(int(conn.keepalive_s))
    log.debug("connected to %s", where)
    return Session(client, target)
