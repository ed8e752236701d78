"""Audio and scoring for the pocketsphinx tests: espeak-ng command clips, streaming, word error rate.

``measure_wer`` is what the accuracy test reports; a benchmark can import it too.
"""

from __future__ import annotations

import asyncio
import functools
import shutil
import subprocess
import tempfile
from collections.abc import AsyncIterator, Iterable
from pathlib import Path
from typing import Any

from magoo_core.audio import convert, read_wav, silence, split
from magoo_core.roles import AudioStream
from magoo_core.testing.device_contract import CLIP
from magoo_core.types import AudioChunk, AudioFormat, Transcript

from magoo_pocketsphinx import PocketsphinxSpeechToText

FORMAT = AudioFormat(16000)
CHUNK_FRAMES = 1280  # 80 ms, what a microphone backend typically delivers
COMMANDS = ["what time is it", "what is the date", "tell me a joke", "what can you do"]
#: Phrases synthesised with espeak-ng at test time (the shipped CLIP is "what time is it").
SPOKEN = ["tell me a joke", "what is the date", "what can you do"]


def shipped_clip() -> bytes:
    """The repository's espeak-ng "what time is it", 16 kHz mono."""
    fmt, pcm = read_wav(CLIP)
    assert fmt == FORMAT
    return pcm


@functools.cache
def espeak_clip(text: str) -> bytes:
    """``text`` spoken by espeak-ng (en-us), converted from 22050 Hz to 16 kHz mono."""
    if shutil.which("espeak-ng") is None:
        raise RuntimeError("espeak-ng is not installed; run scripts/setup.sh (Debian package 'espeak-ng')")
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "clip.wav"
        subprocess.run(["espeak-ng", "-v", "en-us", "-w", str(path), text], check=True, timeout=30)
        fmt, pcm = read_wav(path)
    return convert(AudioChunk(pcm, fmt.sample_rate, fmt.channels, fmt.sample_width), FORMAT).pcm


#: Commands with a pause where a speaker may stop to think: (before the pause, after it).
PAUSED = [
    ("set a timer for", "five minutes"),
    ("turn on the", "kitchen light"),
    ("remind me to", "call mom"),
    ("play some music in the", "living room"),
    ("set an alarm for", "seven thirty"),
]
#: A grammar with the paused commands, the demo's and a few that share their beginnings.
PAUSED_COMMANDS = [
    *COMMANDS,
    *(f"{before} {after}" for before, after in PAUSED),
    "set a timer for ten minutes",
    "turn off the kitchen light",
    "set an alarm for six",
]


@functools.cache
def paused_clip(before: str, after: str, pause_ms: int, voice: str = "en-us", speed: int = 160) -> bytes:
    """``before``, a pause of ``pause_ms`` ms, ``after``: espeak-ng (SSML ``<break>``), 16 kHz mono.
    Our own synthesis at test time, nothing shipped (espeak-ng's output is not covered by its GPL)."""
    if shutil.which("espeak-ng") is None:
        raise RuntimeError("espeak-ng is not installed; run scripts/setup.sh (Debian package 'espeak-ng')")
    ssml = f'<speak>{before}<break time="{pause_ms}ms"/>{after}</speak>'
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "clip.wav"
        subprocess.run(["espeak-ng", "-m", "-v", voice, "-s", str(speed), "-w", str(path), ssml], check=True, timeout=30)
        fmt, pcm = read_wav(path)
    return convert(AudioChunk(pcm, fmt.sample_rate, fmt.channels, fmt.sample_width), FORMAT).pcm


def room(seconds: float) -> bytes:
    """Room-quiet noise (about -60 dBFS) rather than digital silence: what a microphone gives."""
    import numpy as np

    return np.random.default_rng(0).normal(0, 30, round(seconds * 16000)).astype("<i2").tobytes()


def command_clips() -> dict[str, bytes]:
    """Reference text → speech, for every command with a clip."""
    return {"what time is it": shipped_clip(), **{text: espeak_clip(text) for text in SPOKEN}}


def quiet(seconds: float) -> bytes:
    return silence(FORMAT, seconds).pcm


def chunks(pcm: bytes) -> list[AudioChunk]:
    return list(split(AudioChunk(pcm, FORMAT.sample_rate), CHUNK_FRAMES))


async def stream(
    config: dict[str, Any], pcm: bytes, *, continuous: bool = False, preroll: float = 0.0,
) -> list[tuple[int, int, Any]]:
    """Run a started backend over ``pcm`` in 80 ms chunks: (chunks consumed, of total, item) per item.

    :param preroll: the stream's ``preroll`` (seconds at its start from before a wake word's frame).
    """
    pieces = chunks(pcm)
    consumed = 0

    async def audio() -> AsyncIterator[AudioChunk]:
        nonlocal consumed
        for piece in pieces:
            consumed += 1
            yield piece

    stt = PocketsphinxSpeechToText(PocketsphinxSpeechToText.Config.model_validate(config))
    async with stt:
        audio_stream = AudioStream(audio(), continuous=continuous, preroll=preroll)
        return [(consumed, len(pieces), item) async for item in stt.transcribe(audio_stream)]


def items(config: dict[str, Any], pcm: bytes, *, continuous: bool = False) -> list[Any]:
    return [item for _, _, item in asyncio.run(stream(config, pcm, continuous=continuous))]


def finals(found: Iterable[Any]) -> list[str]:
    return [i.text for i in found if isinstance(i, Transcript) and i.final]


def word_errors(reference: str, hypothesis: str) -> int:
    """Substitutions + deletions + insertions between two word sequences (Levenshtein on words)."""
    ref, hyp = reference.split(), hypothesis.split()
    row = list(range(len(hyp) + 1))
    for i, word in enumerate(ref, 1):
        previous, row[0] = row[0], i
        for j, other in enumerate(hyp, 1):
            previous, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, previous + (word != other))
    return row[-1]


def measure_wer(config: dict[str, Any] | None = None) -> tuple[float, dict[str, str]]:
    """Word error rate over the command clips (each padded with 0.3 s / 1.5 s of silence), and
    what was heard for each. ``config`` defaults to the full language model."""
    heard = {}
    for reference, pcm in command_clips().items():
        found = finals(items(config or {}, quiet(0.3) + pcm + quiet(1.5)))
        heard[reference] = found[0] if found else ""
    errors = sum(word_errors(ref, hyp) for ref, hyp in heard.items())
    return errors / sum(len(ref.split()) for ref in heard), heard
