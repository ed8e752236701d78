"""Full turns through the real plugin client, the real engine and the loopback GA server.

The audio is a real espeak-ng clip: the server's VAD finds the turn in it, and the server's
record of the committed audio is compared with the clip itself.
"""

from __future__ import annotations

import base64
import json

import numpy as np

from magoo_core import Outcome
from magoo_core.testing.signals import best_match

from realtime_helpers import KEY, REPLY, clip_24k, run, speech, stt

SPOKEN_REPLY = "It is noon. See the clock or example.com for more."


def _heard_the_clip(turn_audio: bytes) -> float:
    recorded = np.frombuffer(turn_audio, dtype=np.int16)
    return best_match(recorded, clip_24k())[1]


async def test_conversation_after_a_wake_word(server):
    record = await run(
        {"audio_source": speech(realtime=False, wake=True), "stt": stt(server), "responder": None},
    )
    assert record.failures == []
    assert record.transcripts == ["what time is it"]
    assert record.replies == [REPLY]
    # streamed: speak_start names the first sentence, cleaned for speech; one play for the whole reply
    assert [k["text"] for k in record.of("speak_start")] == [SPOKEN_REPLY.split(" See")[0]]
    assert record.timelines[0].outcome is Outcome.OK
    assert len(record.plays) == 1
    partial_replies = [k["reply"].text for k in record.of("reply") if not k["reply"].final]
    assert len(partial_replies) == 2 and all(REPLY.startswith(text) for text in partial_replies)  # one a sentence

    assert server.protocol_errors == []
    (connection,) = server.connections
    assert connection.query == {"model": "gpt-realtime-1.5"}
    assert connection.headers["authorization"] == f"Bearer {KEY}"
    assert "openai-beta" not in connection.headers
    assert connection.session["audio"]["input"]["format"] == {"type": "audio/pcm", "rate": 24000}
    assert connection.session["output_modalities"] == ["text"]
    detection = connection.session["audio"]["input"]["turn_detection"]
    assert (detection["type"], detection["threshold"], detection["silence_duration_ms"]) == ("server_vad", 0.5, 500)
    (turn,) = server.turns
    assert turn.status == "completed"
    assert _heard_the_clip(turn.audio) > 0.9  # resampled once to 24 kHz, nothing lost or doubled
    appends = [e for e in connection.events if e["type"] == "input_audio_buffer.append"]
    assert {e["audio"]["bytes"] for e in appends[:-1]} == {50 * 48}  # append_ms = 50


async def test_transcription_mode_after_a_wake_word_uses_the_responder(server):
    record = await run(
        {"audio_source": speech(realtime=False, wake=True), "stt": stt(server, mode="transcription")},
    )
    assert record.failures == []
    assert record.transcripts == ["what time is it"]
    assert record.replies == ["You said: what time is it"]  # the echo responder, not the server
    (connection,) = server.connections
    assert connection.query == {"intent": "transcription"}
    assert connection.session["type"] == "transcription"
    assert not any(e["type"].startswith("response.") for e in connection.events)
    assert server.turns[0].reply is None
    assert server.protocol_errors == []


async def test_conversation_without_a_wake_word_answers_turn_after_turn(server):
    record = await run(
        {"audio_source": speech(2), "wake": None, "responder": None, "stt": stt(server)},
        turns=2,
    )
    assert record.failures == []
    assert record.transcripts == ["what time is it"] * 2
    assert record.replies == [REPLY] * 2
    assert [t.outcome for t in record.timelines] == [Outcome.OK, Outcome.OK]
    assert len(server.connections) == 1  # one session for the whole conversation
    assert [t.status for t in server.turns] == ["completed", "completed"]
    assert all(_heard_the_clip(t.audio) > 0.9 for t in server.turns)
    starts = record.of("speech_start")
    assert len(starts) == 2 and all(k["turn"] is not None for k in starts)


async def test_muted_microphone_sends_silence_while_the_reply_is_spoken(server):
    """The reply is 'spoken' by the tone TTS; the server must get silence then, not the room."""
    record = await run(
        {"audio_source": speech(2, gap=2.5), "wake": None, "responder": None, "stt": stt(server),
         "engine": {"mute_pre": 0.2, "mute_post": 0.3}},
        turns=2,
    )
    assert record.failures == []
    assert record.of("speak_start")
    assert len(server.turns) == 2  # the muted stretch never became a turn of its own


async def test_transcription_mode_without_a_wake_word(server):
    record = await run(
        {"audio_source": speech(2), "wake": None, "stt": stt(server, mode="transcription")},
        turns=2,
    )
    assert record.failures == []
    assert record.replies == ["You said: what time is it"] * 2


async def test_semantic_vad_and_transcription_settings_reach_the_server(server):
    record = await run(
        {"audio_source": speech(realtime=False, wake=True), "responder": None,
         "stt": stt(server, turn_detection="semantic_vad", eagerness="high", language="de",
                    transcription_model="gpt-4o-transcribe", instructions="Be brief.")},
    )
    assert record.failures == []
    session = server.connections[0].session
    assert session["audio"]["input"]["turn_detection"]["type"] == "semantic_vad"
    assert session["audio"]["input"]["turn_detection"]["eagerness"] == "high"
    assert session["audio"]["input"]["transcription"] == {"model": "gpt-4o-transcribe", "language": "de"}
    assert session["instructions"] == "Be brief."


async def test_a_reply_without_transcription_is_still_spoken(server):
    record = await run(
        {"audio_source": speech(realtime=False, wake=True), "responder": None, "stt": stt(server, transcription_model="")},
    )
    assert record.failures == []
    assert record.transcripts == []
    assert record.replies == [REPLY]
    assert record.timelines[0].outcome is Outcome.OK
    assert "transcription" not in server.connections[0].session["audio"]["input"] or \
        server.connections[0].session["audio"]["input"]["transcription"] is None


def test_appended_audio_is_base64_pcm16():
    from magoo_openai_realtime import protocol

    event = protocol.append(b"\x01\x00\xff\x7f")
    assert json.loads(json.dumps(event)) == {"type": "input_audio_buffer.append", "audio": "AQD/fw=="}
    assert base64.b64decode(event["audio"]) == b"\x01\x00\xff\x7f"
