"""Who may connect: the profile's allow-list, and a log that says each refused peer at most once a minute."""

from __future__ import annotations

import logging
from collections.abc import Iterable

from magoo_core.network_access import Networks

from .throttle import Throttle

log = logging.getLogger("magoo.wyoming.satellite")


class AllowList:
    """The peers the satellite talks to. Empty: every peer (the bind address is the only fence).

    ``refused(peer)`` logs at most one line per peer per minute (:mod:`.throttle`). Event-loop only.
    """

    def __init__(self, entries: Iterable[str]) -> None:
        self.networks = Networks(entries)
        self._throttle = Throttle(log)
        self.refusals = 0

    def allows(self, peer: str) -> bool:
        return self.networks.allows(peer)

    def refused(self, peer: str, now: float | None = None) -> None:
        self.refusals += 1
        self._throttle.say(peer, logging.WARNING, "refused a connection from %s: not in the satellite's allow list "
                           "(add it to allow to let it in)", peer, now=now)
