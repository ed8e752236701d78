"""Saved clips (``[engine] save_clips``): the audio around every wake word and near miss, rotated,
written off the loop, and a failing disk that never stops the run."""

from __future__ import annotations

import logging
import re
import time
import wave
from pathlib import Path

import numpy as np
import pytest

from magoo_core import AudioChunk, WakeEvent
from magoo_core.clips import CLIP_NAME, NEAR_AFTER, NEAR_BEFORE, Clip, ClipWriter, NearMisses, clip_name
from magoo_core.testing import build_plugins, make_profile

from probe import LOOPING_SOURCE, run_engine

DATA = Path(__file__).parent / "data"
NAME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d-\d\d-\d\d_(?P<label>.+)_(?P<score>\d\.\d\d)(?P<near>_near)?\.wav$")


def wav_of(path: Path) -> tuple[int, int, np.ndarray]:
    with wave.open(str(path), "rb") as wav:
        return wav.getframerate(), wav.getnchannels(), np.frombuffer(wav.readframes(wav.getnframes()), "<i2")


def clips_in(folder: Path) -> list[Path]:
    return sorted(folder.glob("*.wav"))


def rms(samples: np.ndarray) -> float:
    return float(np.sqrt(np.mean((samples.astype(np.float64) / 32768) ** 2))) if len(samples) else 0.0


# ---- names and the writer ---------------------------------------------------------------------


def test_a_clip_name_sorts_by_time_and_says_the_word_and_the_score():
    when = time.mktime((2026, 12, 7, 8, 1, 2, 0, 0, -1))
    assert clip_name(when, "hey_jarvis", 0.931) == "2026-12-07T08-01-02_hey_jarvis_0.93.wav"
    assert clip_name(when, "hey jarvis/../x", 0.31, near=True) == "2026-12-07T08-01-02_hey_jarvis_.._x_0.31_near.wav".replace("_.._", "_")
    assert clip_name(when, "alexa", 0.5, repeat=2) == "2026-12-07T08-01-02-2_alexa_0.50.wav"
    assert all(CLIP_NAME.match(clip_name(when, w, 0.5)) for w in ("a", "hey_jarvis", "über"))
    assert sorted([clip_name(when + 1, "b", 0.5), clip_name(when, "z", 0.5)])[0].endswith("_z_0.50.wav")


def clip(seconds: float, when: float, label: str = "hey_jarvis", score: float = 0.9) -> Clip:
    return Clip((AudioChunk(bytes(int(2 * 16000 * seconds)), 16000),), when, label, score)


def test_the_writer_keeps_the_newest_clips_within_its_count_and_size_and_leaves_other_files_alone(tmp_path):
    mine = tmp_path / "notes.txt"
    mine.write_text("my own file")
    writer = ClipWriter(tmp_path, max_bytes=10_000_000, max_files=3)
    start = time.time() - 100
    for n in range(5):
        assert writer.submit(clip(0.1, start + n, label=f"w{n}"))
    writer.close()
    assert [p.name.split("_")[1] for p in clips_in(tmp_path)] == ["w2", "w3", "w4"], "the oldest went first"
    assert mine.read_text() == "my own file" and writer.written == 5

    small = ClipWriter(tmp_path, max_bytes=int(2 * 16000 * 0.25), max_files=100)  # room for two 0.1 s clips
    small.submit(clip(0.1, start + 10, label="w5"))
    small.close()
    assert [p.name.split("_")[1] for p in clips_in(tmp_path)] == ["w4", "w5"]
    rate, channels, samples = wav_of(clips_in(tmp_path)[-1])
    assert (rate, channels, len(samples)) == (16000, 1, 1600)


def test_two_clips_in_the_same_second_both_stay(tmp_path):
    writer = ClipWriter(tmp_path, max_bytes=10**9, max_files=10)
    when = time.time()
    writer.submit(clip(0.1, when))
    writer.submit(clip(0.1, when))
    writer.close()
    names = [p.name for p in clips_in(tmp_path)]
    assert len(names) == 2 and any(re.search(r"T\d\d-\d\d-\d\d-2_hey_jarvis", name) for name in names), names


