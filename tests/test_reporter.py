"""The end of ``magoo run``'s story: why a run had no turn, and what stopped a run that exits 1."""

from __future__ import annotations

import asyncio
import io
import re
import shutil
from pathlib import Path
from typing import ClassVar

from magoo_core import AudioFormat, Backend, BackendConfig, BackendError, hookimpl
from magoo_core.engine import Engine
from magoo_core.reporter import ConsoleReporter
from magoo_core.testing import build_plugins, make_profile
from magoo_core.testing.virtual_audio import no_sound_environment

from probe import SoundlessPlayer

EXAMPLES = Path(__file__).parent.parent / "examples"


def scripted_source(*parts: tuple[float, float]) -> dict:
    """A file-like source (read in lock-step) of (seconds, 660 Hz amplitude; 0 = quiet) parts."""
    segments = [{"seconds": s} if not a else {"seconds": s, "tone": 660.0, "amplitude": a} for s, a in parts]
    return {"backend": "scripted", "realtime": False, "segments": segments}


async def story(overrides: dict, *plugins: object, turns: int | None = None) -> tuple[list[str], int]:
    """Run the engine with the console reporter; its lines without time stamps, and the exit code."""
    manager = build_plugins(*plugins)
    engine = Engine(make_profile(overrides, manager), manager, max_turns=turns)
    out = io.StringIO()
    manager.pm.register(ConsoleReporter(out, engine), name="story")
    result = await asyncio.wait_for(engine.run(), 30)
    return [line.split("] ", 1)[1] for line in out.getvalue().splitlines()], result.exit_code


class QuietDetector(Backend):
    """A wake detector that never fires and has no scores to tell (like one written before them)."""

    name: ClassVar[str] = "quiet"
    input_format = AudioFormat(16000)
    frame_samples = 1280

    class Config(BackendConfig):
        pass

    def process(self, chunk):
        return None

    def reset(self):
        pass


class GoneSource(Backend):
    """A microphone that is gone for good: its stream fails and retrying cannot help."""

    name: ClassVar[str] = "gone"

    class Config(BackendConfig):
        pass

    async def stream(self):
        raise BackendError("the device was removed: plug it in and start magoo again", retryable=False)
        yield  # pragma: no cover - never reached


class SpeechlessTTS(Backend):
    """A TTS that fails before it gives any audio."""

    name: ClassVar[str] = "speechless"

    class Config(BackendConfig):
        pass

    async def synthesize(self, text):
        raise BackendError("the voice model is missing")
        yield  # pragma: no cover - never reached


class Backends:
    @staticmethod
    @hookimpl
    def magoo_register_wake_detectors(register):
        register(QuietDetector)

    @staticmethod
    @hookimpl
    def magoo_register_players(register):
        register(SoundlessPlayer)

    @staticmethod
    @hookimpl
    def magoo_register_audio_sources(register):
        register(GoneSource)

    @staticmethod
    @hookimpl
    def magoo_register_tts(register):
        register(SpeechlessTTS)


# ---- a run with no turn ---------------------------------------------------------------------------


async def test_a_run_with_no_turn_tells_how_near_each_wake_word_came():
    # a tone at 0.15 amplitude (RMS 0.106) against a level of 0.2: 0.53 of the threshold
    source = scripted_source((1.0, 0), (0.4, 0.15), (1.0, 0))
    lines, code = await story({"audio_source": source, "wake": {"backend": "scripted", "level": 0.2, "threshold": 0.6}})
    assert code == 0
    peak, hint, end = lines[-3:]
    assert re.fullmatch(r"no wake word detected: hey_magoo peaked at 0\.32 \(threshold 0\.60\) at 1\.[12] s of audio", peak)
    assert hint == "hey_magoo came near: say it closer to the microphone, or lower its threshold"
    assert end == "stopping after 0 turns, 0 errors"


async def test_when_no_wake_word_came_near_the_story_says_to_check_the_microphone():
    lines, _ = await story({"audio_source": scripted_source((2.0, 0)), "wake": {"backend": "scripted", "level": 0.2}})
    assert lines[-3:] == [
        "no wake word detected: hey_magoo peaked at 0.00 (threshold 0.50) at 0.1 s of audio",
        "no wake word came near its threshold: check the microphone's level (`input` in the log's status line,"
        " `input_level` in status.json) and that you say one of [wake] scripted's models",
        "stopping after 0 turns, 0 errors",
    ]


async def test_a_detector_without_scores_is_told_as_one_that_reports_none():
    lines, _ = await story({"audio_source": scripted_source((1.0, 0)), "wake": {"backend": "quiet"}}, Backends)
    assert lines[-2].startswith("no wake word detected; [wake] quiet reports no scores, so how near one came is unknown:")
    assert lines[-1] == "stopping after 0 turns, 0 errors"


async def test_a_run_with_turns_or_without_a_wake_word_tells_no_scores():
    for overrides in ({}, {"wake": None}):
        lines, code = await story(overrides, turns=1)
        assert code == 0 and lines[-1] == "stopping after 1 turn, 0 errors", lines
        assert not any("wake word detected" in line for line in lines)


# ---- a run that exits 1 ---------------------------------------------------------------------------


async def test_a_run_that_cannot_start_says_why_it_stopped_instead_of_counting_no_errors():
    lines, code = await story({"player": {"backend": "soundless"}}, Backends, turns=1)
    assert code == 1
    assert lines == [
        "stopped after 0 turns: could not start [player] soundless: cannot open the audio output: check [player] audio_device"
    ]


async def test_a_run_stopped_by_a_failure_counts_it_and_says_what_it_was():
    lines, code = await story({"audio_source": {"backend": "gone"}}, Backends)
    assert code == 1
    assert lines[-1] == (
        "stopped after 0 turns, 1 error: [audio_source] gone: the device was removed: plug it in and start magoo again"
    )
    assert not any("0 errors" in line or "wake word detected" in line for line in lines), "it never listened"


def test_magoo_run_that_exits_1_prints_what_stopped_it_and_never_0_errors(magoo, tmp_path):
    """examples/test.toml with mpv as its player (and no backup) on a machine with no sound output."""
    profile = tmp_path / "test.toml"
    text = (EXAMPLES / "test.toml").read_text()
    profile.write_text(text.replace('[player]\nbackend = "wav"\npath = "out/reply-{n}.wav"', '[player]\nbackend = "mpv"'))
    assert shutil.which("mpv") and 'backend = "mpv"' in profile.read_text()
    result = magoo("run", "--profile", profile, env=no_sound_environment(tmp_path), cwd=tmp_path)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "0 errors" not in result.stdout
    lines = [re.sub(r"^\[\s*[\d.]+s\] ", "", line) for line in result.stdout.splitlines()]
    assert lines[-1].startswith("stopped after 0 turns: could not start [player] mpv: mpv cannot open the audio output"), lines


async def test_a_tts_that_fails_before_any_sound_tells_no_sound_not_a_bogus_duration():
    lines, _ = await story({"tts": {"backend": "speechless"}}, Backends, turns=1)
    assert "turn 1: no sound was played" in lines
    assert not [line for line in lines if "sound interrupted after" in line or "sound ended after" in line]
