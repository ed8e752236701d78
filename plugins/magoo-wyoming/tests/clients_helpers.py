"""Shared pieces of the client tests: recordings and audio streams as the engine hands them.

(A module with its own name, not a conftest: ``import conftest`` would find another plugin's.)
"""

from __future__ import annotations

import time
import wave
from collections.abc import AsyncIterator
from pathlib import Path

import numpy as np

import magoo_core
from magoo_core import AudioChunk
from magoo_core.roles import AudioStream

KIT = Path(magoo_core.__file__).parent / "testing" / "data"
QUESTION = KIT / "what_time_is_it__en-us.wav"  # 1.29 s
PAUSED = KIT / "set_a_timer_for__pause__five_minutes__en-us.wav"  # 2.42 s


def pcm(path: Path) -> bytes:
    """A 16 kHz mono 16-bit recording's samples."""
    with wave.open(str(path)) as clip:
        return clip.readframes(clip.getnframes())


def quiet(seconds: float) -> bytes:
    """Room-quiet noise (about -60 dBFS)."""
    return np.random.default_rng(1).normal(0, 30, round(seconds * 16000)).astype("<i2").tobytes()


def loud(seconds: float) -> bytes:
    """A tone at a quarter of full scale: what the scripted wake server detects."""
    samples = np.arange(round(seconds * 16000))
    return (np.sin(samples * 2 * np.pi * 500 / 16000) * 8000).astype("<i2").tobytes()


def chunks(audio: bytes, chunk: int = 2560) -> list[AudioChunk]:
    """``audio`` in 80 ms chunks stamped as if captured in real time from now on."""
    start = time.monotonic()
    return [AudioChunk(audio[o : o + chunk], 16000, timestamp=start + (o + chunk) / 32000) for o in range(0, len(audio), chunk)]


def stream(audio: bytes, *, continuous: bool = False) -> AudioStream:
    """``audio`` as the engine hands it to an STT (read faster than real time)."""

    async def gen() -> AsyncIterator[AudioChunk]:
        for piece in chunks(audio):
            yield piece

    return AudioStream(gen(), continuous=continuous)