def test_a_full_queue_drops_clips_instead_of_waiting(tmp_path, monkeypatch):
    writer = ClipWriter(tmp_path, max_bytes=10**9, max_files=100)
    blocker = __import__("threading").Event()
    monkeypatch.setattr(writer, "_write", lambda clip: blocker.wait(10))  # a disk that hangs
    results = [writer.submit(clip(0.01, time.time())) for _ in range(40)]
    assert results.count(False) >= 40 - 17 and writer.dropped == results.count(False)
    blocker.set()
    writer.close()


def test_an_unwritable_folder_is_said_once_a_minute_at_most(tmp_path, caplog):
    blocked = tmp_path / "a-file"
    blocked.write_text("")
    writer = ClipWriter(blocked / "clips", max_bytes=10**9, max_files=10)  # its parent is a file: ENOTDIR
    with caplog.at_level(logging.WARNING, "magoo.clips"):
        for _ in range(5):
            writer.submit(clip(0.1, time.time()))
        writer.close()
    lines = [r.getMessage() for r in caplog.records if r.name == "magoo.clips"]
    assert len(lines) == 1 and "cannot write saved clips in" in lines[0] and "goes on" in lines[0], lines


def test_a_full_disk_is_said_with_its_fix_then_reminded_once_a_minute(tmp_path, caplog, monkeypatch):
    import errno

    import magoo_core.clips as clips

    def full(path, data, base=None):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(clips, "write_atomically", full)
    writer = ClipWriter(tmp_path, max_bytes=10**9, max_files=10)
    minutes = iter([0.0, 20.0, 40.0, 61.0, 70.0])  # when each write fails, on the writer's clock
    writer._failures._clock = lambda: next(minutes)
    with caplog.at_level(logging.WARNING, "magoo.clips"):
        for _ in range(5):
            writer.submit(clip(0.1, time.time()))
        writer.close()
    lines = [r.getMessage() for r in caplog.records if r.name == "magoo.clips"]
    assert len(lines) == 2, lines
    assert "No space left on device; the disk is full: free some space; magoo goes on and retries" in lines[0]
    assert lines[1].startswith("still cannot write saved clips in") and "(4 failures since the first)" in lines[1]


# ---- near misses ------------------------------------------------------------------------------


class Sink:
    def __init__(self) -> None:
        self.clips: list[Clip] = []

    def submit(self, clip: Clip) -> bool:
        self.clips.append(clip)
        return True


def frames(scores: list[float]) -> list[tuple[AudioChunk, dict[str, float]]]:
    out = []
    for n, score in enumerate(scores):
        pcm = np.full(1280, n, dtype="<i2").tobytes()  # each frame says its number
        out.append((AudioChunk(pcm, 16000, timestamp=time.monotonic()), {"jarvis": score}))
    return out


def test_a_near_miss_keeps_the_seconds_around_its_peak_once():
    sink = Sink()
    near = NearMisses(sink)
    scores = [0.0] * 40 + [0.3, 0.4, 0.45, 0.3] + [0.0] * 30 + [0.2] * 10  # peak at frame 42; 0.2 is not near (0.25)
    for frame, score in frames(scores):
        near.frame(frame, score, {"jarvis": 0.5}, fired=False)
    (saved,) = sink.clips
    assert saved.near and saved.label == "jarvis" and saved.score == 0.45
    numbers = [int(np.frombuffer(c.pcm, "<i2")[0]) for c in saved.chunks]
    per_second = 1 / 0.08
    assert numbers[-1] == 42 + round(NEAR_AFTER * per_second), "until NEAR_AFTER after the peak"
    assert numbers[0] == 42 - round(NEAR_BEFORE * per_second) + 1, "from NEAR_BEFORE before it"
    assert numbers == list(range(numbers[0], numbers[-1] + 1))


