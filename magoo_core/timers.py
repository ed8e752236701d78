"""Timers: set, cancel and list by name; when one ends the assistant says so, and rings until stopped.

:class:`Timers` is the service of one run, owned by the engine. A language model reaches it through
the built-in tools ``timer_set``, ``timer_cancel`` and ``timer_list``
(:mod:`magoo_core.default_plugins.timers`); other code may call it directly.

- While magoo runs, a timer counts down on the monotonic clock (a wall-clock jump, NTP setting the
  clock of a Pi after boot, neither shortens nor lengthens it). Its ``ends_at`` (wall clock) is
  what the store, the status file and the hooks see.
- When one ends, it rings: the ``[engine.timers]`` sound, then ``say`` ("The pasta timer is done.")
  as speech outside a turn, again every ``ring_every`` seconds for ``ring_for`` seconds, until
  stopped: barge-in or ``speech.stop()`` stops what is said, and the wake word, ``timer_cancel``
  or :meth:`Timers.silence` stop the ringing.
- Running timers are kept in a JSON file (:class:`~magoo_core.timer_store.TimerStore`), rewritten on
  every change. At start, the ones still running are resumed; one that ended while magoo was not
  running rings at once (``say_late``: "The pasta timer ended 3 minutes ago, while I was off.")
  when it ended at most ``late_for`` seconds ago, and is dropped with a log line otherwise. A clock
  that went back cannot make a resumed timer longer than it was set for.

- Timers another system counts down (Home Assistant's) are reported to :attr:`Timers.remote`
  (:class:`~magoo_core.remote_timers.RemoteTimers`): listed with these, they ring the same way.

Hooks: ``magoo_on_timer_started``, ``_updated`` (set again under the same name), ``_cancelled``,
``_finished``, each with a :class:`~magoo_core.types.Timer`. Everything here runs on the event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import re
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from .logs import printable
from .remote_timers import MAX_REMOTE, RemoteTimers
from .settings import TimerSettings
from .speech import DEFAULT_SOUNDS, Speech, SpeechResult
from .timer_store import TimerStore, store_path
from .types import Timer

if TYPE_CHECKING:
    from .plugin_registry import Plugins
    from .profile_model import Profile

__all__ = ["MAX_SECONDS", "MIN_QUIET", "Timers", "TimerLimit", "spoken_duration"]

log = logging.getLogger("magoo.timers")

#: the longest timer, in seconds (a day)
MAX_SECONDS = 86400.0
#: seconds of quiet at least between two rings, so the wake word can be heard between them
MIN_QUIET = 0.5
#: characters of a timer's name at most
MAX_NAME = 40
TIMER_SOUND = DEFAULT_SOUNDS / "timer.wav"


class TimerLimit(ValueError):
    """A timer that cannot be set (too many, too long); the message is written for a language model."""


@dataclass(eq=False)
class _Running:
    timer: Timer
    deadline: float  # loop time (monotonic seconds)
    task: asyncio.Task | None = None


class Timers:
    """The timers of one run.

    :param settings: ``[engine.timers]``.
    :param store: where running timers are kept across restarts.
    :param speech: how a finished timer is said (speech outside a turn).
    :param emit: ``emit(event, **arguments)`` for the ``timer_*`` hooks.
    :param plugins: where :meth:`open` registers the timer tools' plugin for the run
        (:class:`~magoo_core.default_plugins.timers.TimerTools`); None: the tools are not offered.
    """

    def __init__(
        self,
        settings: TimerSettings,
        store: TimerStore,
        speech: Speech,
        emit: Callable[..., Awaitable[None]],
        *,
        plugins: Plugins | None = None,
    ) -> None:
        self.settings = settings
        self.store = store
        self._speech = speech
        self._emit = emit
        self._plugins = plugins
        self._tools: object | None = None
        self._running: dict[str, _Running] = {}
        self._ringing: dict[str, tuple[Timer, asyncio.Task]] = {}
        #: timers another system counts down (``remote.started(source, id, seconds, name)`` ...)
        self.remote = RemoteTimers(emit, self._ring_remote, lambda name, seconds: clean_name(name or "") or duration_name(max(1.0, seconds)))
        self._saving = asyncio.Lock()
        self._open = False

    @classmethod
    def of_profile(cls, profile: Profile, speech: Speech, plugins: Plugins) -> Timers:
        """The timers of a run of ``profile``: its ``[engine.timers]`` settings and store."""
        settings = profile.engine.timers or TimerSettings()
        store = TimerStore(store_path(settings.store, profile.path))
        return cls(settings, store, speech, plugins.emit, plugins=plugins)

    # ---- the run ------------------------------------------------------------------------------

    async def open(self) -> None:
        """Offer the timer tools (their plugin is registered for the run), then resume the stored
        timers (the store is read in a thread); the late ones ring now."""
        if self._plugins is not None:
            from .default_plugins.timers import TimerTools  # the plugin imports this module

            self._tools = TimerTools(self)
            self._plugins.register_instance(self._tools, name="magoo:timers")
        self._open = True
        now, loop_now = time.time(), asyncio.get_running_loop().time()
        dropped = False
        late: list[Timer] = []
        for timer in await asyncio.to_thread(self.store.load):
            left = min(timer.ends_at - now, timer.total_seconds)  # a clock gone back: never longer than set
            if left > 0:
                self._start(timer, loop_now + left)
                log.info("timer %s resumed: %s left", printable(timer.name), spoken_duration(left))
            elif -left <= self.settings.late_for:
                log.info("timer %s ended %s ago, while magoo was not running: ringing now", printable(timer.name), spoken_duration(-left))
                self._ring_later(timer, self.settings.say_late.format(name=timer.name, ago=spoken_duration(-left)))
                late.append(timer)
                dropped = True
            else:
                log.warning(
                    "timer %s ended %s ago, while magoo was not running; past [engine.timers] late_for, it is dropped",
                    printable(timer.name), spoken_duration(-left),
                )
                dropped = True
        if dropped:
            await self._save()
        for timer in late:
            await self._emit("timer_finished", timer=timer)

    async def close(self) -> None:
        """Stop counting and ringing for this run; running timers stay in the store for the next.
        Does nothing when :meth:`open` was not called (a run whose backends did not start)."""
        if self._tools is not None:
            self._plugins.unregister_instance(self._tools)
            self._tools = None
        if not self._open:
            return
        self._open = False
        tasks = [entry.task for entry in self._running.values() if entry.task] + [task for _, task in self._ringing.values()]
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=1.0)
        self._ringing.clear()
        # nothing to write: the store was rewritten on every change, and a profile run without a
        # timer leaves no file behind; the running ones stay listed for the last status file

    # ---- what the tools call ------------------------------------------------------------------

    def list(self, source: str | None = None) -> list[Timer]:
        """The running timers, remote ones too, soonest first (paused ones last), each a snapshot
        with ``ends_at`` as of now; with ``source``: only that source's remote ones."""
        local = [] if source is not None else [(entry.deadline, self._snapshot(entry)) for entry in self._running.values()]
        return [timer for _, timer in sorted(local + self.remote.ordered(source), key=lambda pair: pair[0])]

    def ringing(self) -> list[Timer]:
        """The timers that ended and ring now (or wait to ring: a turn is in progress)."""
        return [timer for timer, _ in self._ringing.values()]

    def find(self, name: str) -> Timer | None:
        """The running timer called ``name`` (case and a trailing "timer" do not matter)."""
        entry = self._running.get(_key(clean_name(name)))
        return None if entry is None else self._snapshot(entry)

    async def set(self, seconds: float, name: str | None = None) -> tuple[Timer, bool]:
        """Start a timer of ``seconds`` (1 to :data:`MAX_SECONDS`); returns it and whether it
        replaced a running one of the same name (then ``timer_updated``, else ``timer_started``).

        Without a name it is named after its duration ("5 minute", "5 minute 2" when taken).

        :raises TimerLimit: ``seconds`` out of range, or ``max_timers`` are running.
        """
        if not (1 <= seconds <= MAX_SECONDS) or not math.isfinite(seconds):
            raise TimerLimit(f"a timer lasts from 1 second to {spoken_duration(MAX_SECONDS)}")
        if not self._open:
            raise TimerLimit("timers are not running (magoo is stopping)")
        named = clean_name(name) if name else ""
        if not named:
            named = _free_name(duration_name(seconds), self._running)
        old = self._running.get(_key(named))
        if old is not None:
            named = old.timer.name
        elif len(self._running) >= self.settings.max_timers:
            raise TimerLimit(f"{self.settings.max_timers} timers are running, the most there may be: cancel one first")
        loop_now = asyncio.get_running_loop().time()
        timer = Timer(old.timer.id if old else secrets.token_hex(6), named, float(seconds), time.time() + seconds)
        if old is not None and old.task is not None:
            old.task.cancel()
        entry = self._start(timer, loop_now + seconds)
        await self._save()
        await self._emit("timer_updated" if old else "timer_started", timer=self._snapshot(entry))
        return timer, old is not None

    async def cancel(self, name: str) -> tuple[Timer, bool] | None:
        """Cancel the running timer ``name`` (``timer_cancelled``), or silence it when it is
        ringing; returns it and whether it was ringing, or None when there is no such timer.

        :raises TimerLimit: ``name`` is a remote timer (only its owner cancels it).
        """
        key = _key(clean_name(name))
        entry = self._running.pop(key, None)
        if entry is None:
            ringing = self._ringing.pop(key, None)
            if ringing is None:
                if (source := self.remote.source_of(clean_name(name))) is not None:
                    raise TimerLimit(f"that timer is counted down by {source}: it can only be cancelled there")
                return None
            ringing[1].cancel()
            return ringing[0], True
        if entry.task is not None:
            entry.task.cancel()
        timer = self._snapshot(entry)
        await self._save()
        await self._emit("timer_cancelled", timer=timer)
        return timer, False

    def silence(self) -> int:
        """Stop every timer ringing now (the wake word was heard); returns how many."""
        ringing, self._ringing = list(self._ringing.values()), {}
        for _, task in ringing:
            task.cancel()
        return len(ringing)

    # ---- counting down and ringing ------------------------------------------------------------

    def _start(self, timer: Timer, deadline: float) -> _Running:
        entry = _Running(timer, deadline)
        self._running[_key(timer.name)] = entry
        entry.task = asyncio.create_task(self._count_down(entry), name=f"magoo-timer-{timer.id}")
        return entry

    async def _count_down(self, entry: _Running) -> None:
        loop = asyncio.get_running_loop()
        await asyncio.sleep(max(0.0, entry.deadline - loop.time()))
        key = _key(entry.timer.name)
        if self._running.get(key) is not entry:
            return
        del self._running[key]
        timer = replace(entry.timer, ends_at=time.time())
        log.info("timer %s is done", printable(timer.name))
        self._ring_later(timer, self.settings.say.format(name=timer.name))  # starts once this task waits
        await self._emit("timer_finished", timer=timer)
        await self._save()

    def _ring_remote(self, timer: Timer) -> None:
        if self._open and len(self._ringing) < MAX_REMOTE:  # a peer finishing timers by the hundred must not pile up rings
            log.info("timer %s is done", printable(timer.name))
            self._ring_later(timer, self.settings.say.format(name=timer.name))

    def _ring_later(self, timer: Timer, text: str) -> None:
        key = _key(timer.name)
        if key in self._ringing:
            self._ringing.pop(key)[1].cancel()
        task = asyncio.create_task(self._ring(key, text), name=f"magoo-ring-{timer.id}")
        self._ringing[key] = (timer, task)

    async def _ring(self, key: str, text: str) -> None:
        """Say ``text`` (after the sound) until stopped or ``ring_for`` has passed."""
        loop = asyncio.get_running_loop()
        stops = self._speech.stops
        until = loop.time() + self.settings.ring_for
        try:
            while True:
                started = loop.time()
                result = await self._ring_once(text)
                if result.status in ("interrupted", "dropped") or self._speech.stops != stops:
                    log.info("timer ringing stopped (%s)", result.reason or result.status)
                    return
                next_at = max(started + self.settings.ring_every, loop.time() + MIN_QUIET)
                if next_at > until:
                    return
                await asyncio.sleep(next_at - loop.time())
                if self._speech.stops != stops:
                    return
        finally:
            ringing = self._ringing.get(key)
            if ringing is not None and ringing[1] is asyncio.current_task():
                del self._ringing[key]

    async def _ring_once(self, text: str) -> SpeechResult:
        sound = self.settings.sound
        if sound is not False:
            path = TIMER_SOUND if sound is True else Path(sound)
            try:
                result = await self._speech.say(sound=path)
            except ValueError as exc:  # the file went away since the profile was checked
                log.warning("timer sound %s cannot be played: %s", path, exc)
            else:
                if result.status in ("interrupted", "dropped"):
                    return result
        return await self._speech.say(text)

    # ---- keeping ------------------------------------------------------------------------------

    def _snapshot(self, entry: _Running) -> Timer:
        left = max(0.0, entry.deadline - asyncio.get_running_loop().time())
        return replace(entry.timer, ends_at=time.time() + left)

    async def _save(self) -> None:
        async with self._saving:  # one write at a time, each of the list as it is when it starts
            timers = [self._snapshot(entry) for entry in sorted(self._running.values(), key=lambda e: e.deadline)]
            await asyncio.shield(asyncio.to_thread(self.store.save, timers))


