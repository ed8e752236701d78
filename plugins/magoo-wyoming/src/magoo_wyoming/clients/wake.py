"""``[wake] wyoming``: wake words detected by a Wyoming wake server (wyoming-openwakeword, ...).

The server scores, so this detector is a *remote* one in the sense of
:class:`magoo_core.roles.WakeDetector`: ``process()`` (on the engine's wake worker thread) only
hands the frame to the event loop, which streams it to the server, and returns a detection that
arrived since the previous call. One long connection: ``detect{names}`` → ``audio-start`` →
``audio-chunk``… ← ``detection{name, timestamp}``. ``reset()`` starts a fresh connection, so a
detection still in flight for audio before the reset can never fire after it. A broken
connection is raised from the next ``process()`` as a BackendError: the engine restarts the
detector with its capped backoff (a restart reconnects).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import re
import threading
from collections.abc import Mapping
from typing import Any, ClassVar

from pydantic import Field
from wyoming.audio import AudioChunk as WyomingChunk
from wyoming.audio import AudioStart
from wyoming.wake import Detect

from magoo_core import AudioChunk, Backend, BackendError
from magoo_core.types import AudioFormat, WakeEvent

from ..connection import Connection
from .service import ServerConfig, Service

log = logging.getLogger("magoo.wyoming")
SECTION = "[wake] wyoming"
FORMAT = AudioFormat(16000)
#: frames waiting to be sent before the server counts as not keeping up (80 ms each: 8 s)
MAX_BACKLOG = 100


class WyomingWakeDetector(Backend):
    """Streams the microphone to a Wyoming wake server and reports its detections."""

    name: ClassVar[str] = "wyoming"
    input_format = FORMAT
    frame_samples = 1280  # 80 ms: what openWakeWord scores at a time
    scores = None  # the server says yes or no

    class Config(ServerConfig):
        names: list[str] = Field(
            default_factory=list,
            description='Wake word models the server should listen for ("ok_nabu", "hey_jarvis"); [] lets it use its own.',
        )

    @classmethod
    def labels(cls, config: Config) -> list[str] | None:
        """The model names asked for: what detections carry (None: whatever the server has)."""
        return list(config.names) or None

    @classmethod
    def doctor(cls, config: Config, section: str) -> list:
        """``magoo doctor``: the server answers ``describe`` and has the wake words."""
        from .doctor import server_rows

        return server_rows(cls, config, section)

    @staticmethod
    def wanted(config: Config) -> str:
        return "wake word program" + (f" with {', '.join(config.names)}" if config.names else "")

    @staticmethod
    def picker(config: Config):
        wanted = {model_key(name) for name in config.names}

        def pick(info: Any) -> Any:
            for program in info.wake:
                available = {model_key(m.name) for m in program.models} | {model_key(m.phrase) for m in program.models if m.phrase}
                if not wanted or wanted <= available or not program.models:
                    return program
            return None

        return pick

    def label(self, detected: str) -> str:
        """The profile's name for a detection's model name (``"hey_jarvis_v0.1"`` → ``"hey_jarvis"``)."""
        key = model_key(detected)
        return next((name for name in self.config.names if model_key(name) == key), detected)

    def __init__(self, config: Config) -> None:
        super().__init__(config)
        self.config: WyomingWakeDetector.Config = config
        self.service = Service(config, SECTION, self.wanted(config), self.picker(config))
        self._loop: asyncio.AbstractEventLoop | None = None
        self._lock = threading.Lock()  # guards the fields below, shared by the worker and the loop
        self._detections: collections.deque[WakeEvent] = collections.deque(maxlen=4)
        self._failure: BackendError | None = None
        self._generation = 0  # bumped by reset(); frames and detections of older ones are dropped
        self._sent_ms = 0  # audio sent in this generation, in ms
        self._times: collections.deque[tuple[int, float]] = collections.deque(maxlen=256)  # (audio ms at end, capture time)
        self._outbox: asyncio.Queue[tuple[int, AudioChunk]] | None = None
        self._task: asyncio.Task | None = None
        self._carry: tuple[int, AudioChunk] | None = None  # a frame read by the stream before it
        self.counters = {"frames": 0, "detections": 0, "reconnects": 0}

    async def __aenter__(self) -> WyomingWakeDetector:
        self._loop = asyncio.get_running_loop()
        self._outbox = asyncio.Queue()
        await self.service.describe()
        self._task = asyncio.create_task(self._run(), name="magoo-wyoming-wake")
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
        self._task = None

    def stats(self) -> Mapping[str, float]:
        return dict(self.counters)

    # ---- the wake worker thread ----------------------------------------------------------------

    def process(self, chunk: AudioChunk) -> WakeEvent | None:
        """Hand ``chunk`` to the loop for the server (never blocks) and return a detection received
        since the last call. Wake worker thread.

        :raises BackendError: the connection failed (the engine restarts the detector).
        """
        with self._lock:
            if self._failure is not None:
                raise self._failure
            generation = self._generation
            detection = self._detections.popleft() if self._detections else None
        if self._outbox is not None and self._loop is not None:
            if self._outbox.qsize() > MAX_BACKLOG:
                raise BackendError(f"{self.service.address} does not keep up with the microphone ({MAX_BACKLOG} frames waiting)")
            self._loop.call_soon_threadsafe(self._outbox.put_nowait, (generation, chunk))
            self.counters["frames"] += 1
        return detection

    def reset(self) -> None:
        """Forget pending detections and start a fresh stream (a new connection). Wake worker thread."""
        with self._lock:
            self._generation += 1
            self._detections.clear()

    # ---- the event loop --------------------------------------------------------------------------

    async def _run(self) -> None:
        """Keep one connection per generation; stream the frames of the current one."""
        try:
            while True:
                generation = self._generation
                async with await self.service.connect() as connection:
                    await connection.send(
                        Detect(names=list(self.config.names) or None).event(),
                        AudioStart(rate=FORMAT.sample_rate, width=FORMAT.sample_width, channels=FORMAT.channels, timestamp=0).event(),
                    )
                    with self._lock:
                        self._sent_ms = 0
                        self._times.clear()
                    reader = asyncio.create_task(self._read(connection, generation))
                    try:
                        await self._send(connection, generation, reader)
                    finally:
                        reader.cancel()
                        with contextlib.suppress(asyncio.CancelledError):
                            await reader
                self.counters["reconnects"] += 1
        except BackendError as exc:
            with self._lock:
                self._failure = exc

    async def _send(self, connection: Connection, generation: int, reader: asyncio.Task) -> None:
        """Send frames until reset() starts a new generation; the reader failing ends it too."""
        while True:
            if self._carry is not None:
                (frame_generation, chunk), self._carry = self._carry, None
            else:
                get = asyncio.ensure_future(self._outbox.get())
                done, _ = await asyncio.wait({get, reader}, return_when=asyncio.FIRST_COMPLETED)
                if reader in done:
                    get.cancel()
                    reader.result()  # raises its BackendError
                    raise BackendError(f"{connection.address} stopped reading")
                frame_generation, chunk = get.result()
            if frame_generation < generation:
                continue  # audio from before a reset
            if frame_generation > generation:
                self._carry = (frame_generation, chunk)  # the first frame of the new stream
                return
            with self._lock:
                self._sent_ms += round(chunk.duration * 1000)
                self._times.append((self._sent_ms, chunk.timestamp))
                timestamp = self._sent_ms
            await connection.send(WyomingChunk(rate=chunk.sample_rate, width=chunk.sample_width, channels=chunk.channels,
                                               audio=chunk.pcm, timestamp=timestamp).event())

    async def _read(self, connection: Connection, generation: int) -> None:
        while True:
            event = await connection.receive(None, "detections")
            if event.type != "detection":
                continue  # not-detected, info, ... carry nothing the engine needs
            name = self.label(str(event.data.get("name") or (self.config.names[0] if self.config.names else "wyoming")))
            at = event.data.get("timestamp")
            with self._lock:
                if generation != self._generation:
                    continue  # for audio before a reset: the stream is about to be replaced
                captured = self._capture_time(at if isinstance(at, int | float) else None)
                self._detections.append(WakeEvent(model=name, score=1.0, threshold=1.0, timestamp=captured))
            self.counters["detections"] += 1
            log.debug("%s: detection %s at %s ms", SECTION, name, at)

    def _capture_time(self, at_ms: float | None) -> float:
        """Capture time of the frame holding audio ``at_ms`` (ms since audio-start); the newest frame's
        when unknown. Called with the lock held."""
        if not self._times:
            return 0.0
        if at_ms is not None:
            for end_ms, captured in self._times:
                if end_ms >= at_ms:
                    return captured
        return self._times[-1][1]


def model_key(name: str) -> str:
    """A wake model's name as servers vary it: case, spaces and a version suffix left out
    (``"Hey Jarvis"``, ``"hey_jarvis_v0.1"`` and ``"hey_jarvis"`` are one model)."""
    return re.sub(r"_v\d+(\.\d+)*$", "", name.strip().lower().replace(" ", "_").replace("-", "_"))
