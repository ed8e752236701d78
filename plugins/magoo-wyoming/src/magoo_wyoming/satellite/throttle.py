"""Log lines that a peer can cause, at most one per kind per minute (a reconnect storm or a chatty
peer must not flood the journal), without hiding how things stand in the end."""

from __future__ import annotations

import asyncio
import logging
import time

#: seconds between two lines of the same kind
EVERY = 60.0
#: kinds remembered; past it the oldest is forgotten (a scan of many addresses must not grow memory)
KEPT = 1024


class Throttle:
    """``say(key, level, message, *args)`` logs unless a line of ``key`` was logged less than
    :data:`EVERY` seconds ago. A line held back is not lost for good: the latest one of its kind is
    logged when the minute is over, saying how many like it were held (so "connected again" after
    a drop always reaches the log within a minute). Event-loop only; without a running loop (a
    plain test) held lines are only counted.

    Time is the running loop's clock (``loop.time()``, monotonic), so a test can run an hour of a
    storm on a loop with a simulated clock; without a loop, ``time.monotonic()``.
    """

    def __init__(self, log: logging.Logger) -> None:
        self.log = log
        self._last: dict[str, float] = {}
        self._held: dict[str, int] = {}
        self._latest: dict[str, tuple[int, str, tuple]] = {}
        self._flush: dict[str, asyncio.TimerHandle] = {}

    def say(self, key: str, level: int, message: str, *args: object, now: float | None = None) -> bool:
        """Log now, or hold back; True when logged now."""
        now = _now() if now is None else now
        last = self._last.get(key)
        if last is not None and now - last < EVERY:
            self._held[key] = self._held.get(key, 0) + 1
            self._latest[key] = (level, message, args)
            self._schedule(key, last + EVERY - now)
            return False
        if last is None and len(self._last) >= KEPT:
            self._forget(next(iter(self._last)))
        self._emit(key, level, message, args, now)
        return True

    def _emit(self, key: str, level: int, message: str, args: tuple, now: float) -> None:
        self._last[key] = now
        self._latest.pop(key, None)
        handle = self._flush.pop(key, None)
        if handle is not None:
            handle.cancel()
        held = self._held.pop(key, 0)
        if held > 1:
            message += f" (and {held - 1} more of its kind in the last minute)"
        self.log.log(level, message, *args)

    def _schedule(self, key: str, delay: float) -> None:
        if key in self._flush:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        self._flush[key] = loop.call_later(max(0.0, delay), self._flush_now, key)

    def _flush_now(self, key: str) -> None:
        self._flush.pop(key, None)
        latest = self._latest.get(key)
        if latest is not None:
            level, message, args = latest
            self._emit(key, level, message, args, _now())

    def _forget(self, key: str) -> None:
        self._last.pop(key, None)
        self._held.pop(key, None)
        self._latest.pop(key, None)
        handle = self._flush.pop(key, None)
        if handle is not None:
            handle.cancel()

    def close(self) -> None:
        """The run is over: the lines still held are logged now (the log ends with how things
        stood), and no flush is left pending."""
        for handle in self._flush.values():
            handle.cancel()
        self._flush.clear()
        for key, (level, message, args) in list(self._latest.items()):
            self._emit(key, level, message, args, _now())


def _now() -> float:
    try:
        return asyncio.get_running_loop().time()
    except RuntimeError:
        return time.monotonic()
