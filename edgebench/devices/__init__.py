"""Transports carry a job to a device's runner and its results back: local subprocess or SSH."""

from __future__ import annotations

from edgebench.config import DeviceProfile
from edgebench.devices.base import Transport


def make_transport(profile: DeviceProfile) -> Transport:
    if profile.connection.type == "local":
        from edgebench.devices.local import LocalTransport

        return LocalTransport(profile)
    from edgebench.devices.ssh import SSHTransport

    return SSHTransport(profile)
