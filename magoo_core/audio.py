"""Audio utilities: the one place where magoo converts, splits, buffers and measures audio.

Contracts shared by everything here:

- Audio is :class:`~magoo_core.types.AudioChunk`: interleaved little-endian signed PCM that
  carries its format. Only 16-bit samples (``sample_width == 2``) are supported; anything else
  raises ``ValueError`` naming the width.
- Units: rates in Hz, durations and timestamps in seconds, levels 0..1 of full scale (32768),
  ``frame_samples`` / ``frames`` count frames (one sample of every channel).
- Timestamps follow ``AudioChunk``: the monotonic time of a chunk's *last* frame, 0.0 when
  unknown. Derived timestamps stay 0.0 when the source timestamp is unknown.
- Nothing here blocks except :func:`read_wav` and :func:`write_wav` (file I/O: call them through
  ``asyncio.to_thread`` from the loop). Nothing is thread-safe.
"""

from __future__ import annotations

import os
import tempfile
import wave
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from .capture_queue import CaptureQueue, QueueClosed  # moved out; still importable here for plugins written before
from .types import AudioChunk, AudioFormat

if TYPE_CHECKING:
    import numpy as np

FULL_SCALE = 32768.0
_INT16 = "<i2"

__all__ = [
    "AudioConverter",
    "CaptureQueue",
    "QueueClosed",
    "Rechunker",
    "Resampler",
    "RingBuffer",
    "WavStreamDecoder",
    "chunk_from_samples",
    "concatenate",
    "convert",
    "mix_to_mono",
    "peak_level",
    "read_wav",
    "rms_level",
    "samples",
    "silence",
    "split",
    "tone",
    "write_wav",
]


# ---- samples and chunks -------------------------------------------------------------------------


def _require_int16(fmt: AudioFormat | AudioChunk) -> None:
    if fmt.sample_width != 2:
        raise ValueError(
            f"{8 * fmt.sample_width}-bit audio is not supported here; magoo converts 16-bit PCM only"
        )


def _shifted(timestamp: float, seconds: float) -> float:
    """``timestamp + seconds``, keeping 0.0 (unknown) unknown."""
    return timestamp + seconds if timestamp else 0.0


def samples(chunk: AudioChunk) -> np.ndarray:
    """The chunk's samples as a read-only int16 array shaped ``(frames, channels)``; a view, no copy.

    A trailing partial frame (never produced by magoo) is ignored.
    """
    _require_int16(chunk)
    count = chunk.frames * chunk.channels
    np = _numpy()
    return np.frombuffer(chunk.pcm, dtype=_INT16, count=count).reshape(-1, chunk.channels)


def chunk_from_samples(array: np.ndarray, sample_rate: int, timestamp: float = 0.0) -> AudioChunk:
    """Wrap an int16 array shaped ``(frames,)`` (mono) or ``(frames, channels)`` as a chunk.

    :raises ValueError: the array is not int16 (clip and cast first, so nothing wraps around).
    """
    np = _numpy()
    if array.dtype != np.int16:
        raise ValueError(f"chunk_from_samples takes int16 samples, not {array.dtype}")
    channels = 1 if array.ndim == 1 else array.shape[1]
    pcm = np.ascontiguousarray(array, dtype=_INT16).tobytes()
    return AudioChunk(pcm, sample_rate, channels, 2, timestamp)


def mix_to_mono(chunk: AudioChunk, channel: int | None = None) -> AudioChunk:
    """Average all channels into one, or keep only ``channel`` (0-based). Mono input is returned as is.

    :raises ValueError: ``channel`` does not exist in the chunk.
    """
    if channel is not None and not 0 <= channel < chunk.channels:
        raise ValueError(
            f"channel {channel} does not exist: the audio has {chunk.channels} channel(s), numbered from 0"
        )
    if chunk.channels == 1:
        return chunk
    data = samples(chunk)
    if channel is not None:
        mono = data[:, channel]
    else:
        # float32 holds any sum of a few int16 exactly, so the mean cannot overflow
        np = _numpy()
        mono = np.rint(data.mean(axis=1, dtype=np.float32)).astype(np.int16)
    return chunk_from_samples(mono, chunk.sample_rate, chunk.timestamp)


