"""Who may reach a server magoo runs (the Home Assistant satellite, the control page): whether a
bind address stays on this machine, and the profile's allow-list of peer addresses and networks.

Pure functions and one small value class; any thread.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

from pydantic_core import PydanticCustomError

__all__ = ["Networks", "is_local_only", "check_networks"]


def is_local_only(host: str) -> bool:
    """True when a server bound to ``host`` can only be reached from this machine (a loopback
    address, or ``localhost``)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_networks(entries: list[str]) -> list[str]:
    """A profile's ``allow`` list, for a pydantic ``field_validator``: each entry an address or a
    network (``192.168.1.10``, ``10.0.0.0/24``, ``fd00::/8``).

    :raises PydanticCustomError: one line naming the entry that is neither.
    """
    for entry in entries:
        try:
            ipaddress.ip_network(entry, strict=False)
        except ValueError:
            raise PydanticCustomError(
                "allow", "'{entry}' is not an address or a network like 192.168.1.0/24", {"entry": entry}
            ) from None
    return entries


class Networks:
    """The peers an allow-list lets in; empty lets everyone in (the bind address is the only fence).

    :param entries: addresses and networks, already checked by :func:`check_networks`.
    """

    def __init__(self, entries: Iterable[str]) -> None:
        self.networks = [ipaddress.ip_network(entry, strict=False) for entry in entries]

    def __bool__(self) -> bool:
        return bool(self.networks)

    def allows(self, peer: str | None) -> bool:
        """Whether ``peer`` (a socket's address; an IPv6 scope ``%eth0`` and an IPv4-mapped IPv6
        address are understood) is let in. Something that is not an address is not."""
        if not self.networks:
            return True
        try:
            address = ipaddress.ip_address((peer or "").split("%")[0])
        except ValueError:
            return False
        mapped = getattr(address, "ipv4_mapped", None)  # ::ffff:10.0.0.5 on a dual-stack socket
        return any((mapped or address) in network for network in self.networks)
