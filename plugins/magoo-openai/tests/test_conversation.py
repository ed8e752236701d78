"""A conversation through the whole plugin: ``[stt] openai`` → ``[responder] openai`` → ``[tts] openai``
in the real engine, every request made by the real ``openai`` SDK to one loopback server.

A recorded question after a real openWakeWord wake word, answered aloud; a timer set by voice (the
model calls ``timer_set``, then confirms) that rings after the turn; and a timer set by voice that
survives a restart of the engine on the same profile folder (``[engine.timers] store``).
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

import magoo_openai
from magoo_core import Outcome
from magoo_core.testing import run_profile
from magoo_core.types import AudioFormat
from magoo_openai.loopback import AudioLoopback, Call, LoopbackOpenAIServer

from openai_audio_helpers import HEY_JARVIS_QUESTION, KEY, QUESTION, tone_pcm

ENV = {"OPENAI_API_KEY": KEY}
TIMER_COMMAND = "set a pasta timer for one second"
CONFIRMED = "Your pasta timer is set."


@pytest.fixture
async def server() -> AsyncIterator[LoopbackOpenAIServer]:
    """One loopback server for the three backends; its transcription endpoint hears ``what time is
    it`` (see :meth:`AudioLoopback.transcripts`), its speech endpoint says a 0.3 s tone at once."""
    audio = AudioLoopback(transcripts=["what time is it"], speech=tone_pcm(0.3), pace=0)
    async with LoopbackOpenAIServer(api_key=KEY, audio=audio, replies=["It is noon."]) as srv:
        yield srv


def sections(server: LoopbackOpenAIServer, **responder: Any) -> dict[str, Any]:
    """The profile's stt, responder, tts and a recording player, all ``openai`` on ``server``."""
    endpoint = {"backend": "openai", "base_url": server.base_url, "api_key": {"env": "OPENAI_API_KEY"}}
    return {
        "stt": {**endpoint, "model": "whisper-1", "language": "en"},
        "responder": {**endpoint, "model": "gpt-4o-mini", **responder},
        "tts": endpoint,
        "player": {"backend": "memory"},
    }


def timer_model(seconds: float) -> Callable[[dict], Any]:
    """The scripted model: round 1 calls ``timer_set`` for a ``seconds`` pasta timer; round 2,
    given the tool's result, confirms."""

    def reply(body: dict) -> Any:
        if body["messages"][-1]["role"] == "user":
            return [Call("timer_set", json.dumps({"seconds": seconds, "name": "pasta"}))]
        return CONFIRMED

    return reply


def said_outside_turns(record) -> list[str]:
    return [arguments["text"] for arguments in record.of("speak_start") if arguments["turn"] is None]


def question(*, realtime: bool, after: float) -> dict[str, Any]:
    """A scripted microphone: a little quiet, the recorded question, ``after`` seconds of quiet."""
    return {"backend": "scripted", "realtime": realtime,
            "segments": [{"seconds": 0.3}, {"file": str(QUESTION)}, {"seconds": after}]}


async def test_a_wake_word_and_a_recorded_question_are_answered_aloud_through_the_three_backends(server):
    magoo_openwakeword = pytest.importorskip("magoo_openwakeword")
    record = await run_profile(
        {
            "engine": {"mute_pre": 0.0, "mute_post": 0.0},
            "audio_source": {"backend": "scripted", "realtime": False, "segments": [
                {"seconds": 0.5}, {"file": str(HEY_JARVIS_QUESTION)}, {"seconds": 1.5},
            ]},
            "wake": {"backend": "openwakeword", "models": [{"name": "hey_jarvis", "threshold": 0.5, "label": "Jarvis"}]},
            **sections(server),
        },
        plugins=[magoo_openai, magoo_openwakeword],
        environ=ENV,
    )

    assert record.failures == []
    (wake,) = record.of("wake")
    assert wake["wake"].label == "Jarvis"
    (upload,) = server.audio.uploads
    assert 1.0 <= upload.seconds <= 2.5  # the question, cut by the VAD, without the wake word's quiet
    assert record.transcripts == ["what time is it"]
    (chat,) = server.chat_requests()
    assert chat["messages"][-1] == {"role": "user", "content": "what time is it"} and chat["stream"] is True
    assert record.replies == ["It is noon."]
    assert [request["input"] for request in server.audio.speech_requests] == ["It is noon."]
    played = record.audio
    assert {chunk.format for chunk in played} == {AudioFormat(24000)}
    assert b"".join(chunk.pcm for chunk in played) == server.audio.speech
    (turn,) = record.timelines
    assert turn.outcome is Outcome.OK and turn.speech_end is not None and turn.first_audio is not None
    (start,), (end,) = record.of("speech_start"), record.of("speech_end")
    assert start["timestamp"] <= end["timestamp"]
    assert [r.path for r in server.requests] == ["/v1/audio/transcriptions", "/v1/chat/completions", "/v1/audio/speech"]
    assert all(r.headers["authorization"] == f"Bearer {KEY}" for r in server.requests)
    assert KEY not in repr(record.events)


