"""Who may connect: the profile's allow-list, and a log that says each refused peer at most once a minute."""

from __future__ import annotations

import ipaddress
import logging
import time
from collections.abc import Iterable

log = logging.getLogger("magoo.wyoming.satellite")

#: seconds between two log lines about the same refused peer
REFUSED_LOG_EVERY = 60.0
#: refused peers remembered for rate limiting; past it the oldest is forgotten (a scan of a /16
#: must not grow memory)
REFUSED_KEPT = 1024


class AllowList:
    """The peers the satellite talks to. Empty: every peer (the bind address is the only fence).

    ``refused(peer)`` logs at most one line per peer per :data:`REFUSED_LOG_EVERY` seconds.
    Event-loop only.
    """

    def __init__(self, entries: Iterable[str]) -> None:
        self.networks = [ipaddress.ip_network(entry, strict=False) for entry in entries]
        self._told: dict[str, float] = {}
        self.refusals = 0

    def allows(self, peer: str) -> bool:
        if not self.networks:
            return True
        try:
            address = ipaddress.ip_address(peer)
        except ValueError:
            return False
        mapped = getattr(address, "ipv4_mapped", None)  # ::ffff:10.0.0.5 on a dual-stack socket
        if mapped is not None:
            address = mapped
        return any(address in network for network in self.networks)

    def refused(self, peer: str, now: float | None = None) -> None:
        self.refusals += 1
        now = time.monotonic() if now is None else now
        last = self._told.get(peer)
        if last is not None and now - last < REFUSED_LOG_EVERY:
            return
        if last is None and len(self._told) >= REFUSED_KEPT:
            self._told.pop(next(iter(self._told)))
        self._told[peer] = now
        log.warning("refused a connection from %s: not in the satellite's allow list (add it to allow to let it in)", peer)
