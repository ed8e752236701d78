"""Built-in audio sources that need no hardware: a WAV file, a tone, silence, and a script of those.

All four deliver 16-bit chunks of ``chunk_ms`` (mono unless a WAV is kept as is) on the event loop, paced in real time on an
absolute schedule (or as fast as the loop allows), each stamped with ``time.monotonic()`` when
it is yielded, like a microphone would.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import ClassVar

from pydantic import Field, model_validator

from magoo_core import audio
from magoo_core.errors import BackendError
from magoo_core.fields import Count, Hertz, Ratio, SampleRate, Seconds, StrictBool
from magoo_core.plugins import hookimpl
from magoo_core.roles import Backend, BackendConfig, InputFile
from magoo_core.types import AudioChunk, AudioFormat


@hookimpl
def magoo_register_audio_sources(register):
    register(WavFileSource)
    register(ToneSource)
    register(SilenceSource)
    register(ScriptedSource)


# ---- pacing -------------------------------------------------------------------------------------


class Schedule:
    """When each chunk of a real-time stream is due: ``start`` + the audio delivered so far.

    Frames are counted as integers, so the schedule never drifts however long it runs.
    """

    def __init__(self, start: float) -> None:
        self._base = start  # start + duration of audio at earlier sample rates
        self._frames = 0
        self._rate: int | None = None

    def due(self, chunk: AudioChunk) -> float:
        """Add ``chunk`` and return when it is complete: the time to deliver it."""
        if chunk.sample_rate != self._rate:
            if self._rate is not None:
                self._base += self._frames / self._rate
            self._frames, self._rate = 0, chunk.sample_rate
        self._frames += chunk.frames
        return self._base + self._frames / chunk.sample_rate


async def paced(
    chunks: Iterable[AudioChunk],
    realtime: bool,
    *,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
) -> AsyncIterator[AudioChunk]:
    """Yield ``chunks`` stamped with ``clock()`` at delivery.

    With ``realtime``, each chunk is delivered when its last frame is due on the absolute
    schedule (a late wake-up is caught up on, never accumulated); otherwise as fast as possible,
    yielding to the loop between chunks so other tasks keep running.
    """
    schedule = Schedule(clock())
    for chunk in chunks:
        delay = schedule.due(chunk) - clock() if realtime else 0.0
        await sleep(max(delay, 0.0))
        yield replace(chunk, timestamp=clock())


def rechunked(pieces: Iterable[AudioChunk], frame_samples: int) -> Iterator[AudioChunk]:
    """Cut pieces of any size into ``frame_samples`` chunks; the last one may be shorter."""
    rechunker = audio.Rechunker(frame_samples)
    for piece in pieces:
        yield from rechunker.push(piece)
    yield from rechunker.flush()


def synthesized(make: Callable[[int, int], AudioChunk], total_frames: int | None, piece_frames: int) -> Iterator[AudioChunk]:
    """Call ``make(frames, offset)`` for consecutive pieces until ``total_frames`` (None: forever)."""
    offset = 0
    while total_frames is None or offset < total_frames:
        frames = piece_frames if total_frames is None else min(piece_frames, total_frames - offset)
        yield make(frames, offset)
        offset += frames


def repeated(one_pass: Callable[[], Iterable[AudioChunk]], loop: bool) -> Iterator[AudioChunk]:
    """One pass, or pass after pass forever when ``loop``."""
    while True:
        yield from one_pass()
        if not loop:
            return


def load_clip(path: Path, sample_rate: int | None, mono: bool, who: str) -> AudioChunk:
    """Read a WAV file and convert it to ``sample_rate`` (None: keep) and mono. Blocking.

    :raises BackendError: not retryable, naming the file, when it is missing or not 16-bit PCM.
    """
    try:
        fmt, pcm = audio.read_wav(path)
    except (OSError, ValueError) as exc:
        raise BackendError(f"{who}: {exc}. Fix the path in the profile or convert the file.", retryable=False) from None
    clip = AudioChunk(pcm, fmt.sample_rate, fmt.channels)
    target = AudioFormat(sample_rate or fmt.sample_rate, 1 if mono else fmt.channels)
    return audio.convert(clip, target)


def tone_pieces(frequency: float, amplitude: float, rate: int, total_frames: int | None) -> Iterator[AudioChunk]:
    """A continuous mono tone in one-second pieces; ``total_frames`` None is endless."""
    return synthesized(
        lambda frames, offset: audio.tone(frequency, frames / rate, rate, amplitude, phase_samples=offset),
        total_frames,
        rate,
    )


def silence_pieces(rate: int, total_frames: int | None) -> Iterator[AudioChunk]:
    """Mono silence in one-second pieces; ``total_frames`` None is endless."""
    fmt = AudioFormat(rate)
    return synthesized(lambda frames, _: audio.silence(fmt, frames / rate), total_frames, rate)


def _frames(seconds: float | None, rate: int) -> int | None:
    return None if seconds is None else round(seconds * rate)


# ---- the shared base ----------------------------------------------------------------------------


class PacedConfig(BackendConfig):
    """Settings every built-in source shares."""

    chunk_ms: Count(1, 1000) = Field(80, description="Length of each delivered chunk, in milliseconds.")
    realtime: StrictBool = Field(
        True,
        description="Deliver audio at the speed of a microphone; false delivers it as fast as possible.",
    )


class PacedSource(Backend):
    """Base of the built-in sources: rechunking, pacing and counting in one place.

    Subclasses provide :meth:`pieces` (audio of any piece size, one format) and, when they read
    files, :meth:`load` (blocking; run in a thread when the backend is entered or first streams).
    """

    Config: ClassVar[type[PacedConfig]] = PacedConfig
    config: PacedConfig

    def __init__(self, config: PacedConfig) -> None:
        super().__init__(config)
        self._loaded = False
        self._chunks = 0
        self._seconds = 0.0

    async def __aenter__(self):
        await self._ensure_loaded()
        return self

    @property
    def live(self) -> bool:
        """Real-time sources behave like a microphone; others are read in lock-step with turns."""
        return self.config.realtime

    @property
    def finite(self) -> bool:
        """True when the audio legitimately ends (so the end is not a failure)."""
        looping = getattr(self.config, "loop", False)
        endless = "seconds" in type(self.config).model_fields and getattr(self.config, "seconds") is None
        return not (looping or endless)

    async def stream(self) -> AsyncIterator[AudioChunk]:
        """Yield ``chunk_ms`` chunks until the audio ends (or forever, for endless sources)."""
        await self._ensure_loaded()
        frames = max(1, round(self.sample_rate * self.config.chunk_ms / 1000))
        async for chunk in paced(rechunked(self.pieces(), frames), self.config.realtime):
            self._chunks += 1
            self._seconds += chunk.duration
            yield chunk

    def stats(self) -> dict[str, float]:
        return {"chunks": self._chunks, "seconds": round(self._seconds, 3)}

    async def _ensure_loaded(self) -> None:
        if not self._loaded:
            await asyncio.to_thread(self.load)
            self._loaded = True

    def load(self) -> None:
        """Read what the source needs from disk. Blocking; called once, off the loop."""

    @property
    def sample_rate(self) -> int:
        """Hz of the delivered audio: the config's ``sample_rate`` unless a subclass knows better."""
        return self.config.sample_rate  # type: ignore[attr-defined]

    def pieces(self) -> Iterator[AudioChunk]:
        raise NotImplementedError


