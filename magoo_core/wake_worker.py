"""Wake scoring: the one place that calls the wake detector.

:class:`WakeWorker` owns the ``magoo-wake`` worker thread, the converter to the detector's frames,
the pre-roll (the audio just before a wake word, which the turn's STT hears first), the count of
wakes per word, the :class:`~magoo_core.wake_scores.WakeScoreboard` and ``[wake.verify]``'s
:class:`~magoo_core.wake_verify.WakeVerifier`. For a live source each chunk is scored on
the worker (one thread, calls in the order submitted, never overlapping), so websocket and player
I/O on the loop stay responsive; for a lock-step source (a file read as fast as possible) it is
scored on the loop, because nothing else is in flight while the engine listens.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from .audio import AudioConverter, RingBuffer
from .clips import Clips
from .lifecycle import Backends, BackendSlot
from .service_slots import ServiceRole
from .settings import EngineSettings
from .types import AudioChunk, WakeEvent
from .voice_barge_in import VoiceBargeIn
from .wake_scores import WakeScoreboard
from .wake_verify import WakeVerifier

log = logging.getLogger("magoo.engine")

#: seconds of audio kept beyond the pre-roll, for a detection that comes this late after its wake
#: word's frame (a starved CPU, a detector that confirms over several frames)
LATE_DETECTION = 5.0


class WakeWorker:
    """Scores audio with the ``[wake]`` backend and resets it, on the right thread.

    All methods are called on the event loop. ``scores`` may be read from any thread.

    :param slot: the wake detector's slot; None (continuous mode): nothing is ever scored.
    :param backends: where a detector's failure and recovery are reported.
    :param settings: ``preroll`` (seconds kept before a wake word) and ``shutdown_timeout``
        (seconds to wait for a ``process()`` in progress before leaving it).
    :param counters: the engine's counters, where ``wakes_rejected`` (by ``[wake.verify]``) is kept
        up to date (on the loop).
    """

    def __init__(
        self, slot: BackendSlot | None, backends: Backends, settings: EngineSettings, counters: dict[str, float] | None = None
    ) -> None:
        self.slot = slot
        self.scores = WakeScoreboard()  # how near each wake word came
        self.last_wake: WakeEvent | None = None
        self.wakes: dict[str, int] = {}  # wakes per word (label)
        self.clips = Clips.of(settings)  # [engine] save_clips; None: no clips kept
        self._backends = backends
        self._settings = settings  # shutdown_timeout is read when used (a reload may change it)
        self._preroll_seconds = settings.preroll
        self._preroll = RingBuffer(settings.preroll + LATE_DETECTION)
        self._live = True
        self._executor: ThreadPoolExecutor | None = None
        self._converter: AudioConverter | None = None  # used on the scoring thread only
        self._detector: Any = None  # the instance the converter was made for
        #: the detector's process() runs now (read from the loop when stopping at once)
        self.scoring = False
        if slot is not None:
            slot.before_stop = self.idle
        #: the second opinion on each wake (``[wake.verify]``), or None
        self.verify = None if slot is None or slot.configured.verify is None else WakeVerifier(slot.configured.verify)
        self._loading: asyncio.Task | None = None
        self._counters = {} if counters is None else counters
        self._counters["wakes_rejected"] = 0
        #: barge-in by the user's voice (``[engine] barge_in = "voice"``)
        self.voice = VoiceBargeIn(settings)

    def open(self) -> None:
        """Start the worker thread (before the backends start: a restart waits on it)."""
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="magoo-wake")
        self.voice.check_start()
        if self.verify is not None:  # loads while the backends start; the first score() waits for it
            self._loading = asyncio.get_running_loop().create_task(self.verify.load(), name="magoo-wake-verify")

    @property
    def rejected(self) -> int:
        """Wakes ``[wake.verify]`` dropped so far."""
        return 0 if self.verify is None else self.verify.rejected

    def set_live(self, live: bool) -> None:
        """Whether the source is live (score on the worker) or lock-step (score on the loop);
        known once the source has started."""
        self._live = live

    async def listen(self, chunk: AudioChunk) -> WakeEvent | None:
        """Keep ``chunk`` in the pre-roll and score it (see :meth:`score`)."""
        self._preroll.append(chunk)
        return await self.score(chunk)

    def woke(self, wake: WakeEvent) -> list[AudioChunk]:
        """Count ``wake`` (the engine starts its turn); the audio from ``preroll`` seconds before
        the wake word's own frame (``wake.timestamp``) up to now, handed over once.

        Anchored on the wake word, not on its detection: when the detection comes late (chunks
        captured after the wake word's frame were scored before it came; up to
        :data:`LATE_DETECTION` s of them), the audio since the wake word is handed over too, so
        the whole command reaches the STT. Lateness is counted in audio (the chunks stamped after
        the wake word's frame), not on the clock: a remote detector's answer comes back some
        chunks later, and from a file read faster than real time those chunks took no time.
        """
        self.last_wake = wake
        self.wakes[wake.label] = self.wakes.get(wake.label, 0) + 1
        chunks = self.voice.preroll(wake, self._preroll.chunks())
        self._preroll.clear()
        late = sum(chunk.duration for chunk in chunks if chunk.timestamp > wake.timestamp)
        keep = self._preroll_seconds + min(late, LATE_DETECTION)
        preroll: list[AudioChunk] = []
        held = 0.0
        for chunk in reversed(chunks):
            if preroll and held + chunk.duration > keep + 1e-6:
                break
            preroll.append(chunk)
            held += chunk.duration
        return preroll[::-1]

    async def over_reply(self, chunk: AudioChunk, raw_level: float | None) -> WakeEvent | None:
        """While something plays: the wake word in ``chunk`` (as :meth:`score`), else, with
        ``[engine] barge_in = "voice"`` and the microphone open (echo cancellation running), the
        user's voice: a :class:`WakeEvent` labelled ``"voice"`` (see :class:`VoiceBargeIn`).
        Never raises.

        :param chunk: the microphone's audio after echo cancellation.
        :param raw_level: the RMS level (0..1) of the same audio before it; None: the microphone
            is muted while speaking.
        """
        wake = await self.score(chunk)
        if wake is not None or not self.voice.wanted(raw_level is not None):
            return wake
        if not self.voice.keep(chunk):
            return None  # a barge-in's audio is being kept for the next turn
        if not self._live:
            start = self.voice.hear(chunk, raw_level)
        else:
            try:
                start = await asyncio.get_running_loop().run_in_executor(self._executor, self.voice.hear, chunk, raw_level)
            except RuntimeError:  # the worker is shut down: the run stops
                return None
        return None if start is None else self.voice.fired(start)

    async def score(self, chunk: AudioChunk) -> WakeEvent | None:
        """Score one captured chunk; the detection it contains, if any. Never raises: a failing
        detector is reported, and while it restarts nothing is scored."""
        slot = self.slot
        if isinstance(slot, ServiceRole):  # a service's wake word: it, or the backup while it is away
            detector = slot.now()
        else:
            detector = None if slot is None or slot.restarting else slot.instance
        if detector is None:
            return None  # deaf only while it restarts
        if self._loading is not None:
            await self._loading
            self._loading = None
        if self._detector is not detector:  # first frame, or a restarted detector
            self._detector = detector
            self._converter = AudioConverter(detector.input_format, detector.frame_samples)
        try:
            if self._live:
                loop = asyncio.get_running_loop()
                event = await loop.run_in_executor(self._executor, self._score_frames, detector, chunk)
            else:
                # Lock-step source: nothing else is in flight while the engine listens (turns wait
                # for the source to be idle), so the round trip to the worker would only cost CPU.
                event = self._score_frames(detector, chunk)
        except Exception as exc:
            await self._backends.report(slot, exc)
            return None
        if slot.unrecovered:
            await self._backends.succeeded(slot)
        if self.verify is not None:
            self._counters["wakes_rejected"] = self.verify.rejected
        return event

    def _score_frames(self, detector: Any, chunk: AudioChunk) -> WakeEvent | None:
        """Convert to the detector's frames and score them in order: on the wake worker thread for a
        live source, on the loop for a lock-step one (never both in one run)."""
        self.scoring = True
        try:
            return self._score_each(detector, chunk)
        finally:
            self.scoring = False

    def _score_each(self, detector: Any, chunk: AudioChunk) -> WakeEvent | None:
        verify = self.verify
        if verify is not None and (confirmed := verify.hear(chunk)) is not None:
            return confirmed
        for frame in self._converter.convert(chunk):
            event = detector.process(frame)
            self.scores.update(detector, frame)
            if self.clips is not None:
                self.clips.scored(detector, frame, event is not None)
            if event is not None:
                self._converter.reset()
                detector.reset()
                return event if verify is None else verify.check(event)
        return None

    def reset(self) -> None:
        """Forget what was heard: the pre-roll at once, and the detector where it scores: queued on
        the wake worker for a live source (FIFO, so it precedes later frames), at once on the loop
        for a lock-step one."""
        self._preroll.clear()
        self.voice.forget()
        detector, converter = self._detector, self._converter
        if self._executor is None:
            return

        def reset() -> None:
            if self.clips is not None:
                self.clips.reset()
            try:
                self.voice.reset_detector()
                if self.verify is not None:
                    self.verify.reset()
                if detector is not None:
                    converter.reset()
                    detector.reset()
            except Exception:
                log.error("%s: reset() raised", self.slot.spec.section, exc_info=True)

        if not self._live:
            reset()
            return
        with contextlib.suppress(RuntimeError):  # executor already shut down
            self._executor.submit(reset)

    async def reconfigure(self, config: Any) -> bool:
        """Hand the running detector its new ``config`` (a reload) through its optional
        ``reconfigure(config) -> bool``, on the thread that scores (never during a ``process()``).

        :returns: True when it took the config in place; False when it has no such method, said
            no, or is not running (then the reload restarts it).
        :raises: what its ``reconfigure`` raises.
        """
        detector = None if self.slot is None or self.slot.restarting else self.slot.instance
        method = getattr(detector, "reconfigure", None)
        if method is None:
            return False
        if not self._live or self._executor is None:
            return bool(method(config))
        return bool(await asyncio.get_running_loop().run_in_executor(self._executor, method, config))

    async def idle(self) -> None:
        """Wait (bounded) until the wake worker has done what is queued, so that a detector being
        restarted is never left while its process() or reset() runs."""
        executor = self._executor
        if executor is None:
            return
        try:
            done = asyncio.wrap_future(executor.submit(lambda: None))
        except RuntimeError:  # shut down already: nothing can be running
            return
        try:
            await asyncio.wait_for(done, self._settings.shutdown_timeout)
        except TimeoutError:
            log.warning("the wake detector is stuck in process(); restarting it anyway")

    def abandon(self) -> bool:
        """Stop at once: drop what is queued and do not wait for the worker thread.

        :returns: True when the detector may be left now; False while its process() still runs
            (leaving a native library under it would crash the process).
        """
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
        return not self.scoring

    async def close(self) -> None:
        """Stop the worker thread; called before the detector is left, because a native library
        freed under a running process() or reset() crashes the whole process."""
        if self._executor is None:
            return
        self._executor.shutdown(wait=False, cancel_futures=True)
        worker_exit = asyncio.to_thread(self._executor.shutdown, wait=True)
        try:
            await asyncio.wait_for(worker_exit, self._settings.shutdown_timeout)
        except TimeoutError:
            log.warning("the wake detector is stuck in process(); leaving its thread behind")
        if self.clips is not None:  # after the scoring thread: its last near miss is queued too
            await asyncio.to_thread(self.clips.close, self._settings.shutdown_timeout)
        if self.verify is not None:
            await self._leave_verifier()

    async def _leave_verifier(self) -> None:
        """Stop loading the verifier, and leave it unless the worker thread is stuck in a scoring
        call (which may be using it)."""
        if self._loading is not None:
            self._loading.cancel()
            await asyncio.gather(self._loading, return_exceptions=True)
        if not self.scoring:
            await self.verify.close()
