"""The engine: one asyncio loop that runs the assistant.

Threads: everything here runs on the event loop, except wake scoring, which runs in one
dedicated worker thread (``magoo-wake``) so websocket and player I/O stay responsive. Audio
sources hand audio over from their own threads through :class:`magoo_core.audio.CaptureQueue`.

States: listening → awake (capturing the command) → thinking → speaking → listening. With no
wake detector in the profile the engine streams continuously to the speech-to-text backend and
reads one turn after another from it (the conversational setup).

Half-duplex: the microphone is muted before the reply's first sound and stays muted until
``mute_post`` seconds after the player reports the real end; every path out of speaking
(success, TTS error, player error, cancellation, shutdown) unmutes.

A source that is not ``live`` (a file read as fast as possible) is consumed in lock-step with
turns: while the assistant thinks and speaks, no audio is read, exactly as if the microphone were
muted, which makes runs over recorded audio deterministic.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import threading
import time
from collections import deque
from collections.abc import AsyncIterator, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from .audio import AudioConverter, RingBuffer
from .errors import BackendError
from .lifecycle import BackendSlot, RestartBudget, describe_failure
from .plugins import Plugins
from .profile import Profile
from .roles import STT_OUTPUTS, TTS_OUTPUTS, AudioStream
from .speakable import speakable
from .status import InputLevel, status_document, status_line, write_status_file
from .systemd import Notifier
from .types import (
    AudioChunk,
    BackendFailure,
    EncodedAudio,
    EngineStatus,
    Outcome,
    Reply,
    SpeechActivity,
    State,
    Transcript,
    TurnTimeline,
    WakeEvent,
)
from .wake_scores import WakeScoreboard

log = logging.getLogger("magoo.engine")

HISTORY = 1000  # timelines and failures kept in memory for a run that lasts weeks
FEED_DEPTH = 8  # chunks buffered towards STT from a source that can wait (lock-step)
LIVE_FEED_DEPTH = 1024  # ~80 s of 80 ms chunks: far beyond any healthy STT's lag


class _TurnDropped(Exception):
    """The turn was abandoned; the failure has been reported already."""


@dataclass(eq=False)
class _Turn:
    number: int
    started: float
    wake: float | None = None
    detected: float | None = None
    speech_end: float | None = None
    transcript_at: float | None = None
    reply_at: float | None = None
    first_audio: float | None = None
    outcome: Outcome = Outcome.OK
    error: str | None = None
    final: Transcript | None = None

    def fail(self, outcome: Outcome, reason: str | None) -> None:
        if self.outcome is Outcome.OK:
            self.outcome, self.error = outcome, reason

    def timeline(self, ended: float) -> TurnTimeline:
        return TurnTimeline(
            self.number, self.started, self.wake, self.speech_end, self.transcript_at,
            self.reply_at, self.first_audio, ended, self.outcome, self.error, self.detected,
        )


@dataclass
class RunResult:
    """What a run did: the turns' timelines, the failures, and why it stopped if it had to."""

    timelines: list[TurnTimeline] = field(default_factory=list)
    failures: list[BackendFailure] = field(default_factory=list)
    fatal: str | None = None

    @property
    def exit_code(self) -> int:
        return 0 if self.fatal is None else 1


class _AudioFeed:
    """Audio on its way from the capture loop to one speech-to-text stream.

    For a source that can wait, ``put`` waits when ``FEED_DEPTH`` chunks are queued (lock-step).
    For a live source ``put`` never waits: past ``LIVE_FEED_DEPTH`` chunks (an STT that stopped
    reading) the oldest chunk is dropped and counted in ``counters["stt_overflows"]``.
    ``close()`` ends the stream and unblocks ``put``.
    """

    def __init__(self, *, live: bool, counters: dict[str, float]) -> None:
        self._live = live
        self._counters = counters
        self._queue: asyncio.Queue[AudioChunk | None] = asyncio.Queue(LIVE_FEED_DEPTH if live else FEED_DEPTH)
        self.closed = False

    async def put(self, chunk: AudioChunk) -> None:
        if self.closed:
            return
        if self._live:
            if self._queue.full():
                self._queue.get_nowait()
                self._counters["stt_overflows"] += 1
            self._queue.put_nowait(chunk)
        else:
            await self._queue.put(chunk)

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        while not self._queue.empty():
            self._queue.get_nowait()
        self._queue.put_nowait(None)

    async def chunks(
        self,
        converter: AudioConverter,
        preroll: Iterable[AudioChunk] = (),
        max_seconds: float | None = None,
    ) -> AsyncIterator[AudioChunk]:
        """Converted chunks: the pre-roll first, then live audio until closed or ``max_seconds``.

        ``max_seconds`` counts audio (deterministic for files) and wall time (for a live source
        that stops delivering), whichever runs out first.
        """
        loop = asyncio.get_running_loop()
        deadline = None if max_seconds is None else loop.time() + max_seconds
        heard = 0.0
        for chunk in preroll:
            for frame in converter.convert(chunk):
                yield frame
        while True:
            try:
                async with asyncio.timeout_at(deadline):  # no task per chunk, unlike wait_for
                    chunk = await self._queue.get()
            except TimeoutError:
                return
            if chunk is None:
                for frame in converter.flush():
                    yield frame
                return
            for frame in converter.convert(chunk):
                yield frame
            heard += chunk.duration
            if max_seconds is not None and heard >= max_seconds:
                return


