"""How near each wake word came: the scoreboard, the engine feeding it, and the fakes' scores."""

from __future__ import annotations

import logging
import math
import threading
from typing import ClassVar

import pytest

from magoo_core import AudioChunk, AudioFormat, Backend, BackendConfig, hookimpl
from magoo_core.audio import silence, tone
from magoo_core.default_plugins.fakes import ScriptedWakeDetector
from magoo_core.wake_scores import LOG_EVERY, Peak, WakeScoreboard

from probe import run_engine

FRAME = AudioChunk(bytes(2 * 1280), 16000)  # 80 ms


class Detector:
    """A detector's scoring surface: the scores of its last frame, set by the test."""

    def __init__(self, thresholds: dict[str, float] | None = None) -> None:
        self.scores: dict[str, float] = {}
        if thresholds is not None:
            self.thresholds = thresholds


def feed(board: WakeScoreboard, detector: object, scores: list[dict[str, float]]) -> None:
    for frame_scores in scores:
        detector.scores = frame_scores
        board.update(detector, FRAME)


# ---- the scoreboard ----------------------------------------------------------------------------


def test_each_models_highest_score_is_kept_with_its_threshold_and_the_audio_time_it_came_at():
    board, detector = WakeScoreboard(), Detector({"alexa": 0.5, "hey_jarvis": 0.6})
    feed(board, detector, [{"alexa": 0.1, "hey_jarvis": 0.0}, {"alexa": 0.31, "hey_jarvis": 0.2}, {"alexa": 0.3, "hey_jarvis": 0.05}])
    assert board.frames == 3 and board.reports_scores is True
    assert board.peaks() == [Peak("alexa", 0.31, 0.5, 0.16), Peak("hey_jarvis", 0.2, 0.6, 0.16)]
    assert [peak.near for peak in board.peaks()] == [True, False], "near: at least half the threshold"
    assert str(board.peaks()[0]) == "alexa peaked at 0.31 (threshold 0.50) at 0.2 s of audio"
    assert str(Peak("hey_jarvis", 0.9972, 0.999, 2.2)) == "hey_jarvis peaked at 0.997 (threshold 0.999) at 2.2 s of audio"
    assert str(Peak("hey_jarvis", 0.999, 0.999, 2.2)) == "hey_jarvis peaked at 1.00 (threshold 1.00) at 2.2 s of audio"


def test_a_model_without_a_threshold_comes_near_at_a_tenth():
    board = WakeScoreboard()
    feed(board, Detector(), [{"mine": 0.12}])
    (peak,) = board.peaks()
    assert peak.threshold is None and peak.near
    assert str(peak) == "mine peaked at 0.12 (no threshold given) at 0.1 s of audio"
    assert not Peak("mine", 0.09, None, 1.0).near


def test_a_detector_without_scores_or_with_none_reports_no_scores():
    class Plain:
        pass

    class Porcupine:
        scores = None

    for detector in (Plain(), Porcupine()):
        board = WakeScoreboard()
        assert board.reports_scores is None, "nothing known before the first frame"
        board.update(detector, FRAME)
        assert board.reports_scores is False and board.frames == 1 and board.peaks() == []


def test_scores_that_raise_are_logged_once_and_never_stop_the_scoring(caplog):
    class Broken:
        @property
        def scores(self):
            raise KeyError("oops")

    board, detector = WakeScoreboard(), Broken()
    for _ in range(3):
        board.update(detector, FRAME)
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert warnings == ["Broken: reading its wake scores raised; they are not shown"]
    assert board.frames == 3 and board.reports_scores is False


