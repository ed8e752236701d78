"""The engine: one asyncio loop that runs the assistant, and the coordinator of its parts.

The engine starts and stops the parts, routes each captured chunk by state, and owns the run's
stop. Each part owns its state and is called through a few methods:

- :class:`~magoo_core.lifecycle.Backends`: the backends' slots, restarts, failures;
- :class:`~magoo_core.wake_worker.WakeWorker`: wake scoring on its own thread;
- :class:`~magoo_core.speaker.Speaker`: speaking, muting, barge-in;
- :class:`~magoo_core.turn.Turns`: the state, the turns, the STT feed of a wake-word turn;
- :class:`~magoo_core.continuous.Conversation`: the STT stream of continuous mode;
- :class:`~magoo_core.monitor.Monitor`: heartbeat, systemd, the status file.

Threads: everything runs on the event loop, except wake scoring, which runs in one dedicated
worker thread (``magoo-wake``) so websocket and player I/O stay responsive. Audio sources hand
audio over from their own threads through :class:`magoo_core.capture.CaptureQueue`.

States: listening → awake (capturing the command) → thinking → speaking → listening. With no
wake detector in the profile the engine streams continuously to the speech-to-text backend and
reads one turn after another from it (the conversational setup).

Half-duplex: the microphone is muted before the reply's first sound and stays muted until
``mute_post`` seconds after the player reports the real end; every path out of speaking
(success, TTS error, player error, cancellation, shutdown) unmutes. With echo cancellation running
(``[engine.echo_cancel]``, ``mute = "auto"``) the microphone stays open: every chunk is cleaned first
(``Speaker.echo``), and while speaking it is scored for barge-in.

A source that is not ``live`` (a file read as fast as possible) is consumed in lock-step with
turns: while the assistant thinks and speaks, no audio is read, exactly as if the microphone were
muted, which makes runs over recorded audio deterministic.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass, field

from .audio import silence_like
from .continuous import Conversation
from .control import Control
from .duplex import Duplex
from .errors import BackendError
from .follow_up import FollowUp
from .lifecycle import HISTORY, Backends, BackendSlot
from .live import LiveEvents
from .live_settings import LiveSettings
from .monitor import Monitor
from .plugins import Plugins
from .profile import Profile
from .shutdown import Stopping, stop_now
from .speaker import Speaker
from .speech import Speech
from .status import InputLevel
from .systemd import Notifier
from .timers import Timers
from .tools import Toolbox
from .turn import Turns
from .types import AudioChunk, BackendFailure, EngineStatus, State, TurnTimeline, WakeEvent
from .wake_worker import WakeWorker

__all__ = ["HISTORY", "Engine", "RunResult"]

log = logging.getLogger("magoo.engine")


@dataclass
class RunResult:
    """What a run did: the turns' timelines, the failures, and why it stopped if it had to."""

    timelines: list[TurnTimeline] = field(default_factory=list)
    failures: list[BackendFailure] = field(default_factory=list)
    fatal: str | None = None
    hurried: bool = False  # a second signal stopped it at once: threads may be left running

    @property
    def exit_code(self) -> int:
        return 0 if self.fatal is None else 1


def _of(part: str, name: str, doc: str = "") -> property:
    """A read-only view of one of a part's attributes (``Engine.wakes`` is ``engine.wake_worker.wakes``)."""
    return property(lambda self: getattr(getattr(self, part), name), doc=doc or f"``{part}.{name}``.")


def _of_backends(name: str) -> property:
    return _of("backends", name, f"``Backends.{name}``: a slot, or the record of failures.")


