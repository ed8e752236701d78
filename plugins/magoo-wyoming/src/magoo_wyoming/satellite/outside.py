"""What Home Assistant sends outside a turn: announcements, played through magoo's speech outside a
turn (``played`` once they ended), and timers (Home Assistant counts down; they are magoo's remote
timers, :attr:`magoo_core.timers.Timers.remote`, so they are in the status and the
heartbeat, fire the ``magoo_on_timer_*`` hooks and ring like magoo's own)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from magoo_core.timers import spoken_duration

from .audio import IncomingSound
from .throttle import Throttle

log = logging.getLogger("magoo.wyoming.satellite")

#: story lines kept between two turns (a chatty peer must not grow memory)
MAX_NOTES = 20


class OutsideTurns:
    """Announcements and timers. One announcement at a time (Home Assistant waits for ``played``
    before its next one). Event-loop only.

    :param source: whose timers these are for magoo's timers ("Home Assistant (kitchen)").
    :param send_played: tells Home Assistant an announcement has ended.
    :param throttle: the session's log throttle.
    """

    def __init__(self, source: str, send_played: Callable[[], Awaitable[None]], throttle: Throttle) -> None:
        self.source = source
        self.send_played = send_played
        self.throttle = throttle
        self.speech: Any = None  # magoo's Speech, from magoo_on_startup
        self.timers: Any = None  # magoo's Timers, from magoo_on_startup
        self.notes: list[str] = []
        self.announcements = 0
        self.timers_finished = 0
        self._announcing = False
        self._tasks: set[asyncio.Task] = set()

    # ---- announcements ----

    def announcement(self) -> IncomingSound | None:
        """A sound Home Assistant starts outside a turn: the sound to fill, or None when one is
        still playing (then it is skipped)."""
        if self._announcing:
            self.throttle.say("overlap", logging.WARNING, "Home Assistant sent a sound while another one plays; it is skipped")
            return None
        self._announcing = True
        self.announcements += 1
        sound = IncomingSound()
        self._spawn(self._announce(sound))
        return sound

    async def _announce(self, sound: IncomingSound) -> None:
        try:
            if not await sound.has_audio():
                pass  # an empty sound: nothing to play, played at once
            elif self.speech is not None:
                result = await self.speech.say(audio=sound.chunks())
                self.note(f"announcement from Home Assistant ({sound.seconds:.1f} s): {result.status}")
            else:
                async for _ in sound.chunks():
                    pass
                log.warning("an announcement from Home Assistant was not played: magoo's speech is not ready yet")
        finally:
            self._announcing = False
        await self.send_played()

    # ---- timers ----

    async def timer_event(self, kind: str, data: dict) -> None:
        """``timer-started/updated/cancelled/finished``, handed to magoo's timers (a finished one
        rings there: the ``[engine.timers]`` sound and words).

        :raises KeyError, TypeError, ValueError: a field missing or of the wrong type.
        """
        timers = self.timers
        timer_id = str(data["id"])
        if timers is None:
            self.throttle.say("early-timer", logging.WARNING, "Home Assistant sent a timer before magoo's timers started; it is skipped")
            return
        if kind == "timer-started":
            name = data.get("name")
            timer = await timers.remote.started(self.source, timer_id, int(data["total_seconds"]), name if isinstance(name, str) else None)
            self.note(f"timer {timer.name!r} started ({spoken_duration(timer.total_seconds)})")
        elif kind == "timer-updated":
            running = bool(data["is_active"])
            timer = await timers.remote.updated(self.source, timer_id, int(data["total_seconds"]), running)
            if timer is not None:
                left = spoken_duration(int(data["total_seconds"]))
                self.note(f"timer {timer.name!r} {'running' if running else 'paused'} ({left} left)")
        elif kind == "timer-cancelled":
            timer = await timers.remote.cancelled(self.source, timer_id)
            if timer is not None:
                self.note(f"timer {timer.name!r} cancelled")
        elif kind == "timer-finished":
            timer = await timers.remote.finished(self.source, timer_id)
            if timer is not None:
                self.timers_finished += 1
                self.note(f"timer {timer.name!r} finished")

    def running_timers(self) -> list:
        """Home Assistant's timers as magoo lists them (:class:`magoo_core.types.Timer`), soonest first."""
        return [] if self.timers is None else self.timers.list(self.source)

    # ---- the story ----

    def note(self, line: str | None) -> None:
        """A line for the log (throttled) and for the next turn's story."""
        if line is None:
            return
        self.throttle.say(line.split(" ", 1)[0], logging.INFO, "%s", line)
        if len(self.notes) < MAX_NOTES:
            self.notes.append(line)

    def take_notes(self) -> list[str]:
        notes, self.notes = self.notes, []
        return notes

    # ---- tasks ----

    def _spawn(self, coro) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("the satellite's task failed: %s", task.exception(), exc_info=task.exception())

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(BaseException):
                await task