def rms_level(chunk: AudioChunk) -> float:
    """Root-mean-square level over all channels, 0..1 of full scale; 0.0 for an empty chunk."""
    data = samples(chunk)
    if data.size == 0:
        return 0.0
    np = _numpy()
    return float(np.sqrt(np.mean(np.square(data, dtype=np.float64)))) / FULL_SCALE


def peak_level(chunk: AudioChunk) -> float:
    """Largest absolute sample over all channels, 0..1 of full scale; 0.0 for an empty chunk."""
    data = samples(chunk)
    if data.size == 0:
        return 0.0
    np = _numpy()
    return float(np.max(np.abs(data.astype(np.int32)))) / FULL_SCALE


def split(chunk: AudioChunk, max_frames: int) -> Iterator[AudioChunk]:
    """Yield consecutive pieces of at most ``max_frames`` frames (only the last may be shorter).

    Each piece's timestamp is the time of its own last frame, derived from the chunk's.
    """
    if max_frames < 1:
        raise ValueError(f"max_frames must be at least 1, not {max_frames}")
    frame_bytes = chunk.channels * chunk.sample_width
    total = chunk.frames
    for start in range(0, total, max_frames):
        end = min(start + max_frames, total)
        yield replace(
            chunk,
            pcm=chunk.pcm[start * frame_bytes : end * frame_bytes],
            timestamp=_shifted(chunk.timestamp, -(total - end) / chunk.sample_rate),
        )


def concatenate(chunks: Iterable[AudioChunk], fmt: AudioFormat) -> AudioChunk:
    """Join chunks of format ``fmt`` into one; its timestamp is the last chunk's.

    :raises ValueError: a chunk has another format.
    """
    pcm: list[bytes] = []
    timestamp = 0.0
    for chunk in chunks:
        if chunk.format != fmt:
            raise ValueError(f"cannot join {chunk.format} audio into a {fmt} stream")
        pcm.append(chunk.pcm)
        timestamp = chunk.timestamp
    return AudioChunk(b"".join(pcm), fmt.sample_rate, fmt.channels, fmt.sample_width, timestamp)


# ---- generators ---------------------------------------------------------------------------------


def silence(fmt: AudioFormat, seconds: float, timestamp: float = 0.0) -> AudioChunk:
    """``seconds`` of digital silence in ``fmt`` (rounded to whole frames)."""
    frames = round(seconds * fmt.sample_rate)
    return AudioChunk(bytes(frames * fmt.frame_bytes), fmt.sample_rate, fmt.channels, fmt.sample_width, timestamp)


def silence_like(chunk: AudioChunk) -> AudioChunk:
    """Digital silence of exactly ``chunk``'s format, length and timestamp."""
    return AudioChunk(bytes(len(chunk.pcm)), chunk.sample_rate, chunk.channels, chunk.sample_width, chunk.timestamp)


def tone(
    frequency: float,
    seconds: float,
    sample_rate: int,
    amplitude: float = 0.5,
    timestamp: float = 0.0,
    phase_samples: int = 0,
) -> AudioChunk:
    """A mono int16 sine wave.

    :param frequency: Hz.
    :param seconds: length, rounded to whole frames.
    :param amplitude: peak, 0..1 of full scale.
    :param phase_samples: frames already generated; pass the running total to produce one
        continuous tone chunk by chunk.
    """
    if not 0.0 <= amplitude <= 1.0:
        raise ValueError(f"amplitude is a fraction of full scale, 0..1, not {amplitude}")
    np = _numpy()
    index = np.arange(round(seconds * sample_rate), dtype=np.float64) + phase_samples
    # reduce to one cycle before taking sin so hours of phase keep full precision
    cycles = np.mod(index * (frequency / sample_rate), 1.0)
    wave_ = np.sin(2 * np.pi * cycles) * (amplitude * FULL_SCALE)
    return chunk_from_samples(np.clip(np.rint(wave_), -32768, 32767).astype(np.int16), sample_rate, timestamp)


