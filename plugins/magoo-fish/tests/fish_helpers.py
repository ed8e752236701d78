"""Helpers for the Fish plugin's tests: a backend pointed at the loopback server, and what a
synthesis yields.

A module of its own, not conftest.py: several plugins' tests have a conftest.py, and ``from
conftest import ...`` gets whichever was loaded last when they are tested together."""

from __future__ import annotations

import socket
from typing import Any

from magoo_core import AudioChunk, EncodedAudio
from magoo_fish import FishTextToSpeech
from magoo_fish.loopback import LoopbackFishServer

KEY = "fish-test-key-0123456789abcdefWXYZ"
SENTENCE = "Hello, this is magoo speaking."


def backend(server: LoopbackFishServer | str, **options: Any) -> FishTextToSpeech:
    """The real backend, pointed at ``server`` (or a base URL), with short timeouts for tests."""
    base_url = server if isinstance(server, str) else server.base_url
    settings = {"api_key": KEY, "base_url": base_url, "first_byte_timeout": 5.0, "read_timeout": 5.0, **options}
    return FishTextToSpeech(FishTextToSpeech.Config(**settings))


def no_wait(tts: FishTextToSpeech) -> list[float]:
    """Make retries of ``tts`` wait for nothing; the returned list gets each delay it was asked for."""
    asked: list[float] = []

    async def sleep(seconds: float) -> None:
        asked.append(seconds)

    tts.sleep = sleep
    return asked


async def speak(tts: FishTextToSpeech, text: str = SENTENCE) -> list[AudioChunk | EncodedAudio]:
    return [piece async for piece in tts.synthesize(text)]


def joined(pieces: list[AudioChunk | EncodedAudio]) -> bytes:
    return b"".join(p.pcm if isinstance(p, AudioChunk) else p.data for p in pieces)


def unused_port() -> int:
    """A port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
