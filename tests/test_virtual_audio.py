"""The virtual-audio kit itself, checked with the PulseAudio command-line tools (no PortAudio)."""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Callable

import numpy as np
import pytest

from magoo_core.audio import samples, tone
from magoo_core.testing.signals import best_match, dominant_frequency
from magoo_core.testing.virtual_audio import VirtualAudio

RATE = 16000


def pactl_json(*args: str):
    return json.loads(subprocess.run(["pactl", "-f", "json", *args], capture_output=True, check=True, timeout=10).stdout)


def sources() -> dict[str, str]:
    """Source name → state, straight from the server."""
    return {s["name"]: s["state"] for s in pactl_json("list", "sources")}


def wait_until(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.02)


def sine(frequency: float, seconds: float, amplitude: float = 0.3) -> np.ndarray:
    return samples(tone(frequency, seconds, RATE, amplitude)).reshape(-1)


def test_unavailable_reason_names_the_missing_tool_and_the_fix(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))
    reason = VirtualAudio.unavailable_reason()
    assert reason is not None
    assert "pactl" in reason and "./scripts/setup.sh" in reason and "pulseaudio-utils" in reason


def test_start_points_this_process_at_a_server_whose_default_source_is_virtmic(virtual_audio):
    assert os.environ["PULSE_SERVER"] == virtual_audio.env["PULSE_SERVER"]
    info = pactl_json("info")
    assert info["default_source_name"] == "virtmic"
    assert info["default_sink_name"] == "speaker"
    assert virtual_audio.default_source() == "virtmic"


def test_a_tone_played_into_the_mic_comes_out_of_virtmic(virtual_audio):
    played = sine(440.0, 1.0)
    with virtual_audio.record("virtmic") as recording:
        recording.wait_for_data()
        virtual_audio.play((played.tobytes(), RATE))
        after_play = len(recording.samples())
        wait_until(lambda: len(recording.samples()) >= after_play + RATE // 4)  # the tail has come through
    recorded = recording.samples()

    offset, correlation = best_match(recorded, played)
    assert correlation > 0.99
    assert dominant_frequency(recorded[offset : offset + len(played)], RATE) == pytest.approx(440.0, abs=5)


def test_played_wav_file_and_speaker_recording(virtual_audio, tmp_path):
    from magoo_core.audio import write_wav
    from magoo_core.types import AudioFormat

    played = sine(660.0, 0.5)
    wav = write_wav(tmp_path / "tone.wav", played.tobytes(), AudioFormat(RATE))
    with virtual_audio.record() as speaker:  # speaker.monitor: a paplay to the default sink lands here
        speaker.wait_for_data()
        subprocess.run(["paplay", str(wav)], check=True, timeout=10)
        after_play = len(speaker.samples())
        wait_until(lambda: len(speaker.samples()) >= after_play + RATE // 4)
    _, correlation = best_match(speaker.samples(), played)
    assert correlation > 0.95


def test_kill_capture_streams_kills_only_that_process_stream(virtual_audio):
    with virtual_audio.record("virtmic") as recording:
        recording.wait_for_data()
        assert virtual_audio.my_source_outputs() == []  # this process has no capture stream
        streams = virtual_audio.my_source_outputs(recording.pid)
        assert len(streams) == 1
        assert virtual_audio.kill_capture_streams(recording.pid) == streams
        wait_until(lambda: virtual_audio.my_source_outputs(recording.pid) == [])


def test_stall_suspends_and_resumes_the_mic(fresh_virtual_audio):
    fresh_virtual_audio.stall(True)
    assert sources()["virtmic"] == "SUSPENDED"
    assert fresh_virtual_audio.source_state() == "SUSPENDED"
    fresh_virtual_audio.stall(False)
    assert sources()["virtmic"] != "SUSPENDED"


def test_unplug_removes_virtmic_and_replug_restores_it_as_default(fresh_virtual_audio):
    fresh_virtual_audio.unplug()
    assert "virtmic" not in sources()
    assert pactl_json("info")["default_source_name"] != "virtmic"

    fresh_virtual_audio.replug()
    assert "virtmic" in sources()
    assert pactl_json("info")["default_source_name"] == "virtmic"


def test_killed_server_comes_back_with_restart_server(fresh_virtual_audio):
    fresh_virtual_audio.kill_server()
    dead = subprocess.run(["pactl", "info"], capture_output=True, timeout=10)
    assert dead.returncode != 0

    fresh_virtual_audio.restart_server()
    assert pactl_json("info")["default_source_name"] == "virtmic"
    with fresh_virtual_audio.record("virtmic") as recording:
        recording.wait_for_data()


def test_a_capture_stream_on_a_new_server_gets_data_at_once(fresh_virtual_audio):
    # A new server's null sinks start with a 2 s block; pulse-up.sh restarts their clocks once the
    # keepalives play, or a stream opened now would wait up to 2 s for its first data.
    with fresh_virtual_audio.record("virtmic") as recording:
        recording.wait_for_data(timeout=1.0)


def test_a_folder_too_deep_for_the_sockets_is_refused_before_starting(tmp_path):
    deep = tmp_path / ("d" * 100)
    assert not VirtualAudio.fits(deep) and VirtualAudio.fits(tmp_path)
    with pytest.raises(RuntimeError, match=r"longer than the 107 bytes a unix socket path can have.*--basetemp"):
        VirtualAudio.start(deep)
    assert not deep.exists()


def test_stop_restores_the_environment(virtual_audio, tmp_path):
    before = {k: os.environ.get(k) for k in virtual_audio.env}
    second = VirtualAudio.start(tmp_path / "second")
    try:
        assert os.environ["PULSE_SERVER"] == f"unix:{tmp_path / 'second' / 'native'}"
    finally:
        second.stop()
    assert {k: os.environ.get(k) for k in virtual_audio.env} == before
    assert pactl_json("info")["default_source_name"] == "virtmic"  # the session server is untouched


def test_a_dropout_sinks_one_piece_not_the_match_and_another_sound_does_not_match():
    import numpy as np

    from magoo_core.testing.signals import match_in_pieces

    rng = np.random.default_rng(7)
    played = rng.normal(0, 3000, 16000 * 2)
    with_gap = np.concatenate([played[:12000], np.zeros(800), played[12000:]])  # 50 ms the server lost
    assert best_match(with_gap, played)[1] < 0.8 < match_in_pieces(with_gap, played)
    assert match_in_pieces(rng.normal(0, 3000, 16000 * 2), played) < 0.1
    assert match_in_pieces(np.zeros(16000 * 2), played) == 0.0