# ---- streaming conversion -----------------------------------------------------------------------


def _soxr():
    # imported on first use: soxr costs more start-up time than all the rest of this module
    import soxr

    return soxr


def _numpy():
    # imported on first use too: plugin modules import this one, and `magoo plugins`, which
    # imports every plugin, must not pay numpy's start-up time
    import numpy

    return numpy


class Resampler:
    """Streaming, stateful sample-rate conversion with soxr (int16 in and out).

    Feed one continuous stream through :meth:`process`; soxr keeps filter state between calls,
    so chunk boundaries leave no clicks, and early calls may return 0 frames (filter delay).
    :meth:`flush` returns the delayed tail and makes the resampler ready for a new stream.
    When ``source_rate == target_rate`` chunks pass through untouched.
    Not thread-safe; CPU-bound but fast (microseconds per 80 ms chunk).
    """

    def __init__(self, source_rate: int, target_rate: int, channels: int = 1, quality: str = "HQ") -> None:
        if source_rate <= 0 or target_rate <= 0:
            raise ValueError(f"sample rates must be positive, not {source_rate} → {target_rate}")
        self.source_rate = source_rate
        self.target_rate = target_rate
        self.channels = channels
        self._last_timestamp = 0.0
        self._stream = (
            None
            if source_rate == target_rate
            else _soxr().ResampleStream(source_rate, target_rate, channels, dtype="int16", quality=quality)
        )

    def process(self, chunk: AudioChunk) -> AudioChunk:
        """Resample ``chunk`` (at ``source_rate`` with ``channels``); the output keeps its timestamp.

        :raises ValueError: the chunk's rate or channel count is not the resampler's.
        """
        if chunk.sample_rate != self.source_rate or chunk.channels != self.channels:
            raise ValueError(
                f"this resampler takes {self.source_rate} Hz, {self.channels} ch audio, not {chunk.format}"
            )
        self._last_timestamp = chunk.timestamp
        if self._stream is None:
            return chunk
        return self._wrap(self._stream.resample_chunk(self._input(samples(chunk))), chunk.timestamp)

    def flush(self) -> AudioChunk:
        """Return what soxr still holds (the end of the stream) and start afresh."""
        if self._stream is None:
            return AudioChunk(b"", self.target_rate, self.channels, 2, self._last_timestamp)
        np = _numpy()
        empty = np.zeros((0, self.channels), dtype=np.int16)
        tail = self._stream.resample_chunk(self._input(empty), last=True)
        self._stream.clear()
        return self._wrap(tail, self._last_timestamp)

    def _input(self, data: np.ndarray) -> np.ndarray:
        return data[:, 0] if self.channels == 1 else data

    def _wrap(self, data: np.ndarray, timestamp: float) -> AudioChunk:
        return chunk_from_samples(data, self.target_rate, timestamp)


