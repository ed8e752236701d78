"""A Home Assistant stand-in written against the ``wyoming`` package's client, following Home
Assistant's ``components/wyoming/assist_satellite.py`` step by step: connect, ``run-satellite``,
``describe`` at each pipeline loop, ``ping`` ``ping_delay`` s after each ``pong``; on the
satellite's ``run-pipeline``: ``transcribe``, ``voice-started``/``voice-stopped``, ``transcript``,
``synthesize`` and the TTS audio as 2048-byte chunks at 22050 Hz; announcements as audio outside a
pipeline; timers; ``pause-satellite``.

And the runner that puts it in front of magoo's real engine (fakes for the rest, a memory player).
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import struct
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from wyoming.asr import Transcribe, Transcript
from wyoming.audio import AudioChunk, AudioStart, AudioStop
from wyoming.client import AsyncTcpClient
from wyoming.event import Event
from wyoming.info import Describe, Info
from wyoming.ping import Ping, Pong
from wyoming.pipeline import RunPipeline
from wyoming.satellite import PauseSatellite, RunSatellite
from wyoming.snd import Played
from wyoming.timer import TimerCancelled, TimerFinished, TimerStarted, TimerUpdated
from wyoming.tts import Synthesize, SynthesizeVoice
from wyoming.vad import VoiceStarted, VoiceStopped
from wyoming.wake import Detection

import magoo_wyoming
from magoo_core.engine import Engine, RunResult
from magoo_core.event_recorder import EventRecorder
from magoo_core.plugins import hookimpl
from magoo_core.testing import build_plugins, make_profile

TTS_RATE = 22050  # what Home Assistant asks its TTS for (assist_satellite.py _TTS_SAMPLE_RATE)
CHUNK_BYTES = 2048  # and how it cuts it (_AUDIO_CHUNK_BYTES)
HEARD = "turn on the kitchen light"
ANSWER = "Turned on the kitchen light"


def tts_audio(seconds: float, rate: int = TTS_RATE) -> bytes:
    """A 440 Hz tone: what Home Assistant's TTS "said"."""
    frames = round(seconds * rate)
    return struct.pack(f"<{frames}h", *(int(8000 * math.sin(2 * math.pi * 440 * i / rate)) for i in range(frames)))


@dataclass
class Pipeline:
    """One pipeline Home Assistant ran for the satellite."""

    run: RunPipeline
    detection: str | None
    started: float
    first_audio: float | None = None
    audio_seconds: float = 0.0
    audio_stopped: bool = False
    answered: bool = False
    played_at: float | None = None
    tts_done_at: float | None = None


