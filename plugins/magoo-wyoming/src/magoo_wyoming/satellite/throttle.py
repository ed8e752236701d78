"""Log lines that a peer can cause, at most one per kind per minute (a reconnect storm or a chatty
peer must not flood the journal)."""

from __future__ import annotations

import logging
import time

#: seconds between two lines of the same kind
EVERY = 60.0
#: kinds remembered; past it the oldest is forgotten (a scan of many addresses must not grow memory)
KEPT = 1024


class Throttle:
    """``say(key, level, message, *args)`` logs unless a line of ``key`` was logged less than
    :data:`EVERY` seconds ago; the next line that gets through tells how many were held back.
    Event-loop only."""

    def __init__(self, log: logging.Logger) -> None:
        self.log = log
        self._last: dict[str, float] = {}
        self._held: dict[str, int] = {}

    def say(self, key: str, level: int, message: str, *args: object, now: float | None = None) -> bool:
        now = time.monotonic() if now is None else now
        last = self._last.get(key)
        if last is not None and now - last < EVERY:
            self._held[key] = self._held.get(key, 0) + 1
            return False
        if last is None and len(self._last) >= KEPT:
            oldest = next(iter(self._last))
            self._last.pop(oldest)
            self._held.pop(oldest, None)
        self._last[key] = now
        held = self._held.pop(key, 0)
        if held:
            message += f" (and {held} more like it in the last minute)"
        self.log.log(level, message, *args)
        return True
