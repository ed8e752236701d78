"""The built-in ``wav`` player: records what it would play to a WAV file instead of a speaker."""

from __future__ import annotations

import asyncio
import contextlib
import io
import re
import wave
from collections.abc import AsyncIterator
from pathlib import Path
from typing import ClassVar

from pydantic import Field, field_validator

from magoo_core.audio import AudioConverter, WavStreamDecoder, concatenate, rms_level, split
from magoo_core.errors import BackendError
from magoo_core.plugins import hookimpl
from magoo_core.fields import SampleRate, StrictBool
from magoo_core.output_files import write_atomically
from magoo_core.roles import Backend, BackendConfig, PlaybackProgress
from magoo_core.types import AudioChunk, AudioFormat, EncodedAudio

PIECE_SECONDS = 0.05  # progress is reported for pieces this long at most (20 a second)


@hookimpl
def magoo_register_players(register):
    register(WavRecorderPlayer)


_END = object()


async def next_unless_set(iterator: AsyncIterator, event: asyncio.Event) -> object:
    """The iterator's next item, or ``_END`` when it is exhausted or ``event`` is set first.

    When the event wins, the pending ``anext`` is cancelled, so a slow producer cannot hold up
    a stop.
    """
    if event.is_set():
        return _END
    item = asyncio.ensure_future(_anext(iterator))
    stopped = asyncio.ensure_future(event.wait())
    try:
        await asyncio.wait({item, stopped}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopped.cancel()
        if not item.done():
            item.cancel()
    if not item.done():  # the stop came first; the cancelled anext is still unwinding
        return _END
    try:
        return item.result()
    except StopAsyncIteration:
        return _END


async def _anext(iterator: AsyncIterator) -> object:
    return await anext(iterator)


class _Playback:
    """One ``play()`` call: decoding, conversion, progress, pacing and the recorded audio."""

    def __init__(self, progress: PlaybackProgress, sample_rate: int | None, realtime: bool) -> None:
        self.progress = progress
        self.sample_rate = sample_rate
        self.realtime = realtime
        self.stopping = asyncio.Event()
        self.played: list[AudioChunk] = []
        self.frames = 0
        self._converter: AudioConverter | None = None
        self._decoder: WavStreamDecoder | None = None
        self._start = 0.0

    @property
    def format(self) -> AudioFormat | None:
        return self._converter.target if self._converter is not None else None

    async def play(self, item: object) -> None:
        chunk = self._pcm(item)
        if chunk is None:
            return
        if self._converter is None:
            self._converter = AudioConverter(AudioFormat(self.sample_rate or chunk.sample_rate))
        await self._play_chunks(self._converter.convert(chunk))

    async def finish(self) -> None:
        """The stream ended normally: play what the resampler still holds."""
        if self._converter is not None:
            await self._play_chunks(self._converter.flush())

    def _pcm(self, item: object) -> AudioChunk | None:
        if isinstance(item, AudioChunk):
            return item
        if not isinstance(item, EncodedAudio):
            raise BackendError(
                f"the wav recorder player got {type(item).__name__}, not AudioChunk or EncodedAudio", retryable=False
            )
        if item.codec.lower() != "wav":
            raise BackendError(
                f"the wav recorder player only takes PCM or WAV audio, not '{item.codec}';"
                f" use a player that decodes {item.codec} (mpv)",
                retryable=False,
            )
        self._decoder = self._decoder or WavStreamDecoder()
        try:
            return self._decoder.feed(item.data)
        except ValueError as exc:
            raise BackendError(f"the wav recorder player cannot play this WAV stream: {exc}", retryable=False) from None

    async def _play_chunks(self, chunks: list[AudioChunk]) -> None:
        for chunk in chunks:
            for piece in split(chunk, max(1, int(chunk.sample_rate * PIECE_SECONDS))):
                if self.stopping.is_set():
                    return
                await self._play_piece(piece)

    async def _play_piece(self, piece: AudioChunk) -> None:
        loop = asyncio.get_running_loop()
        if not self.played:
            self._start = loop.time()
            self.progress.started()
        self.progress.played(rms_level(piece), piece.duration)
        self.played.append(piece)
        self.frames += piece.frames
        if self.realtime:
            # wait until this piece has "sounded", on an absolute schedule, unless stopped first
            remaining = self._start + self.frames / piece.sample_rate - loop.time()
            if remaining > 0:
                with contextlib.suppress(TimeoutError):  # asyncio.timeout never swallows a cancellation, unlike 3.11's wait_for
                    async with asyncio.timeout(remaining):
                        await self.stopping.wait()


class WavRecorderPlayer(Backend):
    """Records each reply to a WAV file instead of playing it (tests, demos, headless boxes).

    Takes PCM chunks of any format (mixed to mono, resampled to one rate) and WAV streams;
    the file holds exactly what was "played", and is written when ``play()`` returns or is
    stopped (nothing is written when nothing was played).
    """

    name: ClassVar[str] = "wav"

    class Config(BackendConfig):
        path: Path = Field(
            Path("magoo-reply.wav"),
            description="Where to write the reply; '{n}' becomes the playback number (1, 2, ...).",
        )
        realtime: StrictBool = Field(
            False,
            description="Take as long as a speaker would, so a stop can interrupt a reply midway.",
        )
        sample_rate: SampleRate | None = Field(
            None, description="Rate of the file in Hz; unset uses the rate of the first audio."
        )

        @field_validator("path")
        @classmethod
        def _only_n(cls, value: Path) -> Path:
            unknown = [p for p in re.findall(r"\{[^{}]*\}", str(value)) if p != "{n}"]
            if unknown:
                raise ValueError(f"{unknown[0][:40]} is not replaced: '{{n}}' (the playback number) is the only placeholder")
            return value

    config: Config

    def __init__(self, config: Config) -> None:
        super().__init__(config)
        self._plays = 0
        self._seconds = 0.0
        self._current: _Playback | None = None
        self.last_path: Path | None = None
        self.played_seconds = 0.0
        self._story: str | None = None  # what describe_turn() tells next

    @classmethod
    def plays(cls, config: Config, output: AudioFormat | str) -> str | None:
        """None for PCM and WAV audio; for any other codec (mp3, opus ...), why not."""
        if isinstance(output, AudioFormat) or str(output).lower() == "wav":
            return None
        return "it records only PCM or WAV audio"

    async def play(self, audio: AsyncIterator[AudioChunk | EncodedAudio], progress: PlaybackProgress) -> None:
        """Record the stream, reporting progress per piece of at most 50 ms; returns at its end or on stop()."""
        self._plays += 1
        playback = self._current = _Playback(progress, self.config.sample_rate, self.config.realtime)
        try:
            iterator = aiter(audio)
            while (item := await next_unless_set(iterator, playback.stopping)) is not _END:
                await playback.play(item)
            if not playback.stopping.is_set():
                await playback.finish()
        finally:
            self._current = None
            await self._save(playback)

    async def stop(self) -> None:
        """Make the current ``play()`` return promptly, keeping what was played so far."""
        if self._current is not None:
            self._current.stopping.set()

    def stats(self) -> dict[str, float]:
        return {"plays": self._plays, "seconds": round(self._seconds, 3)}

    def describe_turn(self) -> str | None:
        story, self._story = self._story, None
        return story

    async def _save(self, playback: _Playback) -> None:
        fmt = playback.format
        self.played_seconds = playback.frames / fmt.sample_rate if fmt is not None else 0.0
        self._seconds += self.played_seconds
        self.last_path = None
        if not playback.played:
            return
        path = Path(str(self.config.path).replace("{n}", str(self._plays)))
        try:
            await asyncio.to_thread(write_atomically, path, _wav_bytes(playback.played, fmt))
        except OSError as exc:  # OutputError too: a device node, fifo or symbolic link is not replaced
            raise BackendError(f"the wav recorder player cannot write {path}: {exc}", retryable=False) from None
        self.last_path = path
        self._story = f"the reply ({self.played_seconds:.1f} s) is in {_shown(path)}"


def _wav_bytes(chunks: list[AudioChunk], fmt: AudioFormat) -> bytes:
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as wav:
        wav.setnchannels(fmt.channels)
        wav.setsampwidth(fmt.sample_width)
        wav.setframerate(fmt.sample_rate)
        wav.writeframes(concatenate(chunks, fmt).pcm)
    return buffer.getvalue()


def _shown(path: Path) -> str:
    """The path relative to the working folder when it is below it (shorter to read)."""
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)