@dataclass
class FakeHomeAssistant:
    """Home Assistant's satellite entity, from the outside. ``received``: every event from the
    satellite with its arrival time; ``pipelines``: each run it was asked for."""

    host: str
    port: int
    ping_delay: float = 2.0
    hear_seconds: float = 0.3
    transcript: str = HEARD
    answer: str = ANSWER
    answer_seconds: float = 0.4
    error: tuple[str, str] | None = None  # answer a pipeline with error(text, code) instead
    cut_reply: bool = False  # disconnect half-way through the reply's audio (no audio-stop)
    received: list[tuple[float, Event]] = field(default_factory=list)
    pipelines: list[Pipeline] = field(default_factory=list)
    pongs: int = 0
    info: Info | None = None
    silent: bool = False
    client: AsyncTcpClient | None = None
    _tasks: set = field(default_factory=set)
    errors: list[str] = field(default_factory=list)  # what its own tasks raised (a test fails on any)
    _played: asyncio.Event = field(default_factory=asyncio.Event)
    _detection: str | None = None

    async def connect(self) -> None:
        """``_connect`` + ``RunSatellite`` + the first pipeline loop's ``Describe`` and ping."""
        self.client = AsyncTcpClient(self.host, self.port)
        await self.client.connect()
        await self.send(RunSatellite().event())
        await self.send(Describe().event())
        self._spawn(self._read())
        self._spawn(self._ping_later())

    async def send(self, event: Event) -> None:
        assert self.client is not None
        await self.client.write_event(event)

    def _spawn(self, coro) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            self.errors.append(repr(task.exception()))

    async def _ping_later(self) -> None:
        await asyncio.sleep(self.ping_delay)
        if not self.silent and self.client is not None:
            with contextlib.suppress(ConnectionError, OSError):
                await self.send(Ping().event())

    async def _read(self) -> None:
        while self.client is not None:
            try:
                event = await self.client.read_event()
            except (ConnectionError, OSError):
                return
            if event is None:
                return
            self.received.append((time.monotonic(), event))
            if self.silent:
                continue
            await self._on(event)

    async def _on(self, event: Event) -> None:
        if Pong.is_type(event.type):
            self.pongs += 1
            self._spawn(self._ping_later())
        elif Ping.is_type(event.type):
            await self.send(Pong(text=Ping.from_event(event).text).event())
        elif Info.is_type(event.type):
            self.info = Info.from_event(event)
        elif Detection.is_type(event.type):
            self._detection = Detection.from_event(event).name
        elif RunPipeline.is_type(event.type):
            self.pipelines.append(Pipeline(RunPipeline.from_event(event), self._detection, time.monotonic()))
            self._detection = None
            await self.send(Transcribe(language="en").event())  # on STT_START
        elif AudioChunk.is_type(event.type) and self.pipelines and not self.pipelines[-1].answered:
            pipeline = self.pipelines[-1]
            chunk = AudioChunk.from_event(event)
            if pipeline.first_audio is None:
                pipeline.first_audio = time.monotonic()
                await self.send(VoiceStarted(timestamp=0).event())
            pipeline.audio_seconds += chunk.seconds
            if pipeline.audio_seconds >= self.hear_seconds:
                pipeline.answered = True
                self._spawn(self._answer(pipeline))
        elif AudioStop.is_type(event.type) and self.pipelines:
            self.pipelines[-1].audio_stopped = True
        elif Played.is_type(event.type):
            if self.pipelines and self.pipelines[-1].played_at is None and self.pipelines[-1].tts_done_at is not None:
                self.pipelines[-1].played_at = time.monotonic()
            self._played.set()

    async def _answer(self, pipeline: Pipeline) -> None:
        """STT_VAD_END, STT_END, TTS_START, TTS_END as the satellite sees them."""
        await self.send(VoiceStopped(timestamp=int(pipeline.audio_seconds * 1000)).event())
        if self.error is not None:
            text, code = self.error
            await self.send(Event("error", {"text": text, "code": code}))
            return
        await self.send(Transcript(text=self.transcript).event())
        await self.send(Synthesize(text=self.answer, voice=SynthesizeVoice(name=None, language="en")).event())
        await self.send_sound(tts_audio(self.answer_seconds), cut=self.cut_reply)
        pipeline.tts_done_at = time.monotonic()

    async def send_sound(self, pcm: bytes, *, cut: bool = False) -> None:
        """``_stream_tts`` / ``async_announce``: audio-start, 2048-byte chunks, audio-stop
        (``cut``: half the chunks, then the connection drops)."""
        await self.send(AudioStart(rate=TTS_RATE, width=2, channels=1, timestamp=0).event())
        timestamp = 0
        for start in range(0, len(pcm), CHUNK_BYTES):
            if cut and start >= len(pcm) // 2:
                self._spawn(self.disconnect())
                return
            chunk = AudioChunk(rate=TTS_RATE, width=2, channels=1, audio=pcm[start:start + CHUNK_BYTES], timestamp=timestamp)
            await self.send(chunk.event())
            timestamp += chunk.milliseconds
        await self.send(AudioStop(timestamp=timestamp).event())

    async def announce(self, seconds: float, wait: float = 10.0) -> bool:
        """``async_announce``: the sound, then wait for ``played`` (True) or give up (False)."""
        self._played.clear()
        await self.send_sound(tts_audio(seconds))
        try:
            async with asyncio.timeout(wait):
                await self._played.wait()
        except TimeoutError:
            return False
        return True

    async def timer(self, kind: str, timer_id: str, **data: Any) -> None:
        events = {"started": TimerStarted, "updated": TimerUpdated, "cancelled": TimerCancelled, "finished": TimerFinished}
        await self.send(events[kind](id=timer_id, **data).event())

    async def pause(self) -> None:
        await self.send(PauseSatellite().event())

    async def disconnect(self) -> None:
        client, self.client = self.client, None
        if client is not None:
            with contextlib.suppress(Exception):
                await client.disconnect()
        for task in list(self._tasks):
            if task is not asyncio.current_task():
                task.cancel()

    def types(self) -> list[str]:
        """The satellite's events in order, pings and audio chunks left out."""
        return [e.type for _, e in self.received if e.type not in ("pong", "audio-chunk")]