class _Progress:
    """The engine's side of :class:`~magoo_core.roles.PlaybackProgress`: thread-safe, ordered.

    Calls from any thread are moved to the loop; events are emitted by one pump task in the
    order the player reported them.
    """

    def __init__(self, engine: Engine, turn: _Turn, text: str) -> None:
        self._engine = engine
        self._turn = turn
        self._text = text
        self._loop = asyncio.get_running_loop()
        self._loop_thread = threading.get_ident()
        self._events: asyncio.Queue[tuple[str, dict[str, Any]] | None] = asyncio.Queue()
        self._pump = self._loop.create_task(self._run())
        self.has_started = False
        #: the last sign of life of the reply: a piece of audio taken from the TTS, or a report
        self.last_activity = time.monotonic()
        #: the TTS is working on its next piece: the player waits for it, and is not to blame
        self.waiting_for_tts = False

    def touch(self) -> None:
        self.last_activity = time.monotonic()

    def started(self) -> None:
        self._call(self._on_started)

    def played(self, level: float, duration: float) -> None:
        self._call(self._on_played, level, duration)

    def _call(self, fn: Any, *args: Any) -> None:
        if threading.get_ident() == self._loop_thread:
            fn(*args)
        else:
            with contextlib.suppress(RuntimeError):  # the loop has closed: nobody is listening
                self._loop.call_soon_threadsafe(fn, *args)

    def _on_started(self) -> None:
        self.touch()
        if self.has_started:
            return
        self.has_started = True
        self._turn.first_audio = time.monotonic()
        self._events.put_nowait(("speak_start", {"text": self._text, "turn": self._turn.number}))

    def _on_played(self, level: float, duration: float) -> None:
        self.touch()
        if not self.has_started:
            self._on_started()
        self._events.put_nowait(("speak_chunk", {"level": level, "duration": duration, "turn": self._turn.number}))

    async def _run(self) -> None:
        while (item := await self._events.get()) is not None:
            await self._engine.plugins.emit(item[0], **item[1])

    async def flush(self) -> None:
        """Wait until every reported event has been emitted."""
        self._events.put_nowait(None)
        await self._pump


