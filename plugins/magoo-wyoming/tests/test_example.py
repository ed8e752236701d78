"""examples/wyoming-services.toml loads with the installed plugins, and runs a turn when its
servers are the scripted loopback (the Pi's devices replaced by a recording and memory)."""

from __future__ import annotations

import tomllib
from pathlib import Path

import magoo_wyoming
from magoo_core.plugins import create_plugin_manager
from magoo_core.profile import load_profile
from magoo_core.testing import run_profile

from clients_helpers import QUESTION
from wyoming_servers import Script, ScriptedServer

EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "wyoming-services.toml"


def test_the_example_loads_with_its_backups():
    profile = load_profile(EXAMPLE, create_plugin_manager(entry_points=True), environ={})
    assert (profile.wake.backend, profile.stt.backend, profile.tts.backend) == ("wyoming", "wyoming", "wyoming")
    assert (profile.stt.backup.backend, profile.tts.backup.backend) == ("pocketsphinx", "espeak")


async def test_the_examples_wyoming_sections_make_a_turn_against_a_server():
    data = tomllib.loads(EXAMPLE.read_text())
    async with ScriptedServer(Script(transcripts=["what time is it"], wake_name="hey_jarvis")) as server:
        # the backups (pocketsphinx, espeak) are the example's; this run is about the Wyoming sections
        overrides = {role: {**{k: v for k, v in data[role].items() if k != "backup"}, "uri": server.uri} for role in ("wake", "stt", "tts")}
        overrides["tts"].update(voice="robot", sample_rate=16000)
        overrides["audio_source"] = {"backend": "scripted", "realtime": True, "segments": [
            {"seconds": 0.8}, {"seconds": 0.4, "tone": 500.0, "amplitude": 0.5}, {"seconds": 0.2}, {"file": str(QUESTION)}, {"seconds": 1.5}]}
        record = await run_profile(overrides, plugins=[magoo_wyoming], turns=1, timeout=60)
    assert record.failures == [] and record.transcripts == ["what time is it"]
    assert record.replies and record.audio
