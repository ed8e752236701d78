"""Whole turns through the engine: recorded speech, [stt] openai and [tts] openai against the loopback,
the echo responder and a player that records (the wake word and [responder] openai: test_conversation.py)."""

from __future__ import annotations

from typing import Any


import magoo_openai
from magoo_core import Outcome
from magoo_core.testing import run_profile
from magoo_core.types import AudioChunk
from magoo_openai.loopback import Fault

from openai_audio_helpers import KEY, PAUSED, QUESTION, loopback, loopback_server  # noqa: F401

ENV = {"OPENAI_API_KEY": KEY}
COMMAND = "set a timer for five minutes"


def backends(url: str) -> dict[str, Any]:
    key = {"env": "OPENAI_API_KEY"}
    return {
        "stt": {"backend": "openai", "base_url": url, "api_key": key, "model": "whisper-1", "language": "en"},
        "responder": {"backend": "echo", "template": "You asked: {text}"},
        "tts": {"backend": "openai", "base_url": url, "api_key": key},
        "player": {"backend": "memory"},
    }


def heard_by_length(upload) -> str:
    """The loopback's "recognizer": the question is 1.3 s, the command 2.4 s; more or less is neither."""
    if 1.0 <= upload.seconds <= 2.0:
        return "what time is it"
    if 2.2 <= upload.seconds <= 3.2:
        return COMMAND
    return f"<{upload.seconds:.2f} s of something else>"


async def test_continuous_mode_answers_turn_after_turn(loopback):
    server, url = loopback
    server.recognize, server.pace = heard_by_length, 0
    record = await run_profile(
        {
            "audio_source": {"backend": "scripted", "realtime": False, "segments": [
                {"seconds": 0.5}, {"file": str(QUESTION)}, {"seconds": 1.5}, {"file": str(PAUSED)}, {"seconds": 1.5},
            ]},
            "wake": None,
            **backends(url),
        },
        plugins=[magoo_openai],
        turns=2,
        environ=ENV,
    )
    assert record.failures == []
    assert record.transcripts == ["what time is it", COMMAND]
    assert record.replies == ["You asked: what time is it", f"You asked: {COMMAND}"]
    assert [t.outcome for t in record.timelines] == [Outcome.OK, Outcome.OK]
    assert all(isinstance(piece, AudioChunk) for piece in record.audio)


async def test_speech_that_breaks_off_mid_reply_ends_the_turn_in_one_line(loopback, loopback_server, caplog):
    server, url = loopback
    server.recognize, server.pace = heard_by_length, 0
    audio = {"backend": "scripted", "realtime": False, "segments": [{"seconds": 0.5}, {"file": str(QUESTION)}, {"seconds": 1.5}]}
    profile = {"audio_source": audio, "wake": None, **backends(url)}
    profile["tts"] = {**profile["tts"], "timeout": 0.5}
    def stall_speech(upload):  # the transcription is answered; the speech request that follows stalls
        loopback_server.fail_next(Fault(stream="stall", after=2, path="/v1/audio/speech"))
        return heard_by_length(upload)

    server.recognize = stall_speech
    record = await run_profile(profile, plugins=[magoo_openai], turns=1, environ=ENV)  # waits 0.5 s for the stall
    (turn,) = record.timelines
    assert turn.outcome is Outcome.ERROR
    (failure,) = record.failures
    assert failure.role == "tts" and "stalled: nothing more of the speech within 0.5 s" in failure.message
    assert "\n" not in failure.message
    assert record.audio  # what arrived before the stall was played, and stays played
    assert KEY not in repr(record.events) and KEY not in caplog.text


async def test_a_rejected_key_in_a_turn_is_one_line_without_the_key(loopback, caplog):
    server, url = loopback
    audio = {"backend": "scripted", "realtime": False, "segments": [{"seconds": 0.5}, {"file": str(QUESTION)}, {"seconds": 1.5}]}
    record = await run_profile(
        {"audio_source": audio, "wake": None, **backends(url)},
        plugins=[magoo_openai], turns=1, environ={"OPENAI_API_KEY": "sk-wrong-0123456789abcdef"},
    )
    messages = [failure.message for failure in record.failures]
    assert messages and all("rejected the API key (HTTP 401)" in m and "OPENAI_API_KEY" in m for m in messages)
    assert not any(failure.retryable for failure in record.failures)
    assert "sk-wrong-0123456789abcdef" not in repr(record.events) + caplog.text