class Engine:
    """Runs one profile until stopped, the audio ends, or ``max_turns`` turns are done.

    :param profile: the validated profile.
    :param plugins: the plugin manager the profile was validated against.
    :param max_turns: stop after this many turns (any outcome); None = no limit.
    :param stop_at_source_end: stop when a finite source (a file) ends, after the last turn.
    :param notifier: where READY, WATCHDOG and STATUS go; default: systemd's ``$NOTIFY_SOCKET``
        when there is one (see :mod:`magoo_core.systemd`).
    """

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
        self.settings = profile.engine
        self.max_turns = max_turns
        self.stop_at_source_end = stop_at_source_end
        self.notifier = notifier if notifier is not None else Notifier.from_environ()
        self.restart_budget = RestartBudget(
            self.settings.exit_after_restarts, self.settings.restart_window, self._out_of_restarts
        )

        def slot(spec):
            return None if spec is None else BackendSlot(spec, self.settings, plugins, self.restart_budget)

        self.source = slot(profile.audio_source)
        self.wake = slot(profile.wake)
        if self.wake is not None:
            self.wake.before_stop = self._wake_worker_idle
        self.stt = slot(profile.stt)
        self.responder = slot(profile.responder)
        self.tts = slot(profile.tts)
        self.player = slot(profile.player)
        self.actuators = [slot(spec) for spec in profile.actuators]

        self.state = State.LISTENING
        self.muted = False
        self.counters: dict[str, float] = {"frames": 0, "audio_seconds": 0.0, "wakes": 0, "muted_frames": 0, "stt_overflows": 0}
        self.input_level = InputLevel()
        self.last_wake: WakeEvent | None = None
        self.wake_scores = WakeScoreboard()  # how near each wake word came; fed on the wake worker
        self.wakes: dict[str, int] = {}
        self.timelines: deque[TurnTimeline] = deque(maxlen=HISTORY)
        self.failures: deque[BackendFailure] = deque(maxlen=HISTORY)
        self.errors = 0
        self.turns_done = 0

        self._turn_count = 0
        self._preroll = RingBuffer(self.settings.preroll)
        self._feed: _AudioFeed | None = None
        self._turn_tasks: set[asyncio.Task] = set()
        self._pending_wake: WakeEvent | None = None
        self._barged = False
        self._awaiting_reply: _Turn | None = None
        self._reply_timer: asyncio.Task | None = None
        self._open: _Turn | None = None  # continuous mode: the turn whose speech is being heard
        self._answer_lock: asyncio.Lock | None = None
        self._wake_executor: ThreadPoolExecutor | None = None
        self._wake_converter: AudioConverter | None = None  # used on the wake worker thread only
        self._wake_detector: Any = None  # the instance the converter was made for
        self._source_done = False
        self._audio_ready = False  # the first chunk went through: READY was sent
        self._fatal: str | None = None
        self._started_at = 0.0
        self._stop: asyncio.Event | None = None
        self._idle: asyncio.Event | None = None
        self._live = True
        self._converse_task: asyncio.Task | None = None

    # ---- public ---------------------------------------------------------------------------------

    @property
    def fatal(self) -> str | None:
        """Why the run stops with exit code 1 (a backend that cannot start, restarts run out ...);
        None while it has no such reason."""
        return self._fatal

    @property
    def continuous(self) -> bool:
        """True when there is no wake detector: audio streams to speech-to-text all the time."""
        return self.wake is None

    def slots(self) -> list[BackendSlot]:
        candidates = [self.source, self.wake, self.stt, self.responder, self.tts, self.player, *self.actuators]
        return [s for s in candidates if s is not None]

    def request_stop(self) -> None:
        """Ask the engine to stop (safe from signal handlers on the loop thread)."""
        if self._stop is not None and not self._stop.is_set():
            log.info("stopping")
            self._stop.set()

    def status(self) -> EngineStatus:
        backends: dict[str, dict[str, float]] = {}
        health: dict[str, str] = {}
        for key, slot in _keyed(self.slots()):
            health[key] = _health(slot)
            stats = getattr(slot.instance, "stats", None)
            try:
                backends[key] = dict(stats()) if callable(stats) else {}
            except Exception:
                log.debug("stats() of %s raised", key, exc_info=True)
        counters = dict(self.counters)
        counters["overflows"] = sum(b.get("overflows", 0) for b in backends.values())
        counters["restarts"] = sum(slot.restarts for slot in self.slots())
        return EngineStatus(
            self.state, time.monotonic() - self._started_at, self.turns_done, self.errors, counters, backends,
            health=health,
            input_level=self.input_level.value,
            last_wake=self.last_wake,
            wakes=dict(self.wakes),
        )

    async def run(self) -> RunResult:
        """Run until stopped; returns what happened. Never raises for backend failures."""
        self._stop = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._answer_lock = asyncio.Lock()
        self._started_at = time.monotonic()
        self.plugins.hook_timeout = self.settings.hook_timeout
        self._wake_executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="magoo-wake")
        tasks: list[asyncio.Task] = []
        removers = self._install_signal_handlers()
        try:
            if await self._start_backends():
                await self.plugins.emit("startup", profile=self.profile)
                log.info("%s: listening%s", self.profile.name, "" if self.wake else " (continuous)")
                tasks.append(asyncio.create_task(self._capture(), name="magoo-capture"))
                tasks.append(asyncio.create_task(self._heartbeat(), name="magoo-heartbeat"))
                if self.notifier.enabled:
                    tasks.append(asyncio.create_task(self._notify_systemd(), name="magoo-systemd"))
                if self.settings.status_file is not None:
                    tasks.append(asyncio.create_task(self._write_status(), name="magoo-status"))
                if self.continuous:
                    self._converse_task = asyncio.create_task(self._converse(), name="magoo-converse")
                    tasks.append(self._converse_task)
                await self._stop.wait()
        finally:
            await self._shutdown(tasks)
            for remove in removers:
                remove()
            if self.settings.status_file is not None:
                await self._write_status_once(running=False)
        return RunResult(list(self.timelines), list(self.failures), self._fatal)

    # ---- start and stop -----------------------------------------------------------------------

    async def _start_backends(self) -> bool:
        for slot in self.slots():
            try:
                await slot.start()
            except Exception as exc:
                if slot in self.actuators:
                    await self._without_actuator(slot, exc)
                    continue
                failure = describe_failure(slot.spec, exc)
                if not isinstance(exc, BackendError):  # a plugin bug: the traceback goes to the log
                    log.error("could not start %s", failure.message, exc_info=exc)
                self._fail_run(f"could not start {failure.message}")
                return False
        self._live = bool(getattr(self.source.instance, "live", True))
        stt = self.stt.instance
        if not getattr(stt, "replies", False) and self.responder is None and self.tts is not None:
            self._fail_run(
                f"{self.stt.spec.section} backend '{self.stt.spec.backend}' does not reply by itself: "
                "add a [responder] section to the profile"
            )
            return False
        await self._player_expects_tts_output()
        return True

    async def _player_expects_tts_output(self) -> None:
        """Tell a player that can get ready for a kind of audio (start its decoder) what the TTS
        yields, so the first reply does not wait for that. Optional on both sides; a failure here
        is only logged: the player then gets ready at the first reply, as without it."""
        tts = self.tts.instance if self.tts is not None else None
        player = self.player.instance if self.player is not None else None
        output, expect = getattr(tts, "output_format", None), getattr(player, "expect", None)
        if output is None or not callable(expect):
            return
        try:
            await asyncio.wait_for(expect(output), self.settings.hook_timeout)
        except Exception as exc:
            log.warning("%s %s could not get ready for %s: %s", self.player.spec.section, self.player.spec.backend, output, exc)

    async def _without_actuator(self, slot: BackendSlot, exc: Exception) -> None:
        """An actuator that cannot start (a servo without its GPIO daemon) is reported once and left
        out: the assistant goes on listening and speaking without it."""
        failure = describe_failure(slot.spec, exc)
        log.warning("%s; running without it", failure.message, exc_info=not isinstance(exc, BackendError))
        self.failures.append(failure)
        self.errors += 1
        self.actuators.remove(slot)
        await self.plugins.emit("error", failure=failure)

    def _out_of_restarts(self, message: str) -> None:
        log.error("%s", message)
        self._fail_run(message)

    def _fail_run(self, message: str) -> None:
        self._fatal = message
        self.request_stop()

    async def _shutdown(self, tasks: list[asyncio.Task]) -> None:
        self.notifier.stopping(f"stopping ({self._fatal or 'asked to'}); {status_line(self.status())}")
        timeout = self.settings.shutdown_timeout
        capture = tasks[0] if tasks else None
        if capture is not None:
            capture.cancel()
        if self._feed is not None:
            self._feed.close()  # the utterance in progress ends here; STT may still finish it
        await self._finish_turns(timeout)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=timeout)
        if self.muted:
            self._unmute()
        with contextlib.suppress(Exception):
            await self.plugins.emit("shutdown")
        if self._wake_executor is not None:
            # before the detector is left: a native library freed under a running process() or
            # reset() crashes the whole process
            self._wake_executor.shutdown(wait=False, cancel_futures=True)
            worker_exit = asyncio.to_thread(self._wake_executor.shutdown, wait=True)
            try:
                await asyncio.wait_for(worker_exit, timeout)
            except TimeoutError:
                log.warning("the wake detector is stuck in process(); leaving its thread behind")
        for slot in reversed(self.slots()):
            await slot.stop(timeout)
        await self.plugins.drain(1.0)
        self.notifier.close()
        log.info("stopped after %d turns", self.turns_done)

    async def _finish_turns(self, timeout: float) -> None:
        """Let the turn in progress (and a continuous utterance) finish for ``timeout`` s, then cancel."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout

        def unfinished() -> set[asyncio.Task]:
            tasks = set(self._turn_tasks)
            if self._converse_task is not None:
                tasks.add(self._converse_task)
            return {task for task in tasks if not task.done()}

        while (waiting := unfinished()) and (remaining := deadline - loop.time()) > 0:
            await asyncio.wait(waiting, timeout=remaining)
        for task in waiting:
            task.cancel()
        if waiting:
            await asyncio.wait(waiting, timeout=timeout)

    def _install_signal_handlers(self) -> list:
        loop = asyncio.get_running_loop()
        removers = []
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                loop.add_signal_handler(sig, self.request_stop)
            except (NotImplementedError, RuntimeError, ValueError):
                continue  # not the main thread (tests, embedding): the caller stops us
            removers.append(lambda sig=sig: loop.remove_signal_handler(sig))
        return removers

    async def _heartbeat(self) -> None:
        while True:
            await asyncio.sleep(self.settings.heartbeat_interval)
            status = self.status()
            log.info("%s", status_line(status))
            await self.plugins.emit("heartbeat", status=status)

    async def _notify_systemd(self) -> None:
        """STATUS for ``systemctl status``; WATCHDOG only while audio reaches the engine.

        This task runs on the event loop, so a blocked loop sends nothing; a source that stopped
        delivering (a frozen driver, a stalled device) stops the pings too. Either way systemd's
        ``WatchdogSec`` runs out and it restarts magoo. After a finite source ended, nothing more
        is expected, and the pings go on.
        """
        interval = self.notifier.watchdog_interval or self.settings.heartbeat_interval
        frames = -1.0
        starved = False
        while True:
            await asyncio.sleep(interval)
            flowing = self.counters["frames"] > frames or self._source_done
            frames = self.counters["frames"]
            if flowing and self._audio_ready:
                if starved:
                    log.info("audio reaches the engine again; the systemd watchdog is fed again")
                starved = False
                self.notifier.watchdog()
            elif self._audio_ready and not starved:
                starved = True
                log.warning("no audio reached the engine for %.0f s; the systemd watchdog is not fed", interval)
            self.notifier.status(status_line(self.status()))

    async def _write_status(self) -> None:
        while True:
            await self._write_status_once(running=True)
            await asyncio.sleep(self.settings.status_interval)

    async def _write_status_once(self, *, running: bool) -> None:
        path = self.settings.status_file
        if path is None:
            return
        if not path.is_absolute() and self.profile.path is not None:
            path = self.profile.path.parent / path
        document = status_document(self.status(), name=self.profile.name, running=running)
        try:
            await asyncio.to_thread(write_status_file, path, document)
        except OSError as exc:
            log.warning("cannot write the status file %s: %s", path, exc.strerror or exc)

    # ---- failures -------------------------------------------------------------------------------

    async def _report(self, slot: BackendSlot, exc: BaseException, turn: _Turn | None = None) -> BackendFailure:
        failure = describe_failure(slot.spec, exc, turn.number if turn else None)
        if isinstance(exc, (BackendError, TimeoutError)):
            log.warning("%s", failure.message)
        else:
            log.error("%s", failure.message, exc_info=exc)
        self.failures.append(failure)
        self.errors += 1
        slot.failed(failure, restart=getattr(exc, "restart", True))
        if turn is not None:
            turn.fail(Outcome.ERROR, failure.message)
        await self.plugins.emit("error", failure=failure)
        return failure

    async def _succeeded(self, slot: BackendSlot) -> None:
        """The backend did its job; announce the recovery when it had been failing."""
        if not slot.unrecovered:
            slot.succeeded()
            return
        failures, downtime = slot.succeeded()
        log.info(
            "%s %s works again after %d failure%s (%.1f s)",
            slot.spec.section, slot.spec.backend, failures, "" if failures == 1 else "s", downtime,
        )
        await self.plugins.emit(
            "recovered", role=slot.spec.role.value, backend=slot.spec.backend, failures=failures, downtime=downtime
        )

    @staticmethod
    async def _ready(slot: BackendSlot) -> Any:
        instance = await slot.ready()
        if instance is None:
            raise BackendError("is not running: its last restart failed; retrying with backoff")
        return instance

    # ---- capture --------------------------------------------------------------------------------

    async def _capture(self) -> None:
        slot = self.source
        while True:
            try:
                source = await self._ready(slot)
                async with contextlib.aclosing(source.stream()) as chunks:
                    async for chunk in chunks:
                        if slot.unrecovered and getattr(source, "healthy", True):
                            await self._succeeded(slot)
                        await self._on_audio(chunk)
                        if not self._audio_ready:
                            self._audio_ready = True
                            self.notifier.ready(status_line(self.status()))
                if not getattr(source, "finite", False):  # a microphone does not run out of audio
                    raise BackendError("stopped delivering audio; reopening it")
                await self._source_ended()
                return
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                failure = await self._report(slot, exc)
                if not failure.retryable and not slot.restarting:  # restarting: its backup takes over
                    self._fail_run(failure.message)
                    return
                if not slot.restarting:
                    await asyncio.sleep(slot.backoff.next())

    async def _on_audio(self, chunk: AudioChunk) -> None:
        """Route one captured chunk by state; runs on the loop for every chunk, so it stays lean."""
        if not self._live:
            await self._idle.wait()
        self.counters["frames"] += 1
        self.counters["audio_seconds"] += chunk.duration
        self.input_level.add(chunk)
        if self.muted:
            self.counters["muted_frames"] += 1
            if self.continuous and self._feed is not None and self.settings.muted_audio == "silence":
                await self._feed.put(_silence_like(chunk))
            elif self.settings.barge_in and self.state is State.SPEAKING and self.wake is not None:
                wake = await self._score(chunk)
                if wake is not None:
                    await self._barge_in(wake)
            return
        if self.continuous:
            if self._feed is not None:
                await self._feed.put(chunk)
        elif self.state is State.LISTENING:
            self._preroll.append(chunk)
            wake = await self._score(chunk)
            if wake is not None and self.state is State.LISTENING:
                self._begin_wake_turn(wake)
        elif self.state is State.AWAKE and self._feed is not None:
            await self._feed.put(chunk)

    async def _source_ended(self) -> None:
        log.info("audio source ended")
        self._source_done = True
        if self._feed is not None:
            self._feed.close()
        if not self.stop_at_source_end:
            return
        if self._converse_task is not None:
            await asyncio.wait([self._converse_task])
        while self._turn_tasks:  # a finishing turn may start another (barge-in)
            await asyncio.wait(set(self._turn_tasks))
        self.request_stop()

    # ---- wake -----------------------------------------------------------------------------------

    async def _score(self, chunk: AudioChunk) -> WakeEvent | None:
        slot = self.wake
        detector = slot.instance
        if detector is None or slot.restarting:
            return None  # deaf only while it restarts
        if self._wake_detector is not detector:  # first frame, or a restarted detector
            self._wake_detector = detector
            self._wake_converter = AudioConverter(detector.input_format, detector.frame_samples)
        try:
            if self._live:
                loop = asyncio.get_running_loop()
                event = await loop.run_in_executor(self._wake_executor, self._score_frames, detector, chunk)
            else:
                # Lock-step source: nothing else is in flight while the engine listens (turns wait
                # for the source to be idle), so the round trip to the worker would only cost CPU.
                event = self._score_frames(detector, chunk)
        except Exception as exc:
            await self._report(slot, exc)
            return None
        if slot.unrecovered:
            await self._succeeded(slot)
        return event

    def _score_frames(self, detector: Any, chunk: AudioChunk) -> WakeEvent | None:
        """Convert to the detector's frames and score them in order: on the wake worker thread for a
        live source, on the loop for a lock-step one (never both in one run)."""
        for frame in self._wake_converter.convert(chunk):
            event = detector.process(frame)
            self.wake_scores.update(detector, frame)
            if event is not None:
                self._wake_converter.reset()
                detector.reset()
                return event
        return None

    async def _wake_worker_idle(self) -> None:
        """Wait (bounded) until the wake worker has done what is queued, so that a detector being
        restarted is never left while its process() or reset() runs."""
        executor = self._wake_executor
        if executor is None:
            return
        try:
            done = asyncio.wrap_future(executor.submit(lambda: None))
        except RuntimeError:  # shut down already: nothing can be running
            return
        try:
            await asyncio.wait_for(done, self.settings.shutdown_timeout)
        except TimeoutError:
            log.warning("the wake detector is stuck in process(); restarting it anyway")

    def _reset_wake(self) -> None:
        """Reset the detector where it scores: queued on the wake worker for a live source (FIFO, so
        it precedes later frames), at once on the loop for a lock-step one."""
        detector, converter = self._wake_detector, self._wake_converter
        if detector is None or self._wake_executor is None:
            return

        def reset() -> None:
            try:
                converter.reset()
                detector.reset()
            except Exception:
                log.error("%s: reset() raised", self.wake.spec.section, exc_info=True)

        if not self._live:
            reset()
            return
        with contextlib.suppress(RuntimeError):  # executor already shut down
            self._wake_executor.submit(reset)

    def _begin_wake_turn(self, wake: WakeEvent) -> None:
        """Switch to awake *now*, so the very next chunk already goes to this turn."""
        self.state = State.AWAKE
        self.counters["wakes"] += 1
        self.last_wake = wake
        self.wakes[wake.label] = self.wakes.get(wake.label, 0) + 1
        self._feed = _AudioFeed(live=self._live, counters=self.counters)
        preroll = self._preroll.chunks()
        self._preroll.clear()
        self._spawn(self._wake_turn(wake, self._feed, preroll, detected=time.monotonic()))

    async def _barge_in(self, wake: WakeEvent) -> None:
        log.info("barge-in: %s (%.2f) while speaking", wake.label, wake.score)
        self._barged = True
        self._pending_wake = wake
        player = self.player.instance
        if player is not None:
            try:
                await player.stop()
            except Exception as exc:
                await self._report(self.player, exc)

    # ---- turns ----------------------------------------------------------------------------------

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._turn_tasks.add(task)
        task.add_done_callback(self._turn_tasks.discard)

    def _open_turn(self, *, wake: float | None = None) -> _Turn:
        """A new turn; one that a wake word starts begins at the frame that woke us."""
        self._turn_count += 1
        return _Turn(self._turn_count, time.monotonic() if wake is None else wake, wake=wake)

    async def _set_state(self, new: State, turn: _Turn | None, *, old: State | None = None) -> None:
        old = self.state if old is None else old
        self.state = new
        if new in (State.THINKING, State.SPEAKING):
            self._idle.clear()
        if old is not new:
            await self.plugins.emit("state_change", old=old, new=new, turn=turn.number if turn else None)

    async def _wake_turn(
        self, wake: WakeEvent, feed: _AudioFeed, preroll: list[AudioChunk], detected: float
    ) -> None:
        turn = self._open_turn(wake=wake.timestamp)
        turn.detected = detected
        log.info(
            "turn %d: wake word %s (score %.2f ≥ %.2f), detected %.0f ms after its frame was captured",
            turn.number, wake.label, wake.score, wake.threshold, (detected - wake.timestamp) * 1000,
        )
        async with self._turn_life(turn):
            try:
                await self.plugins.emit("wake", wake=wake, turn=turn.number)
                await self._set_state(State.AWAKE, turn, old=State.LISTENING)
                final, reply = await self._listen(turn, feed, preroll)
                await self._answer(turn, final, reply)
            finally:
                feed.close()
                if self._feed is feed:
                    self._feed = None

    @contextlib.asynccontextmanager
    async def _turn_life(self, turn: _Turn) -> AsyncIterator[None]:
        """Around a turn's work: a dropped turn ends quietly, a cancelled one says so, every turn closes."""
        try:
            yield
        except _TurnDropped:
            pass
        except asyncio.CancelledError:
            turn.fail(Outcome.CANCELLED, "cancelled (shutdown)")
            raise
        finally:
            await self._close_turn(turn)

    async def _listen(
        self, turn: _Turn, feed: _AudioFeed, preroll: list[AudioChunk]
    ) -> tuple[Transcript | None, Reply | None]:
        """Stream the utterance to STT until its final transcript (and its reply, if it replies)."""
        slot = self.stt
        final: Transcript | None = None
        reply: Reply | None = None
        limit = self.settings.capture_timeout + self.settings.reply_timeout
        async with self._attempt(slot, turn, limit, "final transcript or reply"):
            stt = await self._ready(slot)
            audio = AudioStream(
                feed.chunks(AudioConverter(stt.input_format), preroll, self.settings.capture_timeout), continuous=False
            )
            async with contextlib.aclosing(stt.transcribe(audio)) as results:
                async for item in results:
                    if isinstance(item, SpeechActivity):
                        await self._speech_activity(item, turn)
                    elif isinstance(item, Transcript):
                        await self.plugins.emit("transcript", transcript=item, turn=turn.number)
                        if item.final:
                            final = item
                            self._heard(turn, item)
                            feed.close()
                            if not stt.replies:
                                break
                            await self._set_state(State.THINKING, turn)
                    elif isinstance(item, Reply):
                        await self.plugins.emit("reply", reply=item, turn=turn.number)
                        if item.final:
                            reply = item
                            break
                    else:
                        raise _unexpected(item, "Transcript, Reply or SpeechActivity")
        return final, reply

    def _heard(self, turn: _Turn, final: Transcript) -> None:
        now = time.monotonic()
        turn.final = final
        turn.transcript_at = now
        if turn.speech_end is None:
            turn.speech_end = now
        log.info("turn %d: heard %r", turn.number, final.text)

    async def _speech_activity(self, item: SpeechActivity, turn: _Turn | None) -> None:
        number = turn.number if turn else None
        if item.started:
            await self.plugins.emit("speech_start", timestamp=item.timestamp, turn=number)
        else:
            if turn is not None:
                turn.speech_end = item.timestamp
            await self.plugins.emit("speech_end", timestamp=item.timestamp, turn=number)

    async def _answer(self, turn: _Turn, final: Transcript | None, reply: Reply | None) -> None:
        """From the final transcript to the end of the spoken reply.

        A reply from the speech-to-text backend itself is answered even without a transcript
        (a conversational backend may have transcription turned off, or its transcription failed).
        """
        if reply is None and (final is None or not final.text.strip()):
            turn.fail(Outcome.NO_SPEECH, "no speech heard")
            return
        if reply is None and self.responder is None:
            return  # transcription only: the transcript was the product
        await self._set_state(State.THINKING, turn)
        if reply is None:
            reply = await self._respond(turn, final)
        if reply is None or not reply.text.strip():
            turn.fail(Outcome.NO_REPLY, "nothing to say")
            return
        turn.reply_at = time.monotonic()
        log.info("turn %d: reply %r", turn.number, reply.text)
        if self.tts is not None and self.player is not None:
            text = speakable(reply.text) if self.settings.speakable_replies else reply.text
            if not text:
                turn.fail(Outcome.NO_REPLY, "the reply had nothing to say aloud")
                return
            await self._speak(turn, text)

    async def _respond(self, turn: _Turn, final: Transcript) -> Reply | None:
        slot = self.responder
        async with self._attempt(slot, turn, self.settings.reply_timeout, "reply"):
            responder = await self._ready(slot)
            reply = await responder.respond(final)
            if reply is not None and not isinstance(reply, Reply):
                raise _unexpected(reply, "Reply or None")
        if reply is not None:
            await self.plugins.emit("reply", reply=reply, turn=turn.number)
        return reply

    async def _speak(self, turn: _Turn, text: str) -> None:
        """Synthesize and play with the microphone muted; unmute on every way out."""
        self.muted = True
        muted_at = time.monotonic()
        self._barged = False
        await self._set_state(State.SPEAKING, turn)
        tts_failure: list[BaseException] = []
        progress = _Progress(self, turn, text)
        interrupted = True
        cancelled = False
        try:
            player = await self._ready_or_drop(self.player, turn)
            audio = self._synthesize(text, muted_at, tts_failure, progress)
            try:
                await self._play(player, audio, progress)
            except asyncio.CancelledError:
                cancelled = True
                raise
            except Exception as exc:
                await self._report(self.player, exc, turn)
                raise _TurnDropped from None
            finally:
                # A player that ended early (killed, stopped) leaves the stream suspended. Left to
                # the garbage collector, it and the TTS's generator inside it would each get an
                # aclose() task at once, and one of them fails with "already running".
                with contextlib.suppress(RuntimeError):  # a player still reading it from a task of its own
                    await audio.aclose()
            if tts_failure:
                await self._report(self.tts, tts_failure[0], turn)
                raise _TurnDropped
            interrupted = self._barged
            if self._barged:
                turn.fail(Outcome.INTERRUPTED, "barge-in")
            await self._succeeded(self.player)
            await self._succeeded(self.tts)
        finally:
            await self._end_speaking(turn, progress, interrupted, immediate=cancelled or self._barged)

    @contextlib.asynccontextmanager
    async def _attempt(self, slot: BackendSlot, turn: _Turn, timeout: float, waiting_for: str) -> AsyncIterator[None]:
        """One backend call for a turn: a timeout or a failure is reported and drops the turn."""
        try:
            async with asyncio.timeout(timeout):
                yield
        except _TurnDropped:
            raise
        except TimeoutError:
            await self._report(slot, BackendError(f"gave no {waiting_for} within {timeout:.0f} s"), turn)
            raise _TurnDropped from None
        except Exception as exc:
            await self._report(slot, exc, turn)
            raise _TurnDropped from None
        await self._succeeded(slot)

    async def _ready_or_drop(self, slot: BackendSlot, turn: _Turn) -> Any:
        try:
            return await self._ready(slot)
        except BackendError as exc:
            await self._report(slot, exc, turn)
            raise _TurnDropped from None

    async def _play(self, player: Any, audio: AsyncIterator, progress: _Progress) -> None:
        """``player.play()``, given up on when it shows no sign of life for ``reply_timeout``
        seconds while it is not waiting for the TTS: no audio taken, no start or level reported,
        not returned (a player that hangs would otherwise keep the microphone muted for good)."""
        limit = self.settings.reply_timeout
        playing = asyncio.ensure_future(player.play(audio, progress))
        try:
            while not playing.done():
                await asyncio.wait({playing}, timeout=min(0.25, limit / 4))
                quiet = time.monotonic() - progress.last_activity
                if not playing.done() and not progress.waiting_for_tts and quiet > limit:
                    with contextlib.suppress(Exception):
                        await asyncio.wait_for(player.stop(), 1.0)
                    raise BackendError(f"showed no progress for {limit:.0f} s while playing the reply")
            playing.result()
        finally:
            if not playing.done():
                playing.cancel()
                await asyncio.gather(playing, return_exceptions=True)

    async def _synthesize(
        self, text: str, muted_at: float, failure: list[BaseException], progress: _Progress
    ) -> AsyncIterator[AudioChunk | EncodedAudio]:
        """The TTS stream as the player sees it: held until the mic has been muted ``mute_pre``
        seconds; a TTS failure ends the stream (what was synthesized still plays) and is kept in
        ``failure`` so it is reported against the TTS backend, not the player. A TTS that gives
        no next piece within ``reply_timeout`` seconds has failed."""
        first = True
        limit = self.settings.reply_timeout
        try:
            progress.waiting_for_tts = True  # also while a restarting TTS comes back
            tts = await self._ready(self.tts)
            async with contextlib.aclosing(tts.synthesize(text)) as pieces:
                while True:
                    progress.waiting_for_tts = True
                    try:
                        async with asyncio.timeout(limit):
                            piece = await anext(pieces)
                    except StopAsyncIteration:
                        break
                    except TimeoutError:
                        raise BackendError(f"gave no audio within {limit:.0f} s") from None
                    finally:
                        progress.waiting_for_tts = False
                    progress.touch()
                    if not isinstance(piece, TTS_OUTPUTS):
                        raise _unexpected(piece, "AudioChunk or EncodedAudio")
                    if first:
                        first = False
                        wait = muted_at + self.settings.mute_pre - time.monotonic()
                        if wait > 0:
                            await asyncio.sleep(wait)
                    yield piece
        except (asyncio.CancelledError, GeneratorExit):
            raise
        except Exception as exc:
            failure.append(exc)
        finally:
            progress.waiting_for_tts = False
            progress.touch()  # the player now has until reply_timeout to finish what it holds

    async def _end_speaking(self, turn: _Turn, progress: _Progress, interrupted: bool, *, immediate: bool) -> None:
        try:
            await progress.flush()
            await self.plugins.emit("speak_end", turn=turn.number, interrupted=interrupted)
            if not immediate:
                await asyncio.sleep(self.settings.mute_post)
        finally:
            self._unmute()

    def _unmute(self) -> None:
        self.muted = False
        self._preroll.clear()
        self._reset_wake()

    async def _close_turn(self, turn: _Turn) -> None:
        timeline = turn.timeline(time.monotonic())
        self.timelines.append(timeline)
        self.turns_done += 1
        old = self.state
        self.state = State.LISTENING
        if not (self._turn_tasks - {asyncio.current_task()}):
            self._idle.set()
        log.info("turn %d %s", turn.number, timeline.summary())
        with contextlib.suppress(Exception):
            if old is not State.LISTENING:
                await self.plugins.emit("state_change", old=old, new=State.LISTENING, turn=None)
            await self.plugins.emit("turn_end", timeline=timeline)
        if self.max_turns is not None and self.turns_done >= self.max_turns:
            self.request_stop()
        elif self._pending_wake is not None and not self.continuous:
            wake, self._pending_wake = self._pending_wake, None
            self._begin_wake_turn(wake)

    # ---- continuous (no wake word) --------------------------------------------------------------

    async def _converse(self) -> None:
        """Keep one STT stream open on all the audio; restart it with backoff when it fails."""
        slot = self.stt
        try:
            while not self._stop.is_set() and not self._source_done:  # a file that ended needs no new stream
                feed = _AudioFeed(live=self._live, counters=self.counters)
                self._feed = feed
                try:
                    stt = await self._ready(slot)
                    audio = AudioStream(feed.chunks(AudioConverter(stt.input_format)), continuous=True)
                    async with contextlib.aclosing(stt.transcribe(audio)) as results:
                        async for item in results:
                            await self._continuous_item(stt, item)
                    if self._source_done or self._stop.is_set():
                        return
                    raise BackendError("the speech-to-text stream ended unexpectedly")
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    turn, self._open = self._open or self._awaiting_reply, None
                    failure = await self._report(slot, exc, turn)
                    if turn is not None:
                        await self._close_turn(turn)
                    if not failure.retryable and not slot.restarting:  # restarting: its backup takes over
                        self._fail_run(failure.message)
                        return
                    if not getattr(exc, "restart", True):
                        # the backend paces its own recovery (its next transcribe() waits for it)
                        await asyncio.sleep(slot.backoff.base)
                    elif not slot.restarting:
                        await asyncio.sleep(slot.backoff.next())
                finally:
                    feed.close()
        finally:
            self._feed = None

    async def _continuous_item(self, stt: Any, item: Any) -> None:
        if not isinstance(item, STT_OUTPUTS):
            raise _unexpected(item, "Transcript, Reply or SpeechActivity")
        if isinstance(item, SpeechActivity):
            if item.started:
                await self._begin_heard_turn()
            await self._speech_activity(item, self._open)
        elif isinstance(item, Transcript):
            turn = await self._begin_heard_turn()
            await self.plugins.emit("transcript", transcript=item, turn=turn.number)
            if not item.final:
                return
            self._heard(turn, item)
            self._open = None
            await self._succeeded(self.stt)
            if not item.text.strip():
                turn.fail(Outcome.NO_SPEECH, "no speech heard")
                await self._close_turn(turn)
            elif stt.replies:
                await self._set_state(State.THINKING, turn)
                self._awaiting_reply = turn
                self._reply_timer = asyncio.get_running_loop().create_task(self._reply_overdue(turn))
            else:
                self._spawn(self._continuous_answer(turn, item, None))
        elif isinstance(item, Reply):
            turn = self._awaiting_reply or self._open or await self._begin_heard_turn()
            await self.plugins.emit("reply", reply=item, turn=turn.number)
            if item.final:
                if self._reply_timer is not None:
                    self._reply_timer.cancel()
                self._awaiting_reply = self._open = None
                self._spawn(self._continuous_answer(turn, turn.final, item))

    async def _begin_heard_turn(self) -> _Turn:
        if self._open is None:
            self._open = self._open_turn()
            if self.state is State.LISTENING:
                await self._set_state(State.AWAKE, self._open)
        return self._open

    async def _reply_overdue(self, turn: _Turn) -> None:
        await asyncio.sleep(self.settings.reply_timeout)
        if self._awaiting_reply is turn:
            self._awaiting_reply = None
            await self._report(
                self.stt, BackendError(f"gave no reply within {self.settings.reply_timeout:.0f} s"), turn
            )
            await self._close_turn(turn)

    async def _continuous_answer(self, turn: _Turn, final: Transcript | None, reply: Reply | None) -> None:
        self._idle.clear()
        async with self._answer_lock, self._turn_life(turn):
            await self._answer(turn, final, reply)


def _keyed(slots: list[BackendSlot]) -> list[tuple[str, BackendSlot]]:
    """Each slot with its status key, ``"role:name"``; a backend used again (a second servo) gets
    ``"#2"``, ``"#3"`` ... in profile order."""
    seen: dict[str, int] = {}
    keyed = []
    for slot in slots:
        seen[slot.key] = seen.get(slot.key, 0) + 1
        keyed.append((slot.key if seen[slot.key] == 1 else f"{slot.key}#{seen[slot.key]}", slot))
    return keyed


def _health(slot: BackendSlot) -> str:
    if slot.restarting:
        return "restarting"
    if slot.instance is None:
        return "stopped"
    return "failing" if slot.unrecovered else "ok"


def _silence_like(chunk: AudioChunk) -> AudioChunk:
    return AudioChunk(bytes(len(chunk.pcm)), chunk.sample_rate, chunk.channels, chunk.sample_width, chunk.timestamp)


def _unexpected(item: object, expected: str) -> TypeError:
    return TypeError(f"yielded {type(item).__name__}; expected {expected}")
