"""Transports carry a job to a device's runner and its results back: local subprocess or SSH."""

from __future__ import annotations

from edgebench.config import DeviceProfile
from edgebench.devices.base import Transport
from edgebench.errors import EdgebenchError, ExitStatus


def make_transport(profile: DeviceProfile) -> Transport:
    if profile.connection.type == "local":
        from edgebench.devices.local import LocalTransport

        return LocalTransport(profile)
    try:
        from edgebench.devices.ssh import SSHTransport
    except ModuleNotFoundError as exc:
        if exc.name != "paramiko":
            raise
        raise EdgebenchError(f"device {profile.name!r} is reached over SSH, which needs paramiko: "
                             "pip install 'edgebench[ssh]'", ExitStatus.RUNTIME_MISSING) from None
    return SSHTransport(profile)