# ---- the engine in front of it ------------------------------------------------------------------


def source(turns: int, *, lead: float = 1.0, gap: float = 1.5, command: float = 0.8) -> dict:
    """A realtime scripted microphone: ``lead`` s of quiet (Home Assistant connects), then
    ``turns`` times a command tone and ``gap`` s of quiet; see :func:`wake_at`."""
    parts: list[dict] = [{"seconds": lead}]
    for _ in range(turns):
        parts += [{"seconds": command, "tone": 440.0, "amplitude": 0.2}, {"seconds": gap}]
    return {"backend": "scripted", "realtime": True, "segments": parts}


def wake_at(turns: int, *, lead: float = 1.0, gap: float = 1.5, command: float = 0.8) -> dict:
    """The scripted wake word, heard as each command of :func:`source` begins."""
    return {"backend": "scripted", "at": [lead + i * (command + gap) for i in range(turns)]}


def satellite_profile(turns: int, *, backup: bool = True, source_options: dict | None = None, **config: Any) -> dict:
    stt: dict[str, Any] = {"service": "house"}
    if backup:
        stt["backup"] = {"backend": "scripted", "transcripts": ["heard by the backup"]}
    return {
        "services": {"house": {"backend": "homeassistant", "host": "127.0.0.1", "port": 0, "zeroconf": False,
                               "wake_words": ["hey magoo"], **config}},
        "stt": stt,
        "responder": {"backend": "echo"},
        "tts": {"backend": "tone"},
        "audio_source": source(turns, **(source_options or {})),
        "wake": wake_at(turns, **(source_options or {})),
        "engine": {"mute_pre": 0.0, "mute_post": 0.05, "reply_timeout": 10.0, "restart_backoff": 0.05, "restart_backoff_max": 0.2},
    }


class Recorder(EventRecorder):
    """Every engine event with its time (monotonic)."""

    def __init__(self) -> None:
        super().__init__()
        self.times: list[float] = []

    def _add(self, event: str, **arguments: Any) -> None:
        super()._add(event, **arguments)
        self.times.append(time.monotonic())

    def of(self, event: str) -> list[dict[str, Any]]:
        return [a for name, a in self.events if name == event]

    def when(self, event: str) -> list[float]:
        return [t for (name, _), t in zip(self.events, self.times, strict=True) if name == event]


@dataclass
class SatelliteRun:
    engine: Engine
    events: Recorder
    result: RunResult
    ha: FakeHomeAssistant | None
    muted_at_end: bool


Script = Callable[[FakeHomeAssistant, Engine], Awaitable[None]]


async def run_satellite(
    profile: dict, script: Script | None, *, turns: int, timeout: float = 60.0, plugins: tuple = (), **ha: Any
) -> SatelliteRun:
    """Run the engine with ``profile``; once it has started, a :class:`FakeHomeAssistant` connects
    to the satellite's port and ``script(ha, engine)`` runs beside the engine (None: Home
    Assistant never comes). Ends after ``turns`` turns."""
    manager = build_plugins(magoo_wyoming, *plugins)
    recorder = Recorder()
    manager.pm.register(recorder, name="recorder")
    engine = Engine(make_profile(profile, manager), manager, max_turns=turns)
    fake: list[FakeHomeAssistant] = []
    tasks: list[asyncio.Task] = []

    class Starter:
        @hookimpl
        def magoo_on_startup(self):
            if script is None:
                return
            port = engine.backends.services["house"].instance.listener.port
            fake.append(FakeHomeAssistant("127.0.0.1", port, **ha))
            tasks.append(asyncio.ensure_future(script(fake[0], engine)))

    manager.pm.register(Starter(), name="starter")
    try:
        result = await asyncio.wait_for(engine.run(), timeout)
    finally:
        for task in tasks:
            if not task.done():
                task.cancel()
        if fake:
            await fake[0].disconnect()
    for task in tasks:
        if task.done() and not task.cancelled() and task.exception() is not None:
            raise task.exception()
    assert not (fake and fake[0].errors), fake[0].errors
    return SatelliteRun(engine, recorder, result, fake[0] if fake else None, engine.muted)


async def connect(ha: FakeHomeAssistant, engine: Engine) -> None:
    await ha.connect()
