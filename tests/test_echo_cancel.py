"""Echo cancellation (magoo_core/echo_cancel.py) with the real libraries: WebRTC AEC3 (livekit's
wheel) and speexdsp (Debian's libspeexdsp1), in-process on a synthetic room, and on a real echo
path: the virtual speaker's output reaching the virtual microphone through PulseAudio's
module-loopback, with the speaker's monitor as the reference, as in a run."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

from magoo_core.echo_cancel import EchoCancel
from magoo_core.echo_reference import ReferenceBuffer
from magoo_core.settings import EchoCancelSettings, EngineSettings
from magoo_core.types import AudioChunk

RATE = 16000
CHUNK = 1280


def speech(seconds: float, seed: int = 0) -> np.ndarray:
    """Speech-like noise: white noise under a syllable-rate envelope, with pauses."""
    rng = np.random.default_rng(seed)
    n = int(seconds * RATE)
    envelope = np.clip(np.sin(2 * np.pi * 3.5 * np.arange(n) / RATE + rng.uniform(0, 6)), 0, None)
    envelope *= np.repeat(rng.uniform(0.2, 1, n // 4000 + 1), 4000)[:n]
    voiced = np.convolve(rng.standard_normal(n), np.hanning(12), "same")
    return voiced * envelope * 4000


def echo_of(far: np.ndarray, delay: float, seed: int = 1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(int(0.15 * RATE)) / RATE
    response = rng.standard_normal(len(t)) * np.exp(-t / 0.04) * 0.1
    response[0] = 0.6
    echo = np.convolve(far, response)[: len(far)]
    return np.concatenate([np.zeros(int(delay * RATE)), echo])[: len(far)]


def run_stage(stage: EchoCancel, reference: ReferenceBuffer, far: np.ndarray, mic: np.ndarray) -> np.ndarray:
    """Feed ``mic`` in 80 ms chunks stamped with a (jittered) capture clock, the reference pushed
    in 10 ms pieces as a monitor delivers them; returns the cleaned microphone."""
    rng = np.random.default_rng(2)
    far16, mic16, out = far.astype(np.int16), np.clip(mic, -32768, 32767).astype(np.int16), []
    for i in range(0, len(mic16) - CHUNK + 1, CHUNK):
        while reference.end < i + CHUNK:
            j = reference.end
            reference.push(far16[j : j + 160], 100.0 + (j + 160) / RATE + rng.uniform(0, 0.01))
        chunk = AudioChunk(mic16[i : i + CHUNK].tobytes(), RATE, 1, 2, 100.0 + (i + CHUNK) / RATE + rng.uniform(0, 0.02))
        out.append(np.frombuffer(stage.process(chunk).pcm, dtype="<i2"))
    return np.concatenate(out).astype(np.float64)


def erle(mic: np.ndarray, cleaned: np.ndarray, start: float) -> float:
    s = int(start * RATE)
    n = min(len(mic), len(cleaned))
    return 10 * np.log10(np.sum(mic[s:n] ** 2) / (np.sum(cleaned[s:n] ** 2) + 1e-9))


@pytest.mark.parametrize("method", ["webrtc", "speex"])
def test_each_method_takes_the_echo_out_and_measures_its_delay(method):
    far = speech(12)
    mic = echo_of(far, 0.12)
    reference = ReferenceBuffer(RATE)
    stage = EchoCancel(EchoCancelSettings(method=method), reference=reference)

    cleaned = run_stage(stage, reference, far, mic)

    assert erle(mic, cleaned, 4.0) > 20  # after convergence (the bench's goal of 25 dB is on real speech)
    status = stage.status()
    assert status["active"] and status["measures"] >= 2
    assert abs(status["delay_ms"] - 120) < 25  # the clocks' jitter and the room's early part
    stage.close()


def test_the_user_speaking_over_the_echo_is_kept():
    far, user = speech(12, seed=3), speech(2, seed=4)
    echo = echo_of(far, 0.08)
    mic = echo.copy()
    at = int(8 * RATE)
    mic[at : at + len(user)] += user * np.std(echo[at : at + len(user)]) / np.std(user)  # 0 dB speech-to-echo
    reference = ReferenceBuffer(RATE)
    stage = EchoCancel(EchoCancelSettings(method="speex"), reference=reference)

    cleaned = run_stage(stage, reference, far, mic)

    during = cleaned[at + 1600 : at + len(user) - 1600]
    after_user = np.std(during)
    echo_left = np.std(cleaned[int(5 * RATE) : int(7.5 * RATE)])
    assert after_user > 5 * echo_left  # the user stands well above what is left of the echo


def test_a_changed_echo_path_is_followed():
    """The echo's delay jumps mid-run (another player latency, a sink reconfigured): the measure
    follows it within two measures and the canceller works again."""
    far = speech(20, seed=5)
    mic = np.concatenate([echo_of(far, 0.06)[: 10 * RATE], echo_of(far, 0.2)[10 * RATE :]])
    reference = ReferenceBuffer(RATE)
    stage = EchoCancel(EchoCancelSettings(method="speex"), reference=reference)

    cleaned = run_stage(stage, reference, far[: 10 * RATE], mic[: 10 * RATE])
    first = stage.status()["delay_ms"]
    rest = run_stage(stage, reference, far, mic)  # the same stage goes on (run_stage skips what is pushed)

    assert abs(first - 60) < 25
    assert abs(stage.status()["delay_ms"] - 200) < 25
    assert erle(mic[10 * RATE :], rest[len(cleaned) :], 5.0) > 15


def test_a_canceller_that_cannot_load_hands_the_microphone_through_and_says_so_once(monkeypatch, caplog):
    monkeypatch.setitem(sys.modules, "livekit", None)  # the optional wheel is not installed
    stage = EchoCancel(EchoCancelSettings(method="webrtc"), reference=ReferenceBuffer(RATE))
    chunk = AudioChunk((np.ones(CHUNK, dtype=np.int16) * 100).tobytes(), RATE, 1, 2, 1.0)

    with caplog.at_level(logging.WARNING, logger="magoo.echo"):
        outs = [stage.process(chunk) for _ in range(5)]

    assert all(out is chunk for out in outs)
    assert not stage.active
    lines = [r.getMessage() for r in caplog.records if r.name == "magoo.echo"]
    assert len(lines) == 1 and "muted while speaking" in lines[0] and "magoo[echo-cancel]" in lines[0]


def test_mute_auto_mutes_only_while_echo_cancellation_is_not_running(monkeypatch):
    from magoo_core.speaker import Speaker

    def speaker(**engine):
        return Speaker(backends=None, settings=EngineSettings(**engine), emit=None, on_unmute=lambda: None)

    on = speaker(echo_cancel=EchoCancelSettings(method="speex"))
    on.mute()
    assert not on.muted  # open: the canceller runs (or starts with the next chunk)
    on.echo._fail("gone")
    on.mute()
    assert on.muted  # its canceller failed: half duplex again
    off = speaker()
    off.mute()
    assert off.muted
    forced = speaker(echo_cancel=EchoCancelSettings(method="speex"), mute=True)
    forced.mute()
    assert forced.muted
    open_ = speaker(mute=False)
    open_.mute()
    assert not open_.muted


# ---- the real echo path ----------------------------------------------------------------------


def _pactl(*args: str) -> str:
    return subprocess.run(["pactl", *args], check=True, capture_output=True, text=True, timeout=10).stdout.strip()


class MicReader:
    """``parec`` of the virtual microphone as a capture source would hand it over: 80 ms chunks
    stamped with their arrival time, through the echo-cancellation stage, on a thread."""

    def __init__(self, stage: EchoCancel) -> None:
        self.stage = stage
        self.raw: list[np.ndarray] = []
        self.cleaned: list[np.ndarray] = []
        self._proc = subprocess.Popen(
            ["parec", "--raw", "--device=virtmic", "--format=s16le", f"--rate={RATE}", "--channels=1", "--latency-msec=20"],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=os.environ.copy(),
        )
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        while data := self._proc.stdout.read(CHUNK * 2):
            chunk = AudioChunk(data, RATE, 1, 2, time.monotonic())
            self.raw.append(np.frombuffer(data, dtype="<i2"))
            self.cleaned.append(np.frombuffer(self.stage.process(chunk).pcm, dtype="<i2"))

    def mark(self) -> tuple[int, int]:
        return sum(map(len, self.raw)), sum(map(len, self.cleaned))

    def close(self) -> None:
        self._proc.terminate()
        self._proc.wait(timeout=5)
        self._thread.join(timeout=5)


def _play(audio, far: np.ndarray, name: str) -> None:
    """Play ``far`` to the virtual speaker with mpv (the player magoo-mpv drives), to the end."""
    path = audio.audio_dir / f"{name}.wav"
    from magoo_core.audio import write_wav
    from magoo_core.types import AudioFormat

    write_wav(path, far.astype(np.int16).tobytes(), AudioFormat(RATE))
    subprocess.run(["mpv", "--no-config", "--really-quiet", "--ao=pulse", "--audio-device=pulse/speaker", str(path)],
                   check=True, timeout=60, env=os.environ.copy())


# Real time: each reply plays for its length through PulseAudio (about 25 s in all).
@pytest.mark.timeout(120)
def test_on_the_real_echo_path_the_echo_is_cancelled_and_a_new_latency_is_followed(fresh_virtual_audio):
    audio = fresh_virtual_audio
    loop = _pactl("load-module", "module-loopback", "source=speaker.monitor", "sink=micfeed", "latency_msec=60")
    stage = EchoCancel(EchoCancelSettings(method="speex", reference="speaker.monitor"))
    mic = MicReader(stage)
    try:
        _play(audio, speech(8, seed=7), "first")  # mpv started for this reply, and ended with it
        first_delay = stage.status()["delay_ms"]
        raw0, clean0 = mic.mark()
        _pactl("unload-module", loop)  # the echo path changes: 150 ms more latency
        loop = _pactl("load-module", "module-loopback", "source=speaker.monitor", "sink=micfeed", "latency_msec=200")
        _play(audio, speech(12, seed=8), "second")  # a new mpv process
        raw1, clean1 = mic.mark()
        second_delay = stage.status()["delay_ms"]
    finally:
        mic.close()
        stage.close()
        _pactl("unload-module", loop)

    assert stage.problem == "closed"
    raw = np.concatenate(mic.raw).astype(np.float64)
    cleaned = np.concatenate(mic.cleaned).astype(np.float64)
    assert first_delay is not None and second_delay is not None
    assert second_delay - first_delay > 80, (first_delay, second_delay)  # re-aligned to the longer path
    # the second reply's last 4 s: measured twice (2 s) and converged on the new delay (3-4 s) before
    late = slice(clean1 - 5 * RATE, clean1 - RATE)
    echo = np.sum(raw[raw1 - 5 * RATE : raw1 - RATE] ** 2)
    assert 10 * np.log10(echo / (np.sum(cleaned[late] ** 2) + 1e-9)) > 15, stage.status()