class Engine:
    """Runs one profile until stopped, the audio ends, or ``max_turns`` turns are done.

    :param profile: the validated profile.
    :param plugins: the plugin manager the profile was validated against.
    :param max_turns: stop after this many turns (any outcome); None = no limit.
    :param stop_at_source_end: stop when a finite source (a file) ends, after the last turn.
    :param notifier: where READY, WATCHDOG and STATUS go; default: systemd's ``$NOTIFY_SOCKET``
        when there is one (see :mod:`magoo_core.systemd`).
    """

    source = _of_backends("source")
    wake = _of_backends("wake")
    stt = _of_backends("stt")
    responder = _of_backends("responder")
    tts = _of_backends("tts")
    player = _of_backends("player")
    actuators = _of_backends("actuators")
    restart_budget = _of_backends("restart_budget")
    failures = _of_backends("failures")
    errors = _of_backends("errors")
    turns_done = _of("turns", "done", "Turns ended so far (any outcome).")

    def __init__(
        self,
        profile: Profile,
        plugins: Plugins,
        *,
        max_turns: int | None = None,
        stop_at_source_end: bool = True,
        notifier: Notifier | None = None,
    ) -> None:
        self.profile = profile
        self.plugins = plugins
        self.settings = LiveSettings(profile.engine)  # a reload swaps what the parts read
        self.max_turns = max_turns
        self.stop_at_source_end = stop_at_source_end
        self.counters: dict[str, float] = {"frames": 0, "audio_seconds": 0.0, "wakes": 0, "muted_frames": 0, "stt_overflows": 0}
        self.input_level = InputLevel()
        self.backends = Backends(profile, plugins, plugins.emit, self._out_of_restarts)
        self.wake_worker = WakeWorker(self.backends.wake, self.backends, self.settings, self.counters)
        # an open microphone forgets what it heard before: the reply's start must not wake it
        self.speaker = Speaker(self.backends, self.settings, plugins.emit, self._unmuted)
        self.turns = Turns(self.backends, self.speaker, self.settings, plugins.emit, self.counters, self._turn_closed, self.wake_worker.clips)
        self.follow_up = FollowUp(self.turns, self.settings, on_open=lambda _turn: self.speaker.chime("listening"))
        #: the plugins' handle for speech outside a turn (``magoo_on_startup(speech)``)
        self.speech = Speech(self.speaker, self.speaker.sounds, self.turns.wait_no_turn)
        self.timers = Timers.of_profile(profile, self.speech, plugins)
        self.duplex = Duplex(self.settings, self.speech.stop)  # [engine.noise], [engine.stop_word], [engine.ducking]
        self.conversation = (
            Conversation(self.backends, self.turns, self.settings, self._no_more_audio, self._fail_run)
            if self.continuous else None
        )
        self.live = LiveEvents(plugins.events.listeners)
        self.control = Control(  # the watchers' handle (``magoo_on_startup(control)``, ``magoo meter``)
            profile.name, self.status, self.speech, self.input_level, self.wake_scores if self.wake else None, self.live,
            listen=self._listen_now, player=lambda: self.player and self.player.instance, speaking=lambda: self.speaker.muted,
            state=lambda: self.state)
        notifier = notifier if notifier is not None else Notifier.from_environ()
        self.monitor = Monitor(profile, notifier, self.status, lambda: self.counters["frames"], plugins.emit)
        self._run = _Run()
        self.stopping = Stopping(self.request_stop, lambda: self._run.stop.is_set())

    # ---- public ---------------------------------------------------------------------------------

    @property
    def fatal(self) -> str | None:
        """Why the run stops with exit code 1 (a backend cannot start, restarts ran out ...); None if none."""
        return self._run.fatal

    @property
    def continuous(self) -> bool:
        """True when there is no wake detector: audio streams to speech-to-text all the time."""
        return self.backends.wake is None

    state = _of("turns", "state", "The engine's :class:`~magoo_core.types.State` now.")
    muted = _of("speaker", "muted", "The microphone is muted (the assistant speaks).")
    wake_scores = _of("wake_worker", "scores", "How near each wake word came (a WakeScoreboard fed on the wake worker).")
    last_wake = _of("wake_worker", "last_wake", "The last WakeEvent, or None.")
    wakes = _of("wake_worker", "wakes", "Wakes so far, per wake word.")
    timelines = _of("turns", "timelines", "The turns' TurnTimelines so far (a deque, the last HISTORY).")

    def slots(self) -> list[BackendSlot]:
        return self.backends.slots()

    def request_stop(self) -> None:
        """Ask the engine to stop (safe from signal handlers on the loop thread)."""
        if self._run.stop is not None and not self._run.stop.is_set():
            log.info("stopping")
            self._run.stop.set()

    def status(self) -> EngineStatus:
        health = self.backends.health()
        backends = {key: stats for key, (_, stats) in health.items() if stats is not None}
        counters = dict(self.counters)
        counters["overflows"] = sum(b.get("overflows", 0) for b in backends.values())
        counters["restarts"] = self.backends.restarts()
        return EngineStatus(
            self.state, time.monotonic() - self._run.started_at, self.turns_done, self.errors, counters, backends,
            health={key: state for key, (state, _) in health.items()}, input_level=self.input_level.value,
            last_wake=self.last_wake, wakes=dict(self.wakes), timers=tuple(self.timers.list()))

    async def run(self) -> RunResult:
        """Run until stopped; returns what happened. Never raises for backend failures."""
        self._run.begin()
        self.plugins.hook_timeout = self.settings.hook_timeout
        self.turns.open()
        self.wake_worker.open()
        self.speech.open()
        tasks: list[asyncio.Task] = []
        self.stopping.install()
        try:
            if await self._start_backends():
                await self.timers.open()  # and its tools' plugin is registered for the run
                self.turns.answers.tools = Toolbox.from_hook(self.plugins.pm.hook.magoo_register_tools)
                await self.plugins.emit("startup", profile=self.profile, speech=self.speech, timers=self.timers, control=self.control)
                log.info("%s: listening%s", self.profile.name, "" if self.wake else " (continuous)")
                tasks.append(asyncio.create_task(self._capture(), name="magoo-capture"))
                tasks.extend(self.monitor.tasks())
                if self.conversation is not None:
                    tasks.append(self.conversation.start())
                await self._run.stop.wait()
        finally:
            await self.stopping.run(
                self._shutdown(tasks),
                lambda: stop_now(self.turns, tasks, self.wake_worker, self.backends, self.monitor, self.duplex),
            )
            await self.monitor.stopped()
            self.stopping.remove()  # last: a signal while the status is written still hurries, never interrupts
        return RunResult(list(self.timelines), list(self.failures), self.fatal, self.stopping.hurried)

    # ---- start and stop -----------------------------------------------------------------------

    async def _start_backends(self) -> bool:
        fatal = await self.backends.start()
        if fatal is not None:
            self._fail_run(fatal)
            return False
        live = bool(getattr(self.source.instance, "live", True))
        self._run.live = live
        self.wake_worker.set_live(live)
        self.turns.set_live(live)
        if not getattr(self.stt.instance, "replies", False) and self.responder is None and self.tts is not None:
            self._fail_run(
                f"{self.stt.spec.section} backend '{self.stt.spec.backend}' does not reply by itself: "
                "add a [responder] section to the profile"
            )
            return False
        await self.speaker.prepare()
        return True

    def _out_of_restarts(self, message: str) -> None:
        log.error("%s", message)
        self._fail_run(message)

    def _fail_run(self, message: str) -> None:
        self._run.fatal = message
        self.request_stop()

    def _no_more_audio(self) -> bool:
        """No new STT stream is wanted: the run stops, or a finite source ended."""
        return self._run.stop.is_set() or self._run.source_done

    async def _shutdown(self, tasks: list[asyncio.Task]) -> None:
        self.monitor.stopping(self.fatal or "asked to")
        timeout = self.settings.shutdown_timeout
        capture = tasks[0] if tasks else None
        if capture is not None:
            capture.cancel()
        self._close_feeds()
        # the player is stopped at once: a player cut off by cancellation alone may take its time
        await self.turns.cancel(timeout, self.conversation.task if self.conversation else None, then=self.speaker.stop)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=timeout)
        await self.timers.close()
        self.speech.close()
        await self.speaker.close()
        await self.duplex.close()  # other programs' volumes back
        with contextlib.suppress(Exception):
            await self.plugins.emit("shutdown")
        await self.wake_worker.close()  # before the detector is left
        await self.backends.stop(timeout)
        await self.plugins.drain(1.0)
        self.live.close()
        self.monitor.close()
        log.info("stopped after %d turns", self.turns_done)

    def _close_feeds(self) -> None:
        for feed in (self.turns.feed, self.conversation.feed if self.conversation else None):
            if feed is not None:
                feed.close()

    # ---- capture and routing ----------------------------------------------------------------------

    async def _capture(self) -> None:
        slot = self.source
        while True:
            try:
                source = await self.backends.ready(slot)
                async with contextlib.aclosing(source.stream()) as chunks:
                    async for chunk in chunks:
                        if slot.unrecovered and getattr(source, "healthy", True):
                            await self.backends.succeeded(slot)
                        await self._on_audio(chunk)
                        self.monitor.audio_arrived()
                if not getattr(source, "finite", False):  # a microphone does not run out of audio
                    raise BackendError("stopped delivering audio; reopening it")
                await self._source_ended()
                return
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                failure = await self.backends.report(slot, exc)
                if not failure.retryable and not slot.restarting:  # restarting: its backup takes over
                    self._fail_run(failure.message)
                    return
                if not slot.restarting:
                    await asyncio.sleep(slot.backoff.next())

    async def _on_audio(self, chunk: AudioChunk) -> None:
        """Route one captured chunk by state; runs on the loop for every chunk, so it stays lean."""
        if not self._run.live:
            await self.turns.wait_idle()
        self.input_level.add(chunk)  # as the microphone took it (clipping shows); the echo canceller needs it so too
        if not (chunk := self.duplex.clean(self.speaker.echo.process(chunk))).pcm:
            return  # the noise stage keeps less than 10 ms for the next chunk
        self.counters["frames"] += 1
        self.counters["audio_seconds"] += chunk.duration
        state, conversation = self.turns.state, self.conversation
        self.duplex.observe(chunk, state, self.speaker.playing, private=self.control.muted)
        if self.control.muted:  # the user's privacy mute: nothing listens
            self.counters["muted_frames"] += 1
            return
        if self.speaker.muted or (conversation is None and (state is State.SPEAKING or self.speaker.announcing)):
            self.counters["muted_frames"] += self.speaker.muted
            if conversation is not None and conversation.feed is not None and self.settings.muted_audio == "silence":
                await conversation.feed.put(silence_like(chunk))
            elif self.settings.barge_in and conversation is None and (state is State.SPEAKING or self.speaker.announcing):
                wake = await self.wake_worker.over_reply(chunk, None if self.speaker.muted else self.input_level.recent(chunk.duration)[0])
                if wake is not None:
                    await self.speaker.barge_in(wake)
            return
        if conversation is not None:
            if conversation.feed is not None:
                await conversation.feed.put(chunk)
        elif state is State.LISTENING:
            if self.turns.feed is not None:  # a follow-up window is open
                await self.turns.feed.put(chunk)
            wake = await self.wake_worker.listen(chunk)
            if wake is not None and self.turns.state is State.LISTENING:
                self._wake_up(wake)
        elif state is State.AWAKE and self.turns.feed is not None:
            await self.turns.feed.put(chunk)

    def _wake_up(self, wake: WakeEvent) -> None:
        """A wake word: count it, and start its turn with the pre-roll before it."""
        self.counters["wakes"] += 1
        self.follow_up.close()
        self.speaker.chime("wake")
        self.turns.wake_up(wake, self.wake_worker.woke(wake))

    def _listen_now(self) -> bool:
        """The control's listen command: a turn as if a wake word (labelled ``control``) was heard now."""
        if self.continuous or self.turns.state is not State.LISTENING or self.turns.tasks:
            return False
        self._wake_up(WakeEvent("control", 1.0, 1.0, time.monotonic()))
        return True

    def _unmuted(self) -> None:
        self.wake_worker.reset()
        if not self.turns.tasks and (wake := self.speaker.take_barge_in()) is not None:  # an announcement's; a reply's: _turn_closed
            self._wake_up(wake)

    def _turn_closed(self) -> None:
        if self.max_turns is not None and self.turns_done >= self.max_turns:
            self.request_stop()
        elif not self._run.stop.is_set() and self.conversation is None and (wake := self.speaker.take_barge_in()):
            self._wake_up(wake)
        elif not self._no_more_audio() and self.conversation is None and self.timelines:
            if seconds := self.follow_up.seconds_after(self.timelines[-1], self.turns.asks_follow_up):
                self.follow_up.open(seconds)

    async def _source_ended(self) -> None:
        log.info("audio source ended")
        self._run.source_done = True
        self.monitor.source_ended()
        self._close_feeds()
        if not self.stop_at_source_end:
            return
        if self.conversation is not None and self.conversation.task is not None:
            await asyncio.wait([self.conversation.task])
        await self.turns.drain()
        self.request_stop()


class _Run:
    """What one ``Engine.run()`` sets up on the loop and learns as it goes."""

    def __init__(self) -> None:
        self.stop: asyncio.Event | None = None
        self.started_at = 0.0
        self.live = True  # the source is live; False: lock-step with turns (see the module docstring)
        self.source_done = False
        self.fatal: str | None = None

    def begin(self) -> None:
        self.stop = asyncio.Event()
        self.started_at = time.monotonic()