def test_a_stretch_that_ends_in_a_wake_is_no_near_miss_and_a_long_one_is_saved_once():
    sink = Sink()
    near = NearMisses(sink)
    for n, (frame, score) in enumerate(frames([0.3, 0.4, 0.6] + [0.0] * 20)):
        near.frame(frame, score, {"jarvis": 0.5}, fired=n == 2)
    assert sink.clips == []
    for frame, score in frames([0.3] * 100):  # near for 8 s: one clip, not one per second
        near.frame(frame, score, {"jarvis": 0.5}, fired=False)
    assert len(sink.clips) == 1


def test_muting_drops_a_stretch_in_progress_and_the_audio_before_it():
    sink = Sink()
    near = NearMisses(sink)
    for frame, score in frames([0.0] * 10 + [0.4] * 3):
        near.frame(frame, score, {"jarvis": 0.5}, fired=False)
    near.reset()  # the assistant spoke; unmuted now
    for frame, score in frames([0.0] * 30):
        near.frame(frame, score, {"jarvis": 0.5}, fired=False)
    assert sink.clips == []


# ---- in the engine ----------------------------------------------------------------------------


async def test_every_wake_word_keeps_its_preroll_and_command_and_a_near_miss_its_seconds(tmp_path):
    source = {
        "backend": "scripted",
        "realtime": False,
        "segments": [
            {"seconds": 2.5},
            {"seconds": 0.4, "tone": 660.0, "amplitude": 0.2},  # 0.7 of the wake level: a near miss
            {"seconds": 2.0},
            {"seconds": 0.4, "tone": 660.0, "amplitude": 0.5},  # the wake word
            {"seconds": 0.3},
            {"seconds": 1.0, "tone": 440.0, "amplitude": 0.3},  # the command
            {"seconds": 1.2},
        ],
    }
    overrides = {
        "engine": {"save_clips": "clips", "save_near_misses": True, "preroll": 0.5},
        "audio_source": source,
    }
    manager = build_plugins()
    profile = make_profile(overrides, manager, base_dir=tmp_path)
    assert profile.engine.save_clips == tmp_path / "clips", "relative to the profile's folder"
    engine, probe, result = await run_engine_with(profile, manager)
    assert [t.outcome.value for t in result.timelines] == ["ok"]
    found = {NAME.match(p.name).group("near") is not None: p for p in clips_in(tmp_path / "clips")}
    assert set(found) == {False, True}, [p.name for p in clips_in(tmp_path / "clips")]

    wake = NAME.match(found[False].name)
    assert (wake.group("label"), wake.group("score")) == ("hey_magoo", "0.90")
    rate, channels, samples = wav_of(found[False])
    seconds = len(samples) / rate
    assert 1.5 <= seconds <= 3.5, seconds  # the pre-roll, the wake word's tail and the command until its transcript
    loud = [rms(samples[i : i + 1600]) for i in range(0, len(samples) - 1600, 1600)]
    assert max(loud) > 0.15, "the command's tone (0.3 amplitude) is in it"

    miss = NAME.match(found[True].name)
    assert miss.group("label") == "hey_magoo" and 0.2 <= float(miss.group("score")) < 0.5
    rate, _, samples = wav_of(found[True])
    assert rate == 16000 and NEAR_BEFORE <= len(samples) / rate <= NEAR_BEFORE + NEAR_AFTER + 0.1
    assert max(rms(samples[i : i + 1600]) for i in range(0, len(samples) - 1600, 1600)) > 0.1, "the near tone is in it"


async def run_engine_with(profile, manager):
    from magoo_core.engine import Engine
    from probe import Probe

    engine = Engine(profile, manager)
    probe = Probe(engine)
    manager.pm.register(probe, name="probe")
    result = await engine.run()
    return engine, probe, result


async def test_without_save_clips_nothing_is_kept_and_a_broken_folder_never_stops_the_turns(tmp_path, caplog):
    engine, _, result = await run_engine({}, turns=1)
    assert engine.wake_worker.clips is None and result.timelines[0].outcome.value == "ok"

    (tmp_path / "file").write_text("")
    with caplog.at_level(logging.WARNING, "magoo.clips"):
        overrides = {"engine": {"save_clips": str(tmp_path / "file" / "clips")}, "audio_source": LOOPING_SOURCE}
        engine, _, result = await run_engine(overrides, turns=3)
    assert [t.outcome.value for t in result.timelines] == ["ok"] * 3
    said = [r.getMessage() for r in caplog.records if r.name == "magoo.clips"]
    assert len(said) == 1 and "Not a directory" in said[0], said


