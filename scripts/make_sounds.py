"""Write magoo's default sounds (magoo_core/sounds/*.wav): short generated tones, made by the project.

Run once after changing a tone; the WAVs are committed (16-bit mono, 22050 Hz, a few kB each).
Deterministic: the same script writes the same bytes.

    .venv/bin/python scripts/make_sounds.py
"""

from __future__ import annotations

import wave
from pathlib import Path

import numpy as np

RATE = 22050
FADE = 0.005  # seconds of fade at each note's ends, so no note clicks
OUT = Path(__file__).resolve().parent.parent / "magoo_core" / "sounds"

#: each sound: notes of (Hz, seconds, peak 0..1), played one after the other
SOUNDS: dict[str, list[tuple[float, float, float]]] = {
    "wake": [(880.0, 0.05, 0.5), (1318.5, 0.07, 0.5)],  # rising: "I'm listening", ~120 ms
    "listening": [(1046.5, 0.1, 0.35)],  # one soft high note: the follow-up window opens
    "thinking": [(523.3, 0.06, 0.3), (0.0, 0.04, 0.0), (523.3, 0.06, 0.3)],  # two low pulses
    "done": [(1318.5, 0.06, 0.4), (880.0, 0.08, 0.4)],  # falling: the wake chime backwards
    "error": [(329.6, 0.12, 0.5), (261.6, 0.18, 0.5)],  # two low falling notes
    # three bright beeps, a kitchen timer's: a finished timer ([engine.timers] sound)
    "timer": [(1568.0, 0.09, 0.45), (0.0, 0.06, 0.0), (1568.0, 0.09, 0.45), (0.0, 0.06, 0.0), (1568.0, 0.09, 0.45)],
}


def note(frequency: float, seconds: float, peak: float) -> np.ndarray:
    n = round(seconds * RATE)
    t = np.arange(n) / RATE
    samples = peak * np.sin(2 * np.pi * frequency * t)
    fade = min(round(FADE * RATE), n // 2)
    if fade:
        ramp = np.linspace(0.0, 1.0, fade)
        samples[:fade] *= ramp
        samples[-fade:] *= ramp[::-1]
    return samples


def render(notes: list[tuple[float, float, float]]) -> bytes:
    samples = np.concatenate([note(*n) for n in notes])
    return np.clip(np.rint(samples * 32767), -32768, 32767).astype("<i2").tobytes()


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    for name, notes in SOUNDS.items():
        path = OUT / f"{name}.wav"
        with wave.open(str(path), "wb") as wav:
            wav.setnchannels(1)
            wav.setsampwidth(2)
            wav.setframerate(RATE)
            wav.writeframes(render(notes))
        print(f"{path.relative_to(OUT.parent.parent)}: {sum(n[1] for n in notes) * 1000:.0f} ms")


if __name__ == "__main__":
    main()
