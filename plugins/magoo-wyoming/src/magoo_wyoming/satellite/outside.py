"""What Home Assistant sends outside a turn: announcements, played through magoo's speech outside a
turn (``played`` once they ended), and timers (Home Assistant counts down; the satellite keeps them
for the status and rings when one finishes)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from .audio import IncomingSound
from .throttle import Throttle
from .timers import Timers

log = logging.getLogger("magoo.wyoming.satellite")

#: story lines kept between two turns (a chatty peer must not grow memory)
MAX_NOTES = 20


class OutsideTurns:
    """Announcements and timers. One announcement and one ring at a time (Home Assistant waits for
    ``played`` before its next announcement; a flood of timer events rings once). Event-loop only.

    :param timer_sound: played when a timer finishes (a magoo sound's name or a WAV path).
    :param send_played: tells Home Assistant an announcement has ended.
    :param throttle: the session's log throttle.
    """

    def __init__(self, timer_sound: str | Path, send_played: Callable[[], Awaitable[None]], throttle: Throttle) -> None:
        self.timer_sound = timer_sound
        self.send_played = send_played
        self.throttle = throttle
        self.speech: Any = None  # magoo's Speech, from magoo_on_startup
        self.timers = Timers()
        self.notes: list[str] = []
        self.announcements = 0
        self._announcing = False
        self._ringing = False
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

    def timer_event(self, kind: str, data: dict) -> None:
        """``timer-started/updated/cancelled/finished``.

        :raises KeyError, TypeError, ValueError: a field missing or of the wrong type.
        """
        timers = self.timers
        if kind == "timer-started":
            self.note(timers.started(str(data["id"]), int(data["total_seconds"]), data.get("name")))
        elif kind == "timer-updated":
            self.note(timers.updated(str(data["id"]), bool(data["is_active"]), int(data["total_seconds"])))
        elif kind == "timer-cancelled":
            self.note(timers.cancelled(str(data["id"])))
        elif kind == "timer-finished":
            self.note(timers.finish(str(data["id"])))
            if self.speech is not None and not self._ringing:
                self._ringing = True
                self._spawn(self._ring())

    async def _ring(self) -> None:
        try:
            await self.speech.say(sound=self.timer_sound)
        finally:
            self._ringing = False

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
