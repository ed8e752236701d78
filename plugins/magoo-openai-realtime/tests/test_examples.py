"""The example profiles use this backend the way the README says, and they really run."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from magoo_core import Outcome
from magoo_openai_realtime import RealtimeSpeechToText

from realtime_helpers import CLIP, REPLY, run, stt

ROOT = Path(__file__).resolve().parents[3]
EXAMPLES = ROOT / "examples"
HEY_JARVIS = ROOT / "tests" / "data" / "wake" / "wyoming-openwakeword" / "hey_jarvis.wav"


def section(profile: str, name: str) -> dict:
    return tomllib.loads((EXAMPLES / profile).read_text())[name]


@pytest.mark.parametrize("profile", ["pi.toml", "pi-wake.toml"])
def test_the_pi_profiles_configure_server_vad_like_the_original_assistant(profile):
    options = {k: v for k, v in section(profile, "stt").items() if k != "backend"}
    config = RealtimeSpeechToText.Config(**{**options, "api_key": "sk-x"})
    assert (config.mode, config.turn_detection, config.threshold, config.silence_duration_ms) == (
        "conversation", "server_vad", 0.5, 500,
    )
    assert options["api_key"] == {"env": "OPENAI_API_KEY"}  # the key comes from the environment


def test_pi_toml_streams_without_a_wake_word():
    assert "wake" not in tomllib.loads((EXAMPLES / "pi.toml").read_text())


async def test_pi_wake_toml_wakes_on_hey_jarvis_and_asks_openai(server):
    pytest.importorskip("magoo_openwakeword")
    import magoo_openwakeword

    stt_section = {**section("pi-wake.toml", "stt"), **stt(server)}
    record = await run(
        {
            "engine": {**section("pi-wake.toml", "engine"), "mute_pre": 0.0, "mute_post": 0.0},
            "audio_source": {"backend": "scripted", "realtime": False, "segments": [
                {"seconds": 0.5}, {"file": str(HEY_JARVIS)}, {"seconds": 0.2}, {"file": str(CLIP)}, {"seconds": 1.5},
            ]},
            "wake": section("pi-wake.toml", "wake"),
            "stt": stt_section,
            "responder": None,
        },
        plugins=[magoo_openwakeword],
    )
    assert record.failures == []
    (wake,) = record.of("wake")
    assert wake["wake"].label == "Jarvis"
    assert record.transcripts == ["what time is it"]
    assert record.replies == [REPLY]
    assert record.timelines[0].outcome is Outcome.OK
    (turn,) = server.turns
    assert len(turn.audio) / 48_000 > 1.29  # the command, after the wake word's tail from the pre-roll