async def test_a_timer_set_by_voice_is_confirmed_and_rings_after_the_turn():
    audio = AudioLoopback(transcripts=[TIMER_COMMAND], speech=tone_pcm(0.3), pace=0)
    async with LoopbackOpenAIServer(api_key=KEY, audio=audio, replies=timer_model(1)) as loopback:
        # a real wait: a realtime microphone, and a 1 s timer that must ring before its 3 s of quiet end
        record = await run_profile(
            {"audio_source": question(realtime=True, after=3.0), "wake": None,
             "engine": {"timers": {"sound": False, "ring_for": 0, "store": False}},
             **sections(loopback, tools=["timer_set"])},
            plugins=[magoo_openai], turns=None, environ=ENV,
        )

    assert record.failures == []
    assert record.transcripts == [TIMER_COMMAND]
    first, second = loopback.chat_requests()
    assert [tool["function"]["name"] for tool in first["tools"]] == ["timer_set"]
    (result,) = [m["content"] for m in second["messages"] if m["role"] == "tool"]
    assert result.startswith("The pasta timer is set for 1 second")
    assert record.replies == [CONFIRMED]
    assert said_outside_turns(record) == ["The pasta timer is done."]
    names = record.names
    rang = len(names) - 1 - names[::-1].index("speak_start")
    assert names.index("turn_end") < names.index("timer_finished") < rang
    spoken = [request["input"] for request in audio.speech_requests]
    assert spoken == [CONFIRMED, "The pasta timer is done."]
    assert len(record.result.timelines) == 1


async def test_a_timer_set_by_voice_rings_after_a_restart_on_the_same_profile_folder(tmp_path: Path):
    audio = AudioLoopback(transcripts=[TIMER_COMMAND], speech=tone_pcm(0.3), pace=0)
    timers = {"sound": False, "ring_for": 0, "store": "kitchen.timers.json"}
    # 3 s: the first run (not realtime) ends well before the timer does
    async with LoopbackOpenAIServer(api_key=KEY, audio=audio, replies=timer_model(3)) as loopback:
        profile = {"engine": {"timers": timers}, "wake": None, **sections(loopback, tools=["timer_set"])}
        first = await run_profile({**profile, "audio_source": question(realtime=False, after=0.5)},
                                  plugins=[magoo_openai], turns=None, base_dir=tmp_path, environ=ENV)
        assert first.replies == [CONFIRMED] and said_outside_turns(first) == []  # it ended before the timer did
        (stored,) = json.loads((tmp_path / "kitchen.timers.json").read_text())["timers"]
        assert stored["name"] == "pasta"

        # a real wait: magoo is "off" until the timer's end has passed, so the next start rings it late
        await asyncio.sleep(max(0.0, stored["ends_at"] - time.time()) + 0.1)
        second = await run_profile({**profile, "audio_source": {"backend": "scripted", "realtime": True,
                                                                "segments": [{"seconds": 1.0}]}},
                                   plugins=[magoo_openai], turns=None, base_dir=tmp_path, environ=ENV)

    (words,) = said_outside_turns(second)
    assert re.fullmatch(r"The pasta timer ended \d+ seconds? ago, while I was off\.", words), words
    assert [request["input"] for request in audio.speech_requests][-1] == words  # said through [tts] openai
    assert second.audio  # and played
    assert json.loads((tmp_path / "kitchen.timers.json").read_text())["timers"] == []
