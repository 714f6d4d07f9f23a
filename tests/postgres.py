"""A real PostgreSQL server on 127.0.0.1 for the tests, like the sshd boards: Debian's package
(``scripts/system-deps.sh`` installs it), a fresh cluster in a temporary folder made with ``initdb`` (as the
``postgres`` user when the tests run as root, as PostgreSQL requires), password authentication (scram) for a
role ``edgebench``, started once per test session and stopped at its end.

``pg_server`` is the session's server; ``pg_url`` a fresh, empty database on it for one test (so tests never
see each other's runs). The password travels in the URL here — a throwaway cluster's — which also tests that
edgebench never prints it. Import into a test module: ``from tests.postgres import pg_server, pg_url``.
"""

from __future__ import annotations

import glob
import os
import pwd
import secrets
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from pathlib import Path
from typing import Iterator

import pytest

PASSWORD = "s3cret-" + secrets.token_hex(4)


def _bin(tool: str) -> str:
    found = shutil.which(tool) or next(iter(sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{tool}"), reverse=True)), None)
    if found is None:
        if os.environ.get("CI"):
            raise RuntimeError(f"PostgreSQL's {tool} is missing: scripts/system-deps.sh installs postgresql")
        pytest.skip(reason=f"PostgreSQL's {tool} is not installed (apt-get install postgresql)")
    return found


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class PgServer:
    """One PostgreSQL cluster; ``url(db)`` reaches database ``db`` as the ``edgebench`` role."""

    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="edgebench-pg-"))
        self.port = _free_port()
        self.data, self.sockets = self.root / "data", self.root / "sock"
        self.user = "postgres" if os.geteuid() == 0 else pwd.getpwuid(os.geteuid()).pw_name
        self.sockets.mkdir()
        if os.geteuid() == 0:  # initdb refuses root: the cluster belongs to the postgres user
            pw = pwd.getpwnam("postgres")
            for path in (self.root, self.sockets):
                os.chown(path, pw.pw_uid, pw.pw_gid)
        self.root.chmod(0o755)

    def _as_owner(self, *argv: str) -> subprocess.CompletedProcess[str]:
        cmd = list(argv) if os.geteuid() != 0 else ["runuser", "-u", "postgres", "--", *argv]
        return subprocess.run(cmd, capture_output=True, text=True, check=False, timeout=180)

    def start(self) -> "PgServer":
        pwfile = self.root / "pwfile"
        pwfile.write_text(PASSWORD + "\n")
        if os.geteuid() == 0:
            os.chown(pwfile, pwd.getpwnam("postgres").pw_uid, -1)
        done = self._as_owner(_bin("initdb"), "-D", str(self.data), "-U", self.user, "--pwfile", str(pwfile),
                              "-A", "scram-sha-256", "-E", "UTF8", "--no-sync")
        if done.returncode:
            raise RuntimeError(f"initdb failed: {done.stderr or done.stdout}")
        options = (f"-p {self.port} -k {self.sockets} -c listen_addresses=127.0.0.1 -c fsync=off "
                   "-c max_connections=200")
        done = self._as_owner(_bin("pg_ctl"), "-D", str(self.data), "-o", options, "-l", str(self.root / "log"),
                              "-w", "-t", "120", "start")
        if done.returncode:
            log = (self.root / "log").read_text() if (self.root / "log").exists() else ""
            raise RuntimeError(f"pg_ctl start failed: {done.stderr or done.stdout} {log[-2000:]}")
        self.admin("CREATE ROLE edgebench LOGIN CREATEDB PASSWORD '" + PASSWORD + "'")
        return self

    def admin(self, sql: str, db: str = "postgres") -> None:
        """Run ``sql`` as the cluster's superuser (e.g. to create or drop a database, kill a session)."""
        import psycopg

        with psycopg.connect(f"postgresql://{self.user}:{PASSWORD}@127.0.0.1:{self.port}/{db}",
                             autocommit=True) as conn:
            conn.execute(sql)  # type: ignore[arg-type]  # test-made SQL

    def url(self, db: str, password: str | None = PASSWORD) -> str:
        auth = f"edgebench:{password}" if password is not None else "edgebench"
        return f"postgresql://{auth}@127.0.0.1:{self.port}/{db}"

    def new_database(self) -> str:
        name = "t_" + uuid.uuid4().hex[:12]
        self.admin(f"CREATE DATABASE {name} OWNER edgebench")
        return name

    def stop(self) -> None:
        if self.data.exists():
            self._as_owner(_bin("pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w", "stop")
        for _ in range(50):
            try:
                shutil.rmtree(self.root)
                return
            except OSError:
                time.sleep(0.1)


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgServer]:
    _bin("initdb")
    server = PgServer()
    try:
        yield server.start()
    finally:
        server.stop()


@pytest.fixture
def pg_url(pg_server: PgServer) -> str:
    """A fresh, empty database for one test, as a URL with the password in it."""
    return pg_server.url(pg_server.new_database())
