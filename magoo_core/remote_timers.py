"""Timers another system counts down (Home Assistant's, for a satellite): *remote* timers.

Their owner reports them (:meth:`RemoteTimers.started`, ``updated``, ``cancelled``, ``finished``);
:class:`~magoo_core.timers.Timers` lists them with magoo's own (status file, heartbeat,
``timer_list``), the same ``magoo_on_timer_*`` hooks fire, and a finished one rings through the
same path. One never ends by itself here and is not kept in the timers file: its owner counts it
down and keeps it. Everything here runs on the event loop.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace

from .types import Timer

__all__ = ["MAX_REMOTE", "RemoteTimers"]

#: remote timers kept at once (a peer sending thousands must not grow memory); the oldest goes first
MAX_REMOTE = 64
#: characters of an owner's id kept
MAX_ID = 64


@dataclass(eq=False)
class _Remote:
    timer: Timer
    deadline: float  # loop time (monotonic seconds)
    paused: float | None = None  # its owner paused it: the seconds it has left

    def snapshot(self) -> Timer:
        left = self.paused if self.paused is not None else max(0.0, self.deadline - asyncio.get_running_loop().time())
        return replace(self.timer, ends_at=time.time() + left)


class RemoteTimers:
    """The remote timers of one run, per source (ids are the owner's, one namespace per source).

    :param emit: ``emit(event, timer=...)`` for the ``timer_*`` hooks.
    :param ring: rings a finished timer as a local one rings (the sound, then the words).
    :param name: a timer's name as said, from the owner's name or, without one, its duration.
    """

    def __init__(
        self,
        emit: Callable[..., Awaitable[None]],
        ring: Callable[[Timer], None],
        name: Callable[[str | None, float], str],
    ) -> None:
        self._emit = emit
        self._ring = ring
        self._name = name
        self._timers: dict[tuple[str, str], _Remote] = {}

    def ordered(self, source: str | None = None) -> list[tuple[float, Timer]]:
        """(order, snapshot) of each (``source``'s only, when given): the loop time it ends, or
        infinity when paused (a paused timer is listed last)."""
        return [
            (math.inf if entry.paused is not None else entry.deadline, entry.snapshot())
            for key, entry in self._timers.items() if source is None or key[0] == source
        ]

    def source_of(self, name: str) -> str | None:
        """The source of the remote timer called ``name`` (case does not matter), or None."""
        folded = name.casefold()
        return next((key[0] for key, entry in self._timers.items() if entry.timer.name.casefold() == folded), None)

    async def started(self, source: str, timer_id: str, seconds: float, name: str | None) -> Timer:
        """Its owner started a timer of ``seconds`` (``timer_started``; ``timer_updated`` when
        ``source`` had started ``timer_id`` already).

        :param source: who counts it down ("Home Assistant (kitchen)"); said when magoo may not cancel it.
        :param timer_id: the owner's id for it.
        :param seconds: its duration, bounded to 0 .. a day.
        :param name: its name, or None (then named after its duration: "5 minute").
        """
        from .timers import MAX_SECONDS  # the bound is the local timers'

        seconds = _bounded(seconds, MAX_SECONDS)
        key = (source, str(timer_id)[:MAX_ID])
        old = self._timers.pop(key, None)
        if old is None and len(self._timers) >= MAX_REMOTE:
            self._timers.pop(next(iter(self._timers)))
        timer = Timer(key[1], self._name(name, seconds), seconds, time.time() + seconds)
        entry = self._timers[key] = _Remote(timer, asyncio.get_running_loop().time() + seconds)
        await self._emit("timer_updated" if old else "timer_started", timer=entry.snapshot())
        return entry.snapshot()

    async def updated(self, source: str, timer_id: str, seconds_left: float, running: bool) -> Timer | None:
        """Its owner changed it: ``seconds_left`` from now, counting (``running``) or paused
        (``timer_updated``). Returns it, or None for an id ``source`` never started."""
        from .timers import MAX_SECONDS

        entry = self._timers.get((source, str(timer_id)[:MAX_ID]))
        if entry is None:
            return None
        left = _bounded(seconds_left, MAX_SECONDS)
        entry.deadline = asyncio.get_running_loop().time() + left
        entry.paused = None if running else left
        entry.timer = replace(entry.timer, total_seconds=max(entry.timer.total_seconds, left))
        timer = entry.snapshot()
        await self._emit("timer_updated", timer=timer)
        return timer

    async def cancelled(self, source: str, timer_id: str) -> Timer | None:
        """Its owner cancelled it (``timer_cancelled``); None for an id it never started."""
        entry = self._timers.pop((source, str(timer_id)[:MAX_ID]), None)
        if entry is None:
            return None
        timer = entry.snapshot()
        await self._emit("timer_cancelled", timer=timer)
        return timer

    async def finished(self, source: str, timer_id: str) -> Timer | None:
        """Its owner says it finished: it rings and ``timer_finished`` is emitted. None for an id
        ``source`` never started (nothing rings: a stray event must not wake the house)."""
        entry = self._timers.pop((source, str(timer_id)[:MAX_ID]), None)
        if entry is None:
            return None
        timer = replace(entry.timer, ends_at=time.time())
        self._ring(timer)
        await self._emit("timer_finished", timer=timer)
        return timer


def _bounded(seconds: float, most: float) -> float:
    seconds = float(seconds)
    return min(most, max(0.0, seconds)) if math.isfinite(seconds) else 0.0
