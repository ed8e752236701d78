"""Noise suppression and automatic gain (``[engine.noise]``): the real ``webrtc-noise-gain`` on the
repository's clips with its white and pink noise mixed in, and the real openWakeWord after it.

The signal-to-noise ratio is estimated from the clip's own layout: the power where the wake word
is against the power of the padding around it, which holds only noise.
"""

from __future__ import annotations

import asyncio
import logging
import sys
from pathlib import Path

import numpy as np
import pytest

from magoo_core import AudioChunk, AudioFormat
from magoo_core.audio import read_wav
from magoo_core.duplex import Duplex
from magoo_core.noise import NoiseFilter
from magoo_core.settings import EngineSettings, NoiseSettings
from magoo_core.testing import run_turn

DATA = Path(__file__).resolve().parent / "data"
RATE = 16000
FRAME = 1280  # openWakeWord's 80 ms


def clip(path: Path) -> np.ndarray:
    fmt, pcm = read_wav(path)
    assert fmt == AudioFormat(RATE), path
    return np.frombuffer(pcm, dtype="<i2").astype(np.float64)


def noisy(speech: Path, noise: Path, snr_db: float, pad: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """The clip padded with ``pad`` s of silence, the noise mixed in at ``snr_db`` (speech power over
    noise power), as float samples; and the mask of the clip's own samples."""
    voice = clip(speech)
    silence = np.zeros(round(pad * RATE))
    padded = np.concatenate([silence, voice, silence])
    hiss = clip(noise)[: len(padded)]
    hiss = hiss * np.sqrt(np.mean(voice**2) / np.mean(hiss**2) / 10 ** (snr_db / 10))
    mask = np.zeros(len(padded), dtype=bool)
    mask[len(silence) : len(silence) + len(voice)] = True
    return np.clip(padded + hiss, -32768, 32767), mask


def through(stage: NoiseFilter, audio: np.ndarray, frames: int = FRAME) -> np.ndarray:
    pcm = audio.astype("<i2").tobytes()
    out = b"".join(stage.process(AudioChunk(pcm[i : i + 2 * frames], RATE)).pcm for i in range(0, len(pcm), 2 * frames))
    cleaned = np.frombuffer(out, dtype="<i2").astype(np.float64)
    return np.concatenate([cleaned, np.zeros(len(audio) - len(cleaned))])  # the last < 10 ms waits for more


def snr(audio: np.ndarray, mask: np.ndarray) -> float:
    quiet = audio[~mask][RATE // 4 :]  # past the suppressor's first quarter second of learning the noise
    return 10 * np.log10(np.mean(audio[mask] ** 2) / max(np.mean(quiet**2), 1e-9))


def wakes(audio: np.ndarray) -> int:
    import magoo_openwakeword

    detector = magoo_openwakeword.OpenWakeWordDetector(magoo_openwakeword.OpenWakeWordDetector.Config())
    np.random.seed(1234)  # openWakeWord primes its features with random values
    asyncio.run(detector.__aenter__())
    pcm = audio.astype("<i2").tobytes()
    step = 2 * FRAME
    found = [detector.process(AudioChunk(pcm[i : i + step], RATE, timestamp=1000 + i / step * 0.08)) for i in range(0, len(pcm) - step + 1, step)]
    return sum(event is not None for event in found)


HEY_JARVIS = DATA / "wake" / "wyoming-openwakeword" / "hey_jarvis.wav"
NOISES = [DATA / "negatives" / "white_noise_10s.wav", DATA / "negatives" / "pink_noise_10s.wav"]


@pytest.mark.parametrize("noise", NOISES, ids=lambda p: p.stem)
def test_suppression_raises_the_signal_to_noise_ratio_of_noisy_speech(noise):
    audio, mask = noisy(HEY_JARVIS, noise, snr_db=5)
    cleaned = through(NoiseFilter(NoiseSettings(suppression=2)), audio)
    stronger = through(NoiseFilter(NoiseSettings(suppression=4)), audio)
    # measured: 6 dB in, 16-18 dB out at level 2, 23-26 dB at level 4
    assert snr(cleaned, mask) >= snr(audio, mask) + 6
    assert snr(stronger, mask) >= snr(cleaned, mask) + 3


@pytest.mark.parametrize("noise", NOISES, ids=lambda p: p.stem)
def test_the_wake_word_still_wakes_openwakeword_through_the_stage(noise):
    audio, _ = noisy(HEY_JARVIS, noise, snr_db=5)
    assert wakes(through(NoiseFilter(NoiseSettings(suppression=2)), audio)) == 1


def test_a_clean_negative_stays_a_negative():
    audio = clip(DATA / "wake" / "wyoming-openwakeword" / "computer.wav")
    assert wakes(through(NoiseFilter(NoiseSettings(suppression=2, auto_gain=3)), np.concatenate([np.zeros(RATE), audio, np.zeros(RATE)]))) == 0


def test_auto_gain_brings_quiet_speech_up():
    quiet = clip(DATA / "negatives" / "espeak_gpl3_speech_60s.wav")[: 10 * RATE] * 0.05
    raised = through(NoiseFilter(NoiseSettings(suppression=0, auto_gain=3)), quiet)
    tail = slice(5 * RATE, 10 * RATE)  # once the gain has settled
    # measured: 12 dB louder (4x) at every level asked for, once settled
    assert np.sqrt(np.mean(raised[tail] ** 2)) > 3 * np.sqrt(np.mean(quiet[tail] ** 2))


def test_any_microphone_format_comes_out_16_khz_mono_with_nothing_lost():
    stage = NoiseFilter(NoiseSettings(suppression=1))
    stereo_48k = np.zeros((48000, 2), dtype="<i2").tobytes()
    sizes = [50, 480, 4800, 1, 48000 - 5331]  # frames per chunk, ragged: leftovers wait for the next
    out, start = [], 0
    for frames in sizes:
        chunk = AudioChunk(stereo_48k[start * 4 : (start + frames) * 4], 48000, channels=2)
        start += frames
        result = stage.process(chunk)
        assert (result.sample_rate, result.channels, result.frames % 160) == (RATE, 1, 0)
        out.append(result.frames)
    assert RATE - 800 <= sum(out) <= RATE  # one second in, one out, but what the resampler and the last part-frame hold


def test_without_the_library_the_run_goes_on_with_one_line(caplog, monkeypatch):
    monkeypatch.setitem(sys.modules, "webrtc_noise_gain", None)
    with caplog.at_level(logging.WARNING, logger="magoo.engine"):
        assert NoiseFilter.of_settings(NoiseSettings()) is None
    (line,) = [r.getMessage() for r in caplog.records]
    assert "[engine.noise] is off" in line and "uv pip install webrtc-noise-gain" in line


def test_off_unless_asked_for():
    assert NoiseFilter.of_settings(None) is None
    assert NoiseFilter.of_settings(NoiseSettings(enabled=False)) is None
    assert NoiseFilter.of_settings(NoiseSettings(suppression=0, auto_gain=0)) is None
    assert Duplex(EngineSettings(), lambda: None).noise is None
    with pytest.raises(ValueError):
        NoiseSettings(suppression=5)
    with pytest.raises(ValueError):
        NoiseSettings(auto_gain=32)


def test_a_turn_runs_on_the_cleaned_audio(tmp_path, monkeypatch):
    """A whole turn over a 22.05 kHz stereo file with [engine.noise]: every chunk goes through the
    stage, the engine routes what comes out (16 kHz mono, none of it lost) and the turn completes."""
    from magoo_core.audio import write_wav

    seen: list[tuple[int, int]] = []
    original = NoiseFilter.process

    def spy(self, chunk):
        out = original(self, chunk)
        seen.append((out.sample_rate, out.channels))
        return out

    monkeypatch.setattr(NoiseFilter, "process", spy)
    tone = (0.3 * 32767 * np.sin(2 * np.pi * 440 * np.arange(22050 * 3) / 22050)).astype("<i2")
    path = write_wav(tmp_path / "stereo.wav", np.repeat(tone, 2).tobytes(), AudioFormat(22050, 2))
    record = run_turn(
        {
            "audio_source": {"backend": "wav", "path": str(path), "tail_silence": 1.0},
            "wake": {"backend": "scripted", "at": [0.5]},
            "engine": {"noise": {"suppression": 2}},
        }
    )
    assert [t.outcome.value for t in record.timelines] == ["ok"] and record.failures == []
    assert seen and set(seen) == {(RATE, 1)}
