"""Remote wake (``wake = "remote"``): Home Assistant's wake word engine listens, not magoo's.

What Home Assistant expects of such a satellite (``components/wyoming/assist_satellite.py``): once
it runs the satellite, the satellite sends ``run-pipeline{start_stage: wake, end_stage,
restart_on_end: true}`` and streams its microphone. Home Assistant sends ``detect`` when its
pipeline's wake stage starts, ``detection{name, timestamp}`` when its engine heard the wake word
(``timestamp``: milliseconds of audio since that stage began), and from there the same stream is
its speech-to-text's input; the rest of the turn is as with a local wake word. After a run it
starts the next one by itself (``restart_on_end``), but not after an ``error`` (so that a
pipeline that fails at once is not restarted in a tight loop): then the satellite asks again,
:data:`AFTER_TURN` after a turn that failed, with a growing delay after an error of the wake stage itself (a
pipeline without a wake word engine gives one every time): until Home Assistant's wake stage
listens again the satellite is not available, and the backups answer (nobody would hear the
wake word otherwise).

Audio reaches Home Assistant only while a pipeline was asked for and Home Assistant runs the
satellite (never while it is paused, disconnected, or between an error and the next request),
and only what the engine hands the wake detector: nothing while the microphone is muted, except
with ``barge_in``, where the reply being played is heard so that the wake word can stop it. Each
moment of audio is sent once: the turn's stream starts with the pre-roll, which the wake detector
already sent, and is cut by capture time.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import enum
import logging
import threading
from collections.abc import Awaitable, Callable
from dataclasses import replace

from magoo_core.backoff import Backoff
from magoo_core.types import AudioChunk, WakeEvent

log = logging.getLogger("magoo.wyoming.satellite")

#: chunks waiting to be written to Home Assistant; past it new audio is dropped (a link that does
#: not drain is closed by its write timeout anyway)
MAX_QUEUED = 256
#: seconds before asking again after a turn's error: Home Assistant ends the failed run (its
#: ``RUN_END``) right after sending the error, and a request must not overtake that
AFTER_TURN = 0.2
#: seconds of slack when comparing capture times (resampling rounds them)
SLACK = 0.0005


class Stage(enum.Enum):
    IDLE = "idle"  # Home Assistant does not run the satellite
    ASKED = "asked"  # run-pipeline sent; its wake stage has not said detect yet
    LISTENING = "listening"  # Home Assistant's wake word engine hears the stream
    TURN = "turn"  # it heard the wake word: the stream is the command, then the reply comes
    WAITING = "waiting"  # an error ended the pipeline; asking again after a delay


class RemoteWake:
    """The stream to Home Assistant's wake stage and the detections it sends back.

    Event-loop side: the session calls :meth:`start`, :meth:`on_detect`, :meth:`on_detection`,
    :meth:`on_error` and :meth:`stop` as Home Assistant's events come; :meth:`offer` queues the
    microphone's audio. Wake worker thread: :meth:`take` (the detection for the engine).

    :param request: sends ``run-pipeline`` (start at the wake stage); False when the link is gone.
    :param send_audio: writes one chunk to Home Assistant; False when the link is gone.
    :param on_change: called when :attr:`available` may have changed.
    :param say: the session's throttled logger, ``say(key, level, message, *args)``.
    """

    def __init__(
        self,
        request: Callable[[], Awaitable[bool]],
        send_audio: Callable[[AudioChunk], Awaitable[bool]],
        on_change: Callable[[], None],
        say: Callable[..., object],
    ) -> None:
        self._request = request
        self._send_audio = send_audio
        self._on_change = on_change
        self._say = say
        self.stage = Stage.IDLE
        self.wake_errors = 0  # errors of the wake stage in a row
        self.backoff = Backoff(0.5, 30.0)
        self.counters = {"chunks": 0, "detections": 0, "requests": 0, "dropped": 0}
        self._lock = threading.Lock()  # guards _pending (the wake worker takes, the loop puts)
        self._pending: collections.deque[WakeEvent] = collections.deque(maxlen=4)
        self._sent_ms = 0  # audio offered since the wake stage began, in ms
        self._times: collections.deque[tuple[int, float]] = collections.deque(maxlen=512)  # (ms at its end, capture time)
        self._sent_until = 0.0  # capture time of the last frame offered
        self._queue: asyncio.Queue[AudioChunk] = asyncio.Queue()
        self._sender: asyncio.Task | None = None
        self._retry: asyncio.Task | None = None

    @property
    def available(self) -> bool:
        """Home Assistant's wake stage has not failed since it last listened."""
        return self.wake_errors == 0

    @property
    def streaming(self) -> bool:
        """Audio offered now goes to Home Assistant."""
        return self.stage in (Stage.ASKED, Stage.LISTENING, Stage.TURN)

    # ---- Home Assistant's side (event loop) ----

    async def start(self) -> None:
        """Ask for a pipeline that starts at the wake stage (on ``run-satellite``, after an error)."""
        self._cancel_retry()
        self.stage = Stage.ASKED
        self.counters["requests"] += 1
        if not await self._request():
            self.stage = Stage.IDLE

    def on_detect(self) -> None:
        """Home Assistant's wake stage began: its timestamps count from the next audio."""
        self.stage = Stage.LISTENING
        self._sent_ms = 0
        self._times.clear()
        if self.wake_errors:
            self.wake_errors = 0
            self._on_change()

    def on_detection(self, name: str, at_ms: float | None) -> WakeEvent:
        """Home Assistant heard the wake word ``name`` at ``at_ms`` of its stream: the engine's
        detection (the capture time of that audio), handed to the wake worker by :meth:`take`."""
        self.stage = Stage.TURN
        self.backoff.reset()
        self.counters["detections"] += 1
        wake = WakeEvent(model=name, score=1.0, threshold=1.0, timestamp=self._capture_time(at_ms))
        with self._lock:
            self._pending.append(wake)
        return wake

    def on_error(self, line: str) -> None:
        """An ``error`` ended Home Assistant's pipeline: ask again, soon after a turn's, after a
        growing delay after an error of the wake stage."""
        if self.stage is Stage.IDLE:
            return
        if self.stage is Stage.TURN:
            delay = AFTER_TURN
        else:
            delay = self.backoff.next()
            self.wake_errors += 1
            if self.wake_errors == 1:
                self._on_change()
            self._say("remote-wake", logging.WARNING,
                      "Home Assistant's wake word pipeline failed (%s); asking again in %.1f s, the backups answer meanwhile", line, delay)
        self.stage = Stage.WAITING
        self._cancel_retry()
        self._retry = asyncio.get_running_loop().create_task(self._again(delay))

    async def _again(self, delay: float) -> None:
        await asyncio.sleep(delay)
        self._retry = None
        if self.stage is Stage.WAITING:
            await self.start()

    def stop(self) -> None:
        """Home Assistant paused the satellite or is gone: nothing more is sent."""
        self._cancel_retry()
        self.stage = Stage.IDLE
        while not self._queue.empty():
            self._queue.get_nowait()
        if self.wake_errors:
            self.wake_errors = 0
            self._on_change()

    def _cancel_retry(self) -> None:
        if self._retry is not None and self._retry is not asyncio.current_task():
            self._retry.cancel()
        self._retry = None

    # ---- the microphone (event loop) ----

    def offer(self, chunk: AudioChunk) -> None:
        """Queue ``chunk`` for Home Assistant while it listens (or hears the command); the part of
        it already offered (by capture time) is cut off."""
        if not self.streaming:
            return
        if chunk.timestamp > 0:
            if chunk.timestamp <= self._sent_until + SLACK:
                return  # the pre-roll of a turn: sent already, as the wake detector's frames
            start = chunk.timestamp - chunk.duration
            if start < self._sent_until - SLACK:
                frames = round((chunk.timestamp - self._sent_until) * chunk.sample_rate)
                chunk = replace(chunk, pcm=chunk.pcm[-frames * chunk.channels * chunk.sample_width:])
            self._sent_until = chunk.timestamp
        if self._queue.qsize() >= MAX_QUEUED:
            self.counters["dropped"] += 1
            return
        self._sent_ms += round(chunk.duration * 1000)
        self._times.append((self._sent_ms, chunk.timestamp))
        self._queue.put_nowait(chunk)
        if self._sender is None or self._sender.done():
            self._sender = asyncio.get_running_loop().create_task(self._send(), name="magoo-satellite-mic")

    async def _send(self) -> None:
        while True:
            chunk = await self._queue.get()
            if self.streaming and await self._send_audio(chunk):
                self.counters["chunks"] += 1

    def _capture_time(self, at_ms: float | None) -> float:
        """Capture time of the audio ``at_ms`` into the wake stage; the newest when unknown."""
        if not self._times:
            return self._sent_until
        if isinstance(at_ms, int | float):
            for end_ms, captured in self._times:
                if end_ms >= at_ms:
                    return captured
        return self._times[-1][1]

    # ---- the wake worker's side ----

    def take(self) -> WakeEvent | None:
        """The detection that came since the last call, if any. Any thread."""
        with self._lock:
            return self._pending.popleft() if self._pending else None

    async def close(self) -> None:
        self._cancel_retry()
        for task in (self._sender,):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
