"""A Home Assistant stand-in for tests and benches, written against the ``wyoming`` package's
client and following Home Assistant's ``components/wyoming/assist_satellite.py`` step by step:
connect, ``run-satellite``, ``describe`` at each pipeline loop, ``ping`` ``ping_delay`` s after
each ``pong``; on the satellite's ``run-pipeline``: ``transcribe``, ``voice-started`` and
``voice-stopped``, ``transcript``, ``synthesize`` and the TTS audio as 2048-byte chunks at
22050 Hz; announcements as audio outside a pipeline; timers; ``pause-satellite``.

A pipeline that starts at the wake stage (remote wake) sends ``detect``, hears the stream with a
wake word engine (``wake_uri``: a Wyoming wake server, as Home Assistant's wyoming wake word
provider does; else a loud chunk counts as the wake word), sends ``detection{name, timestamp}``
(ms of audio since the stage began) and goes on with the same stream as the command; after the
answer it starts again (``restart_on_end``), but not after an error.

Everything runs on the caller's event loop. Not Home Assistant: its pipeline is a script (the
transcript after ``hear_seconds`` of audio, a tone as the answer).
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import struct
import time
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
from wyoming.wake import Detect, Detection


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
    waking: bool = False  # in its wake stage: the audio goes to the wake word engine
    wake_ms: int = 0  # audio heard in the wake stage
    woke_at_ms: int | None = None  # the detection's timestamp
    detection_sent_at: float | None = None
    first_audio: float | None = None
    audio_seconds: float = 0.0
    audio_stopped: bool = False
    answered: bool = False
    played_at: float | None = None
    tts_started_at: float | None = None
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
    wake_error: tuple[str, str] | None = None  # end each wake stage at once with error(text, code)
    wake_uri: str | None = None  # a Wyoming wake server for the wake stage (else: a loud chunk)
    wake_names: list[str] | None = None
    end_stage_seen: list[str] = field(default_factory=list)
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
    _wake_client: AsyncTcpClient | None = None

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
            await self._run_pipeline(RunPipeline.from_event(event))
        elif AudioChunk.is_type(event.type) and self.pipelines and self.pipelines[-1].waking:
            await self._hear_wake(self.pipelines[-1], AudioChunk.from_event(event))
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
            answered = [p for p in self.pipelines if p.tts_done_at is not None]  # not the one restarted since
            if answered and answered[-1].played_at is None:
                answered[-1].played_at = time.monotonic()
            self._played.set()

    async def _run_pipeline(self, run: RunPipeline) -> None:
        """``_run_pipeline_once``: a new run replaces the one in progress."""
        pipeline = Pipeline(run, self._detection, time.monotonic(), waking=run.start_stage.value == "wake")
        self.pipelines.append(pipeline)
        self.end_stage_seen.append(run.end_stage.value)
        self._detection = None
        if not pipeline.waking:
            await self.send(Transcribe(language="en").event())  # on STT_START
            return
        await self.send(Detect().event())  # on WAKE_WORD_START
        if self.wake_error is not None:
            pipeline.waking = False
            pipeline.answered = True
            text, code = self.wake_error
            await self.send(Event("error", {"text": text, "code": code}))
            return
        if self.wake_uri is not None:
            self._wake_client = AsyncTcpClient.from_uri(self.wake_uri)
            await self._wake_client.connect()
            await self._wake_client.write_event(Detect(names=self.wake_names).event())
            await self._wake_client.write_event(AudioStart(rate=16000, width=2, channels=1, timestamp=0).event())
            self._spawn(self._read_wake(pipeline, self._wake_client))

    async def _hear_wake(self, pipeline: Pipeline, chunk: AudioChunk) -> None:
        """The wake stage's audio: to the wake server, or a loud chunk is the wake word."""
        before = pipeline.wake_ms
        pipeline.wake_ms += chunk.milliseconds
        if self.wake_uri is not None:
            await self._wake_client.write_event(AudioChunk(rate=chunk.rate, width=chunk.width, channels=chunk.channels,
                                                           audio=chunk.audio, timestamp=pipeline.wake_ms).event())
            return
        samples = struct.unpack(f"<{len(chunk.audio) // 2}h", chunk.audio)
        if samples and max(abs(v) for v in samples) > 3000:
            await self._woke(pipeline, "hey_magoo", before)

    async def _read_wake(self, pipeline: Pipeline, client: AsyncTcpClient) -> None:
        try:
            while (event := await client.read_event()) is not None:
                if Detection.is_type(event.type) and pipeline.waking:
                    detection = Detection.from_event(event)
                    await self._woke(pipeline, detection.name, detection.timestamp)
                    return
        finally:
            await client.disconnect()

    async def _woke(self, pipeline: Pipeline, name: str, at_ms: int | None) -> None:
        """WAKE_WORD_END, then STT_START: the same stream is the command from now on."""
        pipeline.waking = False
        pipeline.detection = name
        pipeline.woke_at_ms = at_ms
        pipeline.detection_sent_at = time.monotonic()
        await self.send(Detection(name=name, timestamp=at_ms).event())
        await self.send(Transcribe(language="en").event())

    async def _answer(self, pipeline: Pipeline) -> None:
        """STT_VAD_END, STT_END, TTS_START, TTS_END as the satellite sees them."""
        await self.send(VoiceStopped(timestamp=int(pipeline.audio_seconds * 1000)).event())
        if self.error is not None:
            text, code = self.error
            await self.send(Event("error", {"text": text, "code": code}))
            return
        await self.send(Transcript(text=self.transcript).event())
        if pipeline.run.end_stage.value == "tts":
            await self.send(Synthesize(text=self.answer, voice=SynthesizeVoice(name=None, language="en")).event())
            pipeline.tts_started_at = time.monotonic()
            await self.send_sound(tts_audio(self.answer_seconds), cut=self.cut_reply)
            pipeline.tts_done_at = time.monotonic()
        if pipeline.run.restart_on_end and self.client is not None:  # RUN_END of an always-on satellite
            await self._run_pipeline(pipeline.run)

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