class Rechunker:
    """Cuts a stream into chunks of exactly ``frame_samples`` frames, keeping the remainder.

    Every output chunk's timestamp is the capture time of its last frame: the timestamp of the
    input chunk that frame came from, minus the duration of the input frames after it.
    All input chunks must share one format while a remainder is held. Not thread-safe.
    """

    def __init__(self, frame_samples: int) -> None:
        if frame_samples < 1:
            raise ValueError(f"frame_samples must be at least 1, not {frame_samples}")
        self.frame_samples = frame_samples
        self._remainder: AudioChunk | None = None

    @property
    def pending_frames(self) -> int:
        """Frames held back until the next push completes a chunk."""
        return self._remainder.frames if self._remainder is not None else 0

    def push(self, chunk: AudioChunk) -> list[AudioChunk]:
        """Add ``chunk``; return every complete ``frame_samples`` chunk now available (maybe none).

        :raises ValueError: the chunk's format differs from the held remainder's.
        """
        if self._remainder is not None:
            if chunk.format != self._remainder.format:
                raise ValueError(f"cannot re-chunk {chunk.format} audio after {self._remainder.format} audio")
            chunk = replace(chunk, pcm=self._remainder.pcm + chunk.pcm)
        pieces = list(split(chunk, self.frame_samples)) if chunk.pcm else []
        self._remainder = pieces.pop() if pieces and pieces[-1].frames < self.frame_samples else None
        return pieces

    def flush(self, pad: bool = False) -> list[AudioChunk]:
        """Return the remainder (empty list if none), zero-padded to a full chunk when ``pad``.

        A padded chunk's timestamp is when its last (padding) frame would have been captured.
        """
        remainder, self._remainder = self._remainder, None
        if remainder is None:
            return []
        if pad:
            missing = self.frame_samples - remainder.frames
            padding = bytes(missing * remainder.channels * remainder.sample_width)
            remainder = replace(
                remainder,
                pcm=remainder.pcm + padding,
                timestamp=_shifted(remainder.timestamp, missing / remainder.sample_rate),
            )
        return [remainder]

    def reset(self) -> None:
        """Forget the remainder."""
        self._remainder = None


class AudioConverter:
    """Brings any 16-bit stream to ``target``: channels, then rate, then chunk size.

    Supported: any channel count to mono (average, or pick ``channel``), or an unchanged layout
    when the input already has ``target.channels``; any rate to any rate (the resampler follows
    rate changes mid-stream, flushing the old one first); optional fixed ``frame_samples`` output.
    When the input already matches ``target`` and ``frame_samples`` is None, the very same chunk
    object is returned (no copy). Not thread-safe; call from one task or thread.
    """

    def __init__(self, target: AudioFormat, frame_samples: int | None = None, channel: int | None = None) -> None:
        _require_int16(target)
        self.target = target
        self.frame_samples = frame_samples
        self.channel = channel
        self._resampler: Resampler | None = None
        self._rechunker = Rechunker(frame_samples) if frame_samples is not None else None

    def convert(self, chunk: AudioChunk) -> list[AudioChunk]:
        """Convert one chunk; returns 0..n chunks in ``target`` format.

        :raises ValueError: the chunk's layout cannot be brought to the target's, or it is not 16-bit.
        """
        _require_int16(chunk)
        shaped = self._shape_channels(chunk)
        tail = self._follow_rate(shaped)
        if not tail and self._rechunker is None and chunk.format == self.target:
            return [chunk]
        return self._rechunk([*tail, self._resampler.process(shaped)])

    def flush(self, pad: bool = False) -> list[AudioChunk]:
        """End of stream: the resampler's tail and the rechunker's remainder (padded when ``pad``)."""
        tail = [self._resampler.flush()] if self._resampler is not None else []
        self._resampler = None
        out = self._rechunk(tail)
        if self._rechunker is not None:
            out += self._rechunker.flush(pad)
        return out

    def reset(self) -> None:
        """Drop all state; the next chunk starts a new stream."""
        self._resampler = None
        if self._rechunker is not None:
            self._rechunker.reset()

    def _shape_channels(self, chunk: AudioChunk) -> AudioChunk:
        if self.target.channels == 1:
            return mix_to_mono(chunk, self.channel)
        if chunk.channels == self.target.channels:
            return chunk
        raise ValueError(
            f"cannot convert {chunk.channels}-channel audio to {self.target.channels} channels;"
            " only mono output or an unchanged channel layout is supported"
        )

    def _follow_rate(self, chunk: AudioChunk) -> list[AudioChunk]:
        """(Re)create the resampler for this chunk's rate and layout; return the old one's tail."""
        current = self._resampler
        if current is not None and (current.source_rate, current.channels) == (chunk.sample_rate, chunk.channels):
            return []
        self._resampler = Resampler(chunk.sample_rate, self.target.sample_rate, chunk.channels)
        if current is None:
            return []
        tail = current.flush()
        return [tail] if tail.pcm else []

    def _rechunk(self, chunks: list[AudioChunk]) -> list[AudioChunk]:
        if self._rechunker is None:
            return [c for c in chunks if c.pcm]
        return [piece for c in chunks for piece in self._rechunker.push(c)]