def test_under_debug_a_near_miss_is_logged_once_per_window_of_audio(caplog):
    caplog.set_level(logging.DEBUG, logger="magoo.wake")
    board, detector = WakeScoreboard(), Detector({"alexa": 0.5, "okay_nabu": 0.5})
    per_window = math.ceil(LOG_EVERY / FRAME.duration)  # 63 frames: 5.04 s
    quiet = {"alexa": 0.01, "okay_nabu": 0.0}
    feed(board, detector, [quiet] * 10 + [{"alexa": 0.3, "okay_nabu": 0.2}, {"alexa": 0.42, "okay_nabu": 0.24}])
    feed(board, detector, [quiet] * (per_window - 12))  # the first window ends
    feed(board, detector, [quiet] * per_window)  # a window with nothing near: no line
    feed(board, detector, [{"alexa": 0.1, "okay_nabu": 0.26}] + [quiet] * (per_window - 1))
    lines = [r.getMessage() for r in caplog.records if r.name == "magoo.wake"]
    assert lines == [
        "wake scores, last 5.0 s of audio: alexa peaked at 0.42 (threshold 0.50) at 1.0 s of audio",
        "wake scores, last 5.0 s of audio: okay_nabu peaked at 0.26 (threshold 0.50) at 10.2 s of audio",
    ]
    alexa = board.peaks()[0]
    assert (alexa.score, alexa.at) == (0.42, pytest.approx(0.96)), "the peaks since the start are not reset by a window"


def test_at_info_level_the_scores_add_nothing_to_the_log(caplog):
    caplog.set_level(logging.INFO, logger="magoo.wake")
    board = WakeScoreboard()
    feed(board, Detector({"alexa": 0.5}), [{"alexa": 0.45}] * round(3 * LOG_EVERY / FRAME.duration))
    assert not caplog.records


# ---- the scripted fake ---------------------------------------------------------------------------


def test_the_scripted_detector_scores_a_frame_by_its_level_and_a_detection_by_its_score():
    detector = ScriptedWakeDetector(ScriptedWakeDetector.Config(level=0.2, threshold=0.5, score=0.9))
    assert detector.scores == {} and detector.thresholds == {"hey_magoo": 0.5}
    fmt = AudioFormat(16000)
    assert detector.process(silence(fmt, 0.08)) is None and detector.scores == {"hey_magoo": 0.0}
    quiet_tone = tone(660.0, 0.08, 16000, amplitude=0.2)  # RMS 0.141: 0.71 of the level
    assert detector.process(quiet_tone) is None
    assert abs(detector.scores["hey_magoo"] - 0.5 * 0.2 / 2**0.5 / 0.2) < 0.01
    assert detector.process(tone(660.0, 0.08, 16000, amplitude=0.5)) is not None
    assert detector.scores == {"hey_magoo": 0.9}


# ---- the engine feeds it -------------------------------------------------------------------------


class ThreadNotingDetector(Backend):
    """Never fires; notes the thread its scores are read on."""

    name: ClassVar[str] = "thread-noting"
    input_format = AudioFormat(16000)
    frame_samples = 1280
    read_on: ClassVar[set[str]] = set()
    scored_on: ClassVar[set[str]] = set()

    class Config(BackendConfig):
        pass

    def process(self, chunk):
        type(self).scored_on.add(threading.current_thread().name)

    def reset(self):
        pass

    @property
    def scores(self):
        type(self).read_on.add(threading.current_thread().name)
        return {"noted": 0.2}

    @property
    def thresholds(self):
        return {"noted": 0.7}


class Detectors:
    @staticmethod
    @hookimpl
    def magoo_register_wake_detectors(register):
        register(ThreadNotingDetector)


async def test_the_engine_reads_the_scores_on_the_thread_that_scored_the_frame():
    ThreadNotingDetector.read_on, ThreadNotingDetector.scored_on = set(), set()
    live = {"backend": "scripted", "realtime": True, "segments": [{"seconds": 0.5}]}
    engine, _, result = await run_engine({"audio_source": live, "wake": {"backend": "thread-noting"}}, Detectors)
    assert result.fatal is None and result.timelines == []
    assert ThreadNotingDetector.read_on == ThreadNotingDetector.scored_on
    assert all(name.startswith("magoo-wake") for name in ThreadNotingDetector.read_on)
    assert engine.wake_scores.frames == 6 and engine.wake_scores.peaks() == [Peak("noted", 0.2, 0.7, 0.08)]


async def test_a_detection_keeps_its_score_among_the_peaks():
    engine, _, result = await run_engine({}, turns=1)
    assert len(result.timelines) == 1
    assert [(p.label, p.score) for p in engine.wake_scores.peaks()] == [("hey_magoo", 0.9)]