# ---- the backends -------------------------------------------------------------------------------


class WavFileSource(PacedSource):
    """Plays a 16-bit WAV file as if it were a microphone.

    Each pass is ``lead_silence``, the file, then ``tail_silence`` (so a speech-to-text backend
    that ends utterances on silence sees the end); ``loop`` repeats passes forever.
    """

    name: ClassVar[str] = "wav"

    class Config(PacedConfig):
        path: InputFile = Field(description="The WAV file (16-bit PCM); relative paths are relative to the profile.")
        loop: StrictBool = Field(False, description="Start again from the beginning when the file ends.")
        lead_silence: Seconds(0, 60) = Field(0.0, description="Seconds of silence before the file.")
        tail_silence: Seconds(0, 60) = Field(1.0, description="Seconds of silence after the file.")
        sample_rate: SampleRate | None = Field(
            None, description="Resample to this rate (Hz); unset keeps the file's rate."
        )
        mono: StrictBool = Field(True, description="Mix all channels into one.")

    config: Config

    def __init__(self, config: Config) -> None:
        super().__init__(config)
        self._clip: AudioChunk | None = None

    def load(self) -> None:
        config = self.config
        self._clip = load_clip(config.path, config.sample_rate, config.mono, "path")

    @property
    def sample_rate(self) -> int:
        return self._clip.sample_rate

    def pieces(self) -> Iterator[AudioChunk]:
        return repeated(self._one_pass, self.config.loop)

    def _one_pass(self) -> Iterator[AudioChunk]:
        yield audio.silence(self._clip.format, self.config.lead_silence)
        yield self._clip
        yield audio.silence(self._clip.format, self.config.tail_silence)


