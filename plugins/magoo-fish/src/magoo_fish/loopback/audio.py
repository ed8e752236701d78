"""Real audio for the loopback Fish server: espeak-ng speaks the text, lame or opusenc encode it.

Everything is kept in a small process-wide cache keyed by what changes the bytes, so a test suite
that asks for the same sentence many times runs espeak-ng once.
"""

from __future__ import annotations

import asyncio
import shutil
import struct
from collections import OrderedDict
from dataclasses import dataclass

from magoo_core.audio import WavStreamDecoder, convert
from magoo_core.types import AudioChunk, AudioFormat

__all__ = [
    "FORMATS",
    "SAMPLE_RATES",
    "Encoded",
    "EncoderMissing",
    "encode",
    "output_rate",
    "speak",
]

FORMATS = ("mp3", "wav", "pcm", "opus")
#: Rates the real server accepts in ``sample_rate``; MP3 only 32 and 44.1 kHz, Opus only 48 kHz.
SAMPLE_RATES = (8000, 16000, 24000, 32000, 44100, 48000)
MP3_RATES = (32000, 44100)
DEFAULT_RATE = 44100
OPUS_RATE = 48000
CONTENT_TYPES = {"mp3": "audio/mpeg", "wav": "audio/wav", "pcm": "audio/pcm", "opus": "audio/ogg"}
CACHE_SIZE = 128

_cache: OrderedDict[tuple, Encoded] = OrderedDict()


class EncoderMissing(Exception):
    """A command-line tool the format needs is not installed; the message names it."""


@dataclass(frozen=True, slots=True)
class Encoded:
    """The audio of one request: the body bytes and what they hold."""

    data: bytes
    duration: float
    content_type: str


def output_rate(fmt: str, sample_rate: int | None) -> int:
    """The rate the server sends ``fmt`` at: Opus always 48 kHz, the others ``sample_rate`` or 44.1 kHz."""
    if fmt == "opus":
        return OPUS_RATE
    return sample_rate or DEFAULT_RATE


async def speak(text: str) -> AudioChunk:
    """espeak-ng's rendering of ``text``: 22 050 Hz mono 16-bit.

    :raises EncoderMissing: espeak-ng is not installed.
    """
    key = ("espeak", text)
    if key in _cache:
        _cache.move_to_end(key)
        return AudioChunk(_cache[key].data, 22050)
    # the text goes in on stdin, so a text that starts with "-" is not taken for an option
    wav = await _run(["espeak-ng", "--stdout"], text.encode("utf-8"))
    decoder = WavStreamDecoder()  # espeak-ng writes placeholder sizes; the decoder ignores them
    chunk = decoder.feed(wav) or AudioChunk(b"", 22050)
    _remember(key, Encoded(chunk.pcm, chunk.duration, "audio/pcm"))
    return chunk


async def encode(
    text: str, fmt: str, sample_rate: int | None = None, mp3_bitrate: int = 128, opus_bitrate: int = 32
) -> Encoded:
    """``text`` spoken and encoded the way the real server sends ``fmt``.

    mp3: CBR ``mp3_bitrate`` kbit/s mono, no LAME info frame (so replies concatenate cleanly);
    wav: 16-bit mono WAV; pcm: raw s16le mono; opus: Ogg Opus at 48 kHz (``opus_bitrate`` kbit/s,
    -1000 = the encoder's choice; values of 1000 and more are read as bit/s).

    :raises EncoderMissing: espeak-ng, lame or opusenc is not installed.
    """
    rate = output_rate(fmt, sample_rate)
    bitrate = mp3_bitrate if fmt == "mp3" else opus_bitrate if fmt == "opus" else None
    key = (text, fmt, rate, bitrate)
    if key in _cache:
        _cache.move_to_end(key)
        return _cache[key]
    voice = await speak(text)
    pcm = convert(voice, AudioFormat(rate)).pcm if voice.pcm else b""
    duration = len(pcm) / 2 / rate
    if fmt == "pcm":
        data = pcm
    elif fmt == "wav":
        data = _wav_header(rate, len(pcm)) + pcm
    elif fmt == "mp3":
        khz = f"{rate / 1000:g}"
        data = await _run(
            ["lame", "-r", "-s", khz, "--bitwidth", "16", "--signed", "--little-endian", "-m", "m",
             "-b", str(bitrate), "--resample", khz, "-t", "--silent", "-", "-"],
            pcm,
        )
    elif fmt == "opus":
        bps = [] if bitrate == -1000 else ["--bitrate", f"{bitrate / 1000 if bitrate >= 1000 else bitrate:g}"]
        data = await _run(
            ["opusenc", "--quiet", "--raw", "--raw-rate", str(rate), "--raw-chan", "1", "--raw-bits", "16",
             *bps, "-", "-"],
            pcm,
        )
    else:
        raise ValueError(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")
    encoded = Encoded(data, duration, CONTENT_TYPES[fmt])
    _remember(key, encoded)
    return encoded


def _wav_header(rate: int, data_bytes: int) -> bytes:
    return (
        b"RIFF" + struct.pack("<I", 36 + data_bytes) + b"WAVE"
        + b"fmt " + struct.pack("<IHHIIHH", 16, 1, 1, rate, rate * 2, 2, 16)
        + b"data" + struct.pack("<I", data_bytes)
    )


async def _run(command: list[str], stdin: bytes) -> bytes:
    if shutil.which(command[0]) is None:
        package = {"espeak-ng": "espeak-ng", "lame": "lame", "opusenc": "opus-tools"}[command[0]]
        raise EncoderMissing(f"{command[0]} is not installed (apt install {package})")
    process = await asyncio.create_subprocess_exec(
        *command, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    try:
        out, err = await process.communicate(stdin)
    except asyncio.CancelledError:  # the server is stopping: leave no encoder behind
        process.kill()
        await process.wait()
        raise
    if process.returncode != 0:
        raise RuntimeError(f"{command[0]} failed with exit code {process.returncode}: {err.decode(errors='replace')[-300:]}")
    return out


def _remember(key: tuple, value: Encoded) -> None:
    _cache[key] = value
    _cache.move_to_end(key)
    while len(_cache) > CACHE_SIZE:
        _cache.popitem(last=False)