def convert(chunk: AudioChunk, target: AudioFormat, channel: int | None = None) -> AudioChunk:
    """One-shot conversion of a whole clip to ``target`` (see :class:`AudioConverter`)."""
    converter = AudioConverter(target, channel=channel)
    return concatenate([*converter.convert(chunk), *converter.flush()], target)


# ---- buffers ------------------------------------------------------------------------------------


class RingBuffer:
    """The most recent ``seconds`` of audio (the pre-roll before a wake word), as whole chunks.

    Oldest chunks are dropped once the total exceeds ``seconds``, but the newest chunk is always
    kept. ``append`` is O(1) amortized; durations are summed in integer nanoseconds so weeks of
    appends do not drift. Not thread-safe: use from the loop.
    """

    def __init__(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError(f"seconds must be ≥ 0, not {seconds}")
        self.seconds = seconds
        self._limit_ns = round(seconds * 1e9)
        self._chunks: deque[tuple[AudioChunk, int]] = deque()
        self._total_ns = 0

    def append(self, chunk: AudioChunk) -> None:
        length = round(chunk.duration * 1e9)
        self._chunks.append((chunk, length))
        self._total_ns += length
        while self._total_ns > self._limit_ns and len(self._chunks) > 1:
            _, dropped = self._chunks.popleft()
            self._total_ns -= dropped

    def chunks(self) -> list[AudioChunk]:
        """The buffered chunks, oldest first."""
        return [chunk for chunk, _ in self._chunks]

    @property
    def duration(self) -> float:
        """Seconds of audio held."""
        return self._total_ns / 1e9

    def clear(self) -> None:
        self._chunks.clear()
        self._total_ns = 0

    def __len__(self) -> int:
        return len(self._chunks)


# ---- WAV ----------------------------------------------------------------------------------------


def read_wav(path: str | os.PathLike) -> tuple[AudioFormat, bytes]:
    """Read a 16-bit PCM WAV file whole. Blocking file I/O.

    :raises FileNotFoundError: naming the path.
    :raises ValueError: naming the path, when it is not a 16-bit PCM WAV.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such WAV file")
    try:
        with wave.open(str(path), "rb") as wav:
            fmt = AudioFormat(wav.getframerate(), wav.getnchannels(), wav.getsampwidth())
            pcm = wav.readframes(wav.getnframes())
    except (wave.Error, EOFError) as exc:
        raise ValueError(f"{path}: not a PCM WAV file ({exc}); magoo reads 16-bit PCM WAV") from None
    if fmt.sample_width != 2:
        raise ValueError(
            f"{path}: {8 * fmt.sample_width}-bit WAV; magoo reads 16-bit PCM WAV only"
            " (convert it, e.g. `sox in.wav -b 16 out.wav`)"
        )
    return fmt, pcm


def write_wav(path: str | os.PathLike, chunks_or_pcm: bytes | Iterable[AudioChunk], fmt: AudioFormat) -> Path:
    """Write a WAV file atomically (a temporary file beside it, then ``os.replace``).

    Creates missing parent folders. Blocking file I/O. Returns the path written.

    :param chunks_or_pcm: raw PCM in ``fmt``, or chunks that are all in ``fmt``.
    :raises ValueError: a chunk is not in ``fmt``.
    """
    path = Path(path)
    pcm = chunks_or_pcm if isinstance(chunks_or_pcm, bytes | bytearray) else concatenate(chunks_or_pcm, fmt).pcm
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as file, wave.open(file, "wb") as wav:
            wav.setnchannels(fmt.channels)
            wav.setsampwidth(fmt.sample_width)
            wav.setframerate(fmt.sample_rate)
            wav.writeframes(pcm)
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
    return path


_WAVE_FORMAT_PCM = 1
_WAVE_FORMAT_EXTENSIBLE = 0xFFFE


class WavStreamDecoder:
    """Decodes a WAV file that arrives in pieces (a streaming TTS reply) into PCM chunks.

    The RIFF and ``data`` sizes are ignored, since streaming servers write placeholders (0,
    0xFFFFFFFF): everything after the ``data`` chunk header is PCM. Chunks between ``fmt `` and
    ``data`` (``LIST`` ...) are skipped. Output chunks hold whole frames only (a partial frame
    waits for the next piece) and have timestamp 0.0. Not thread-safe.
    """

    def __init__(self) -> None:
        self._buffer = bytearray()
        self.format: AudioFormat | None = None
        self._in_data = False

    def feed(self, data: bytes) -> AudioChunk | None:
        """Add bytes; return the PCM now complete, or None while the header or a frame is incomplete.

        :raises ValueError: not a RIFF/WAVE stream, or not 16-bit PCM.
        """
        self._buffer += data
        if not self._in_data and not self._parse_header():
            return None
        fmt = self.format
        usable = len(self._buffer) - len(self._buffer) % fmt.frame_bytes
        if usable == 0:
            return None
        pcm = bytes(self._buffer[:usable])
        del self._buffer[:usable]
        return AudioChunk(pcm, fmt.sample_rate, fmt.channels, fmt.sample_width)

    def _parse_header(self) -> bool:
        """Consume header chunks from the buffer; True once the ``data`` chunk has begun."""
        buffer = self._buffer
        if len(buffer) < 12:
            return False
        if buffer[:4] != b"RIFF" or buffer[8:12] != b"WAVE":
            raise ValueError("not a WAV stream: it does not start with a RIFF/WAVE header")
        offset = 12
        while len(buffer) >= offset + 8:
            kind = bytes(buffer[offset : offset + 4])
            size = int.from_bytes(buffer[offset + 4 : offset + 8], "little")
            body = offset + 8
            if kind == b"data":
                if self.format is None:
                    raise ValueError("WAV stream has its data chunk before its fmt chunk")
                del buffer[:body]
                self._in_data = True
                return True
            end = body + size + (size & 1)  # RIFF chunks are padded to an even length
            if len(buffer) < end:
                return False
            if kind == b"fmt ":
                self.format = self._parse_fmt(bytes(buffer[body : body + size]))
            offset = end
        return False

    @staticmethod
    def _parse_fmt(body: bytes) -> AudioFormat:
        if len(body) < 16:
            raise ValueError("WAV stream has a truncated fmt chunk")
        tag = int.from_bytes(body[0:2], "little")
        channels = int.from_bytes(body[2:4], "little")
        rate = int.from_bytes(body[4:8], "little")
        bits = int.from_bytes(body[14:16], "little")
        if tag == _WAVE_FORMAT_EXTENSIBLE and len(body) >= 26:
            tag = int.from_bytes(body[24:26], "little")  # the sub-format GUID starts with the real tag
        if tag != _WAVE_FORMAT_PCM:
            raise ValueError(f"WAV stream is not PCM (format tag {tag}); ask the TTS for 16-bit PCM WAV")
        if bits != 16:
            raise ValueError(f"WAV stream is {bits}-bit; magoo plays 16-bit PCM WAV only")
        if channels < 1 or rate < 1:
            raise ValueError(f"WAV stream has an invalid format: {channels} channels at {rate} Hz")
        return AudioFormat(rate, channels, 2)