class ToneSource(PacedSource):
    """A continuous sine tone, endless or for a given time."""

    name: ClassVar[str] = "tone"

    class Config(PacedConfig):
        frequency: Hertz() = Field(440.0, description="Pitch in Hz.")
        amplitude: Ratio() = Field(0.3, description="Peak level, 0..1 of full scale.")
        seconds: Seconds(0, 604800, lo_open=True) | None = Field(None, description="How long to play; unset plays forever.")
        sample_rate: SampleRate = Field(16000, description="Sample rate in Hz.")

    config: Config

    def pieces(self) -> Iterator[AudioChunk]:
        config = self.config
        total = _frames(config.seconds, config.sample_rate)
        return tone_pieces(config.frequency, config.amplitude, config.sample_rate, total)


class SilenceSource(PacedSource):
    """Digital silence, endless or for a given time."""

    name: ClassVar[str] = "silence"

    class Config(PacedConfig):
        seconds: Seconds(0, 604800, lo_open=True) | None = Field(None, description="How long to deliver silence; unset is forever.")
        sample_rate: SampleRate = Field(16000, description="Sample rate in Hz.")

    config: Config

    def pieces(self) -> Iterator[AudioChunk]:
        config = self.config
        return silence_pieces(config.sample_rate, _frames(config.seconds, config.sample_rate))


class Segment(BackendConfig):
    """One step of a scripted source: a tone, silence, or a WAV file.

    ``{ seconds = 1.0, tone = 440.0 }`` is a tone, ``{ seconds = 0.5 }`` silence and
    ``{ file = "hello.wav" }`` a file (as long as the file).
    """

    seconds: Seconds(0, 3600, lo_open=True) | None = Field(None, description="Length of a tone or silence segment, in seconds.")
    tone: Hertz() | None = Field(None, description="Play a sine tone of this frequency (Hz).")
    amplitude: Ratio() = Field(0.3, description="Peak level of the tone, 0..1 of full scale.")
    file: InputFile | None = Field(None, description="Play this 16-bit WAV file (resampled, mixed to mono).")

    @model_validator(mode="after")
    def _one_kind(self) -> Segment:
        if self.file is not None:
            if self.tone is not None:
                raise ValueError("a segment is either a tone or a file, not both")
            if self.seconds is not None:
                raise ValueError("a file segment lasts as long as its file; remove 'seconds'")
        elif self.seconds is None:
            raise ValueError("a tone or silence segment needs 'seconds'")
        if self.tone is None and "amplitude" in self.model_fields_set:
            raise ValueError("'amplitude' only applies to a tone segment")
        return self


class ScriptedSource(PacedSource):
    """Plays a script of tones, silences and WAV files in order, for tests and demos."""

    name: ClassVar[str] = "scripted"

    class Config(PacedConfig):
        segments: list[Segment] = Field(min_length=1, description="What to play, in order.")
        sample_rate: SampleRate = Field(16000, description="Sample rate in Hz; files are resampled to it.")
        loop: StrictBool = Field(False, description="Start the script again when it ends.")

    config: Config

    def __init__(self, config: Config) -> None:
        super().__init__(config)
        self._clips: dict[int, AudioChunk] = {}

    def load(self) -> None:
        rate = self.config.sample_rate
        for index, segment in enumerate(self.config.segments):
            if segment.file is not None:
                who = f"segment {index + 1}"
                self._clips[index] = load_clip(segment.file, rate, True, who)

    def pieces(self) -> Iterator[AudioChunk]:
        return repeated(self._one_pass, self.config.loop)

    def _one_pass(self) -> Iterator[AudioChunk]:
        rate = self.config.sample_rate
        for index, segment in enumerate(self.config.segments):
            if segment.file is not None:
                yield self._clips[index]
            elif segment.tone is None:
                yield from silence_pieces(rate, _frames(segment.seconds, rate))
            else:
                yield from tone_pieces(segment.tone, segment.amplitude, rate, _frames(segment.seconds, rate))
