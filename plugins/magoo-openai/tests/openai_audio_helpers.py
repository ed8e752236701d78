"""Shared pieces of the audio tests of magoo-openai: recordings, audio streams and the loopback.

(A module with its own name, not a conftest: each plugin's tests may have a conftest, and
``import conftest`` would find whichever came first.)
"""

from __future__ import annotations

import time
import wave
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import magoo_core
from magoo_core import AudioChunk
from magoo_core.roles import AudioStream
from magoo_openai.loopback import AudioLoopback, LoopbackOpenAIServer

KEY = "sk-test-audio-0123456789abcdefWXYZ"
KIT = Path(magoo_core.__file__).parent / "testing" / "data"
ROOT = Path(__file__).resolve().parents[3]
PAUSED = KIT / "set_a_timer_for__pause__five_minutes__en-us.wav"  # "set a timer for ... five minutes", 2.42 s
QUESTION = KIT / "what_time_is_it__en-us.wav"  # 1.29 s
HEY_JARVIS_QUESTION = ROOT / "examples" / "audio" / "hey_jarvis_what_time_is_it.wav"
LONG_SPEECH = ROOT / "tests" / "data" / "negatives" / "espeak_gpl3_speech_60s.wav"


def pcm(path: Path) -> bytes:
    """A 16 kHz mono 16-bit recording's samples."""
    with wave.open(str(path)) as clip:
        assert (clip.getframerate(), clip.getnchannels(), clip.getsampwidth()) == (16000, 1, 2)
        return clip.readframes(clip.getnframes())


def quiet(seconds: float) -> bytes:
    """Room-quiet noise (about -60 dBFS): what a microphone gives when nobody speaks."""
    return np.random.default_rng(1).normal(0, 30, round(seconds * 16000)).astype("<i2").tobytes()


def stream(audio: bytes, *, continuous: bool = False, chunk: int = 2560, consumed: list[int] | None = None) -> AudioStream:
    """``audio`` as the engine hands it to an STT: 80 ms chunks stamped with their capture time, as
    if captured in real time from now on (read faster); ``consumed`` counts the chunks read."""
    start = time.monotonic()

    async def chunks() -> AsyncIterator[AudioChunk]:
        for offset in range(0, len(audio), chunk):
            if consumed is not None:
                consumed.append(offset)
            piece = audio[offset : offset + chunk]
            yield AudioChunk(piece, 16000, timestamp=start + (offset + len(piece)) / 32000)

    return AudioStream(chunks(), continuous=continuous)


def tone_pcm(seconds: float, rate: int = 24000, hz: float = 440.0) -> bytes:
    """A tone at half scale: what the loopback's speech endpoint says."""
    t = np.arange(round(seconds * rate)) / rate
    return (np.sin(2 * np.pi * hz * t) * 16000).astype("<i2").tobytes()


@pytest.fixture
async def loopback_server() -> AsyncIterator[LoopbackOpenAIServer]:
    """The loopback OpenAI server on a free port, wanting :data:`KEY`, saying a 1 s tone."""
    async with LoopbackOpenAIServer(api_key=KEY, audio=AudioLoopback(speech=tone_pcm(1.0), pace=8.0)) as server:
        yield server


@pytest.fixture
def loopback(loopback_server: LoopbackOpenAIServer) -> tuple[AudioLoopback, str]:
    """The audio endpoints' state and the base URL (the key and status faults: ``loopback_server``)."""
    return loopback_server.audio, loopback_server.base_url


def section(url: str, **options: Any) -> dict[str, Any]:
    """Config values for either backend, pointed at the loopback with the test key."""
    return {"base_url": url, "api_key": KEY, **options}