def test_save_clips_naming_a_file_is_a_profile_problem(tmp_path):
    from magoo_core.errors import ProfileError

    (tmp_path / "clips").write_text("")
    with pytest.raises(ProfileError, match="is a file: give a folder"):
        make_profile({"engine": {"save_clips": "clips"}}, build_plugins(), base_dir=tmp_path)


async def test_real_openwakeword_keeps_the_wake_word_and_the_command_of_a_recording(tmp_path):
    oww = pytest.importorskip("magoo_openwakeword")
    from magoo_core.audio import read_wav, write_wav
    from magoo_core.types import AudioFormat

    def pcm(relative: str, seconds: float | None = None) -> bytes:
        fmt, data = read_wav(DATA / relative)
        assert (fmt.sample_rate, fmt.channels) == (16000, 1)
        return data if seconds is None else data[: int(seconds * 16000) * 2]

    quiet = lambda seconds: bytes(int(seconds * 16000) * 2)  # noqa: E731
    recording = quiet(1.0) + pcm("wake/wyoming-openwakeword/hey_jarvis.wav") + quiet(0.2)
    recording += pcm("negatives/espeak_gpl3_speech_60s.wav", 2.5) + quiet(2.0)
    write_wav(tmp_path / "kitchen.wav", recording, AudioFormat(16000))
    overrides = {
        "engine": {"save_clips": "clips"},
        "audio_source": {"backend": "wav", "path": "kitchen.wav", "realtime": False},
        "wake": {"backend": "openwakeword", "models": ["hey_jarvis"]},
        "stt": {"backend": "scripted", "end_silence": 1.0},  # the wake word's own tail is no end of the command
    }
    manager = build_plugins(oww)
    np.random.seed(0)  # openWakeWord's feature buffer starts random
    _, _, result = await run_engine_with(make_profile(overrides, manager, base_dir=tmp_path), manager)
    assert len(result.timelines) == 1
    (saved,) = clips_in(tmp_path / "clips")
    name = NAME.match(saved.name)
    assert name.group("label") == "hey_jarvis" and float(name.group("score")) >= 0.5
    rate, channels, samples = wav_of(saved)
    assert (rate, channels) == (16000, 1) and 2.5 < len(samples) / rate < 6.0
    assert samples.tobytes() in recording, "one stretch of the recording, in order"
    start = recording.index(samples.tobytes()) / 32000
    assert start < 1.0 + 1.6, "it starts before the wake word ends"
    assert (start + len(samples) / rate) > 1.0 + 1.6 + 0.2 + 2.0, "and holds the command"


async def test_a_live_source_scores_on_the_wake_thread_and_its_clips_are_saved_all_the_same(tmp_path):
    # Waits ~5 s of real time: only a real-time source is live, and only a live source is scored
    # on the magoo-wake thread, from where near misses are handed to the writer.
    source = {
        "backend": "scripted",
        "realtime": True,
        "segments": [
            {"seconds": 0.3},
            {"seconds": 0.4, "tone": 660.0, "amplitude": 0.2},  # a near miss
            {"seconds": 1.2},
            {"seconds": 0.4, "tone": 660.0, "amplitude": 0.5},  # the wake word
            {"seconds": 0.3},
            {"seconds": 1.0, "tone": 440.0, "amplitude": 0.3},
            {"seconds": 1.2},
        ],
    }
    overrides = {"engine": {"save_clips": "clips", "save_near_misses": True}, "audio_source": source}
    manager = build_plugins()
    engine, _, result = await run_engine_with(make_profile(overrides, manager, base_dir=tmp_path), manager)
    assert [t.outcome.value for t in result.timelines] == ["ok"] and engine.wake_worker._live
    names = [NAME.match(p.name) for p in clips_in(tmp_path / "clips")]
    assert sorted((m.group("label"), bool(m.group("near"))) for m in names) == [("hey_magoo", False), ("hey_magoo", True)]
