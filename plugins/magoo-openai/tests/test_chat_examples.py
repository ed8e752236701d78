"""examples/llm.toml uses ``[responder] openai`` the way docs/llm.md says, and its responder really runs."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from magoo_core import Outcome
from magoo_core.plugins import create_plugin_manager
from magoo_core.roles import Role
from magoo_core.testing import run_profile
import magoo_openai
from magoo_openai import ChatResponder
from magoo_openai.loopback import LoopbackOpenAIServer

from chat_helpers import KEY, VARIABLE

ROOT = Path(__file__).resolve().parents[3]
LLM = ROOT / "examples" / "llm.toml"


def profile() -> dict:
    return tomllib.loads(LLM.read_text())


def test_the_responder_section_is_valid_and_takes_its_key_from_the_environment():
    section = {k: v for k, v in profile()["responder"].items() if k != "backend"}
    assert section.pop("api_key") == {"env": "OPENAI_API_KEY"}
    config = ChatResponder.Config(**section)
    assert config.tools == ["time", "say_nothing"] and config.base_url == "https://api.openai.com/v1"
    assert [profile()[role]["backend"] for role in ("wake", "stt", "tts", "player")] == ["openwakeword", "openai", "espeak", "mpv"]
    assert profile()["actuators"][0]["backend"] == "servo"


async def test_its_responder_answers_a_turn_through_the_loopback(tmp_path):
    section = {**profile()["responder"], "api_key": {"env": VARIABLE}}
    async with LoopbackOpenAIServer(api_key=KEY, replies=["Hello, I am Jarvis."]) as server:
        section["base_url"] = server.base_url
        record = await run_profile({"responder": section}, plugins=[magoo_openai], base_dir=tmp_path,
                                   environ={VARIABLE: KEY})
    assert record.failures == [] and record.timelines[0].outcome is Outcome.OK
    assert record.replies == ["Hello, I am Jarvis."]
    (body,) = server.chat_requests()
    assert body["messages"][0]["content"].startswith("You are Jarvis")
    assert (tmp_path / "out" / "llm-memory.json").is_file()  # memory_file, relative to the profile's folder


def _has_openai_stt() -> bool:
    return "openai" in create_plugin_manager(environ={}).names(Role.STT)


@pytest.mark.skipif(not _has_openai_stt(), reason="[stt] openai is on branch audio")
def test_magoo_check_finds_every_backend_of_the_profile(tmp_path):
    magoo = Path(sys.executable).parent / "magoo"
    done = subprocess.run([str(magoo), "check", str(LLM)], capture_output=True, text=True, timeout=60,
                          env={"PATH": "/usr/bin:/bin", "OPENAI_API_KEY": KEY}, cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert KEY not in done.stdout + done.stderr
