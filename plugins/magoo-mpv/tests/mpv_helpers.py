"""Shared pieces for the mpv player's tests: real speech, streams of it, a progress recorder, level checks."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import time
from collections.abc import AsyncIterator
from pathlib import Path

import numpy as np
import pytest

from magoo_core import AudioChunk
from magoo_core.audio import read_wav, write_wav
from magoo_core.testing.device_contract import CLIP  # espeak-ng "what time is it", 16 kHz
from magoo_core.types import AudioFormat, EncodedAudio

RATE = 16000


def reference() -> np.ndarray:
    """Three times the clip with 0.3 s pauses: 4.5 s of speech-like audio at 16 kHz."""
    fmt, pcm = read_wav(CLIP)
    assert fmt.sample_rate == RATE
    clip = np.frombuffer(pcm, dtype="<i2")
    pause = np.zeros(int(0.3 * RATE), dtype="<i2")
    return np.concatenate([clip, pause, clip, pause, clip])


async def pieces(data: bytes, codec: str, *, size: int = 2048, delay: float = 0.02) -> AsyncIterator[EncodedAudio]:
    """``data`` as a TTS would stream it: ``size``-byte pieces, ``delay`` s apart."""
    for start in range(0, len(data), size):
        yield EncodedAudio(data[start : start + size], codec)
        await asyncio.sleep(delay)


async def pcm_pieces(samples: np.ndarray, *, frames: int = 1600) -> AsyncIterator[AudioChunk]:
    for start in range(0, len(samples), frames):
        yield AudioChunk(samples[start : start + frames].tobytes(), RATE)
        await asyncio.sleep(0.01)


class Progress:
    """Records what a player reports, with monotonic times."""

    def __init__(self) -> None:
        self.started_at: float | None = None
        self.levels: list[tuple[float, float, float]] = []  # (time, level, duration)

    def started(self) -> None:
        self.started_at = self.started_at or time.monotonic()

    def played(self, level: float, duration: float) -> None:
        assert 0.0 <= level <= 1.0 and duration > 0
        self.levels.append((time.monotonic(), level, duration))


def envelope(samples: np.ndarray, frame: int = 160) -> np.ndarray:
    """RMS per 10 ms frame of 16 kHz audio."""
    data = np.asarray(samples, dtype=np.float64)
    data = data[: len(data) // frame * frame].reshape(-1, frame)
    return np.sqrt((data * data).mean(axis=1))


def audible_span(samples: np.ndarray, threshold: float = 300.0) -> tuple[float, float]:
    """First and last 10 ms frame louder than ``threshold``, in seconds."""
    loud = np.nonzero(envelope(samples) > threshold)[0]
    assert loud.size, "nothing audible was recorded"
    return loud[0] * 0.01, (loud[-1] + 1) * 0.01


def player_children() -> list[int]:
    """PIDs of this process's mpv and mpg123 children, running or not yet reaped: a test must leave none."""
    pids = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:  # exited meanwhile
            continue
        name, _, rest = text[text.index("(") + 1 :].rpartition(")")
        if name in ("mpv", "mpg123") and int(rest.split()[1]) == os.getpid():
            pids.append(int(stat.parent.name))
    return pids
