"""Shared pieces for the espeak tests: a long reply, running a backend, reading its audio, pitch."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import numpy as np

from magoo_core import AudioChunk
from magoo_core.audio import read_wav
from magoo_espeak import EspeakTextToSpeech

#: Ten sentences, about 30 s of speech: far more than espeak-ng's stdout pipe holds.
LONG_TEXT = " ".join(f"This is sentence number {n} of a long reply from the assistant." for n in range(1, 11))
SHORT_TEXT = "Hello, this is magoo speaking."


def backend(**config: Any) -> EspeakTextToSpeech:
    return EspeakTextToSpeech(EspeakTextToSpeech.Config(**config))


async def speak(text: str, **config: Any) -> list[AudioChunk]:
    """Everything a freshly started backend yields for ``text``."""
    async with backend(**config) as tts:
        return [chunk async for chunk in tts.synthesize(text)]


def samples(chunks: list[AudioChunk]) -> np.ndarray:
    assert len({(c.sample_rate, c.channels, c.sample_width) for c in chunks}) <= 1, "the format changed mid-reply"
    return np.frombuffer(b"".join(c.pcm for c in chunks), dtype="<i2")


def written_by_espeak(text: str, folder: Path, *args: str) -> tuple[int, np.ndarray]:
    """What ``espeak-ng -w`` writes for ``text`` (read from stdin like the backend does): rate, samples."""
    path = folder / "espeak.wav"
    subprocess.run(["espeak-ng", "-w", str(path), "-b", "1", *args], input=text.encode(), check=True, timeout=60)
    fmt, pcm = read_wav(path)
    return fmt.sample_rate, np.frombuffer(pcm, dtype="<i2")


def fundamental(audio: np.ndarray, rate: int) -> float:
    """The median pitch (Hz, 60-400) of the louder frames, by autocorrelation: speech's strongest
    spectral peak is a formant, not its pitch, so a plain FFT peak would not follow -p."""
    data = audio.astype(np.float64)
    loud = np.sqrt(np.mean(data**2))
    size, shortest, longest = 1024, rate // 400, rate // 60
    found = []
    for start in range(0, len(data) - size, size):
        frame = data[start : start + size]
        if np.sqrt(np.mean(frame**2)) < loud:
            continue
        frame = frame - frame.mean()
        lags = np.correlate(frame, frame, "full")[size - 1 :]
        found.append(rate / (shortest + int(np.argmax(lags[shortest:longest]))))
    assert found, "no loud frames"
    return float(np.median(found))