# ---- names and durations ----------------------------------------------------------------------------


def clean_name(name: str) -> str:
    """A timer's name as said: printable, single spaces, at most :data:`MAX_NAME` characters,
    without a trailing "timer" ("pasta timer" → "pasta")."""
    text = " ".join(printable(name).split())
    text = re.sub(r"(?i)\s*\btimer$", "", text).strip()
    return text[:MAX_NAME].strip()


def _key(name: str) -> str:
    return name.casefold()


def duration_name(seconds: float) -> str:
    """The name of a timer set without one: "5 minute", "1 hour 30 minute", "90 second"."""
    whole = max(1, round(seconds))
    if whole < 120 and whole % 60:
        return f"{whole} second"
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    return " ".join(f"{value} {unit}" for value, unit in ((hours, "hour"), (minutes, "minute"), (secs, "second")) if value)


def _free_name(name: str, running: dict[str, _Running]) -> str:
    if _key(name) not in running:
        return name
    number = 2
    while _key(f"{name} {number}") in running:
        number += 1
    return f"{name} {number}"


def spoken_duration(seconds: float) -> str:
    """``seconds`` as words a TTS says well: "4 minutes 10 seconds", "1 hour", "less than a second"."""
    whole = math.ceil(seconds - 1e-6) if seconds > 0 else 0
    if whole <= 0:
        return "less than a second"
    days, rest = divmod(whole, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    units = ((days, "day"), (hours, "hour"), (minutes, "minute"), (secs, "second"))
    first = next(index for index, (value, _) in enumerate(units) if value)
    if first < 2:
        units = units[first:first + 2]  # "2 hours 5 minutes": the seconds do not matter then
    return " ".join(f"{value} {unit}{'' if value == 1 else 's'}" for value, unit in units if value)
