"""The loopback Realtime server on its own, driven by a raw websockets client (no magoo client).

Speech is the espeak-ng clip shipped with magoo's test kit, resampled to 24 kHz.
"""

from __future__ import annotations

import asyncio
import base64
import functools
import json
import re
from pathlib import Path

import numpy as np
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, ConnectionClosedError, InvalidStatus

import magoo_core
from magoo_core.audio import convert, read_wav
from magoo_core.types import AudioChunk, AudioFormat
from magoo_openai_realtime.loopback import LoopbackRealtimeServer

KEY = "sk-loopback"
CLIP = Path(magoo_core.__file__).parent / "testing" / "data" / "what_time_is_it__en-us.wav"
ID = re.compile(r"^(event|item|resp|conv|sess)_[A-Za-z0-9]{21}$")

GA_SESSION = {  # protocols.md 1.2, verbatim
    "type": "realtime", "model": "gpt-realtime", "output_modalities": ["text"],
    "instructions": "You are a concise voice assistant.",
    "audio": {"input": {
        "format": {"type": "audio/pcm", "rate": 24000},
        "transcription": {"model": "gpt-4o-transcribe", "language": "en", "prompt": ""},
        "noise_reduction": {"type": "near_field"},
        "turn_detection": {"type": "server_vad", "threshold": 0.5, "prefix_padding_ms": 300,
                           "silence_duration_ms": 500, "idle_timeout_ms": None,
                           "create_response": True, "interrupt_response": True}}},
}
TRANSCRIPTION_SESSION = {
    "type": "transcription",
    "audio": {"input": {"format": {"type": "audio/pcm", "rate": 24000},
                        "transcription": {"model": "gpt-4o-transcribe", "language": "en"},
                        "turn_detection": {"type": "server_vad", "threshold": 0.5, "prefix_padding_ms": 300,
                                           "silence_duration_ms": 500}}},
    "include": ["item.input_audio_transcription.logprobs"],
}
MANUAL_SESSION = {"type": "realtime", "output_modalities": ["text"], "audio": {"input": {"turn_detection": None}}}

RESPONSE_SEQUENCE = [
    "input_audio_buffer.speech_started", "input_audio_buffer.speech_stopped", "input_audio_buffer.committed",
    "conversation.item.added", "conversation.item.done", "response.created", "response.output_item.added",
    "conversation.item.added", "response.content_part.added", "response.output_text.delta",
    "response.output_text.done", "response.content_part.done", "response.output_item.done",
    "conversation.item.done", "response.done", "rate_limits.updated",
]


@functools.cache
def clip() -> bytes:
    fmt, pcm = read_wav(CLIP)
    return convert(AudioChunk(pcm, fmt.sample_rate, fmt.channels, fmt.sample_width), AudioFormat(24000)).pcm


def loud_ms(pcm: bytes) -> int:
    """Span from the first to the last 10 ms frame above -45 dBFS, in ms."""
    frames = np.frombuffer(pcm[: len(pcm) // 480 * 480], "<i2").astype(float).reshape(-1, 240)
    loud = np.flatnonzero(np.sqrt((frames**2).mean(axis=1)) / 32768 > 10 ** (-45 / 20))
    return int(loud[-1] - loud[0] + 1) * 10


def silence(ms: int) -> bytes:
    return bytes(48 * ms)


def utterance() -> bytes:
    return silence(500) + clip() + silence(1000)


@pytest.fixture
async def loopback():
    async with LoopbackRealtimeServer(transcription_delay=0.01, delta_interval=0.001) as server:
        yield server


async def open_session(server, query="model=gpt-realtime", key=KEY, session=None, **kwargs):
    """A connected client past ``session.created`` (and ``session.updated`` when ``session``)."""
    headers = {"Authorization": f"Bearer {key}", **kwargs.pop("headers", {})}
    ws = await connect(f"{server.url}?{query}", additional_headers=headers, **kwargs)
    assert (await receive(ws))["type"] == "session.created"
    if session is not None:
        await send(ws, "session.update", session=session)
        assert (await receive(ws))["type"] == "session.updated"
    return ws


async def send(ws, event_type, **fields):
    await ws.send(json.dumps({"type": event_type, **fields}))


async def append(ws, pcm: bytes, chunk_ms: int = 100):
    for start in range(0, len(pcm), 48 * chunk_ms):
        await send(ws, "input_audio_buffer.append", audio=base64.b64encode(pcm[start : start + 48 * chunk_ms]).decode())


async def receive(ws, timeout: float = 3.0) -> dict:
    return json.loads(await asyncio.wait_for(ws.recv(), timeout))


async def until(ws, *types: str, timeout: float = 3.0) -> list[dict]:
    """Events up to and including the first one whose type is in ``types``."""
    events = []
    while not events or events[-1]["type"] not in types:
        events.append(await receive(ws, timeout))
    return events


async def closed(ws) -> ConnectionClosed:
    """The exception that ends the connection, after draining what is left."""
    with pytest.raises(ConnectionClosed) as caught:
        while True:
            await receive(ws)
    return caught.value


# ---- full turns ---------------------------------------------------------------------------------


async def test_a_spoken_turn_follows_the_ga_sequence(loopback):
    ws = await open_session(loopback, session=GA_SESSION)
    await append(ws, utterance())
    events = await until(ws, "rate_limits.updated")
    if not any(e["type"] == "conversation.item.input_audio_transcription.completed" for e in events):
        events += await until(ws, "conversation.item.input_audio_transcription.completed")
    await ws.close()

    transcription = [e for e in events if e["type"].startswith("conversation.item.input_audio_transcription")]
    main = [e for e in events if e not in transcription]
    types = [e["type"] for e in main]
    runs_collapsed = [t for i, t in enumerate(types) if i == 0 or t != types[i - 1]]  # deltas x N -> one
    assert runs_collapsed == RESPONSE_SEQUENCE
    assert all(ID.match(e["event_id"]) for e in events)

    started, stopped, committed = main[0], main[1], main[2]
    turn = loopback.turns[0]
    assert started["item_id"] == stopped["item_id"] == committed["item_id"] == turn.item_id
    assert (started["audio_start_ms"], stopped["audio_end_ms"]) == (turn.audio_start_ms, turn.audio_end_ms)
    # The committed audio is the speech plus 300 ms prefix padding and 500 ms of trailing silence.
    assert abs(len(turn.audio) // 48 - (300 + loud_ms(clip()) + 500)) <= 20
    assert turn.audio_start_ms == 500 - 300  # the clip is loud from its first frame, after 500 ms of silence

    deltas = [e for e in main if e["type"] == "response.output_text.delta"]
    assert len(deltas) > 1 and all("obfuscation" in e for e in deltas)
    assert "".join(e["delta"] for e in deltas) == "You said: utterance 1" == turn.reply
    done = next(e for e in main if e["type"] == "response.done")["response"]
    assert done["status"] == "completed" and done["usage"]["total_tokens"] > 0
    assert done["output"][0]["content"] == [{"type": "output_text", "text": "You said: utterance 1"}]

    assert [e["type"].rsplit(".", 1)[1] for e in transcription][-1] == "completed"
    assert 2 <= len(transcription) - 1 <= 3
    assert "".join(e["delta"] for e in transcription[:-1]) == transcription[-1]["transcript"] == "utterance 1"
    assert events.index(transcription[0]) > events.index(committed)

    await loopback.wait_for(lambda: loopback.connections[0].close_code == 1000)
    record = loopback.connections[0]
    assert turn.status == "completed"
    assert record.session["audio"]["input"]["turn_detection"]["silence_duration_ms"] == 500
    assert record.appended_bytes == len(utterance())
    assert record.events[1]["audio"] == {"bytes": 4800}


async def test_a_transcription_session_sends_no_response_events(loopback):
    ws = await open_session(loopback, query="intent=transcription")
    await send(ws, "session.update", session=TRANSCRIPTION_SESSION)
    updated = await receive(ws)
    assert updated["session"]["type"] == "transcription"
    assert updated["session"]["object"] == "realtime.transcription_session"
    await append(ws, utterance())
    events = await until(ws, "conversation.item.input_audio_transcription.completed")
    await send(ws, "response.create", event_id="evt_7")
    error = (await receive(ws))["error"]
    await ws.close()

    assert not any(e["type"].startswith("response.") for e in events)
    assert events[-1]["transcript"] == "utterance 1" and events[-1]["usage"]["type"] == "tokens"
    assert (error["code"], error["param"], error["event_id"]) == ("invalid_value", "type", "evt_7")
    assert loopback.turns[0].reply is None and loopback.connections[0].session_type == "transcription"


async def test_a_manual_turn_with_text_context(loopback):
    ws = await open_session(loopback, session=MANUAL_SESSION)
    await append(ws, silence(50))
    await send(ws, "input_audio_buffer.commit", event_id="evt_1")
    error = (await receive(ws))["error"]
    assert error["code"] == "input_audio_buffer_commit_empty"
    assert error["message"].endswith("but buffer only has 50.00ms of audio.")

    await send(ws, "conversation.item.create",
               item={"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "Hi."}]})
    added, done = await receive(ws), await receive(ws)
    assert (added["type"], done["type"]) == ("conversation.item.added", "conversation.item.done")

    await append(ws, clip())
    await send(ws, "input_audio_buffer.commit")
    await send(ws, "response.create", response={"instructions": "Be brief."})
    events = await until(ws, "response.done")
    await ws.close()

    assert events[0]["type"] == "input_audio_buffer.committed"
    assert events[0]["previous_item_id"] == added["item"]["id"]
    assert "input_audio_buffer.speech_started" not in [e["type"] for e in events]
    turn = loopback.turns[0]
    assert len(turn.audio) == len(silence(50)) + len(clip()) and turn.reply == "You said: utterance 1"


async def test_semantic_vad_after_a_long_silence(loopback):
    eager = {"type": "realtime", "audio": {"input": {"turn_detection": {"type": "semantic_vad", "eagerness": "high"}}}}
    ws = await open_session(loopback, session=eager)
    await append(ws, silence(3000) + clip() + silence(400))
    started, stopped = await receive(ws), await receive(ws)
    await ws.close()
    speech_ms = loud_ms(clip())
    assert started["audio_start_ms"] == 3000 - 300  # default prefix padding, counted from session start
    assert stopped["audio_end_ms"] == 3000 + speech_ms + 300  # "high" eagerness waits 300 ms of silence
    assert len(loopback.turns[0].audio) == 48 * (300 + speech_ms + 300)


async def test_audio_output_sends_transcript_and_audio_deltas(loopback):
    ws = await open_session(loopback, session={"type": "realtime", "audio": {"input": {"turn_detection": None}}})
    await send(ws, "conversation.item.create",
               item={"type": "message", "role": "user", "content": [{"type": "input_text", "text": "hello"}]})
    await send(ws, "response.create")
    types = [e["type"] for e in await until(ws, "response.done")]
    await ws.close()
    assert "response.output_audio.delta" in types and "response.output_audio_transcript.done" in types
    assert not any(t.startswith("response.output_text") for t in types)


# ---- validation ---------------------------------------------------------------------------------

INVALID = [  # (event, expected code, expected param)
    ({"type": "session.update", "session": {"output_modalities": ["text"]}},
     "missing_required_parameter", "session.type"),
    ({"type": "session.update", "session": {"type": "realtime", "modalities": ["text"]}},
     "unknown_parameter", "session.modalities"),
    ({"type": "session.update", "session": {"type": "realtime", "turn_detection": None}},
     "unknown_parameter", "session.turn_detection"),
    ({"type": "session.update", "session": {"type": "transcription"}}, "invalid_value", "session.type"),
    ({"type": "session.update", "session": {"type": "realtime", "output_modalities": ["audio", "text"]}},
     "invalid_value", "session.output_modalities"),
    ({"type": "session.update", "session": {"type": "realtime", "audio": {"input": {
        "format": {"type": "audio/pcm", "rate": 16000}}}}}, "invalid_value", "session.audio.input.format.rate"),
    ({"type": "session.update", "session": {"type": "realtime", "audio": {"input": {
        "turn_detection": {"type": "server_vad", "speed": 1}}}}},
     "unknown_parameter", "session.audio.input.turn_detection.speed"),
    ({"type": "session.update", "session": {"type": "realtime", "audio": {"input": {
        "turn_detection": {"type": "semantic_vad", "eagerness": "eager"}}}}},
     "invalid_value", "session.audio.input.turn_detection.eagerness"),
    ({"type": "input_audio_buffer.append"}, "missing_required_parameter", "audio"),
    ({"type": "input_audio_buffer.append", "audio": "not base64!"}, "invalid_value", "audio"),
    ({"type": "input_audio_buffer.append", "audio": base64.b64encode(b"abc").decode()}, "invalid_value", "audio"),
    ({"type": "response.cancel"}, "response_cancel_not_active", None),
    ({"type": "conversation.item.create", "item": {"type": "message", "role": "user",
                                                   "content": [{"type": "output_text", "text": "x"}]}},
     "invalid_value", "item.content[0].type"),
    ({"type": "session.updated"}, "invalid_value", "type"),
]


async def test_invalid_events_get_errors_and_the_session_survives(loopback):
    ws = await open_session(loopback)
    for number, (event, code, param) in enumerate(INVALID):
        await ws.send(json.dumps({**event, "event_id": f"evt_{number}"}))
        error = await receive(ws)
        assert error["type"] == "error", event
        assert (error["error"]["code"], error["error"]["param"], error["error"]["event_id"]) == (
            code, param, f"evt_{number}"), event
    assert (await receive_after(ws, "{not json"))["error"]["code"] == "invalid_json"
    assert loopback.connections[0].session["output_modalities"] == ["audio"]  # nothing half-applied

    await send(ws, "session.update", session=GA_SESSION)
    updated = await receive(ws)
    await ws.close()
    assert updated["type"] == "session.updated" and updated["session"]["output_modalities"] == ["text"]
    assert len(loopback.protocol_errors) == len(INVALID) + 1
    assert loopback.protocol_errors[1] == "session.update: Unknown parameter: 'session.modalities'."


async def receive_after(ws, raw: str) -> dict:
    await ws.send(raw)
    return await receive(ws)


LONG_REPLY = " ".join(["word"] * 40)  # 2 s at 0.05 s a delta: ample time to act on it mid-stream


async def test_response_create_while_active_is_refused():
    async with LoopbackRealtimeServer(delta_interval=0.05, replies=lambda text: LONG_REPLY) as server:
        ws = await open_session(server, session=MANUAL_SESSION)
        await send(ws, "response.create")
        await send(ws, "response.create", event_id="evt_2")
        events = await until(ws, "error")
        await ws.close()
    assert events[0]["type"] == "response.created"
    assert events[-1]["error"]["code"] == "conversation_already_has_active_response"


# ---- connection faults --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "headers", "code", "close_code"),
    [
        ("model=gpt-realtime", {"Authorization": "Bearer sk-wrong-0123456789wxyz"}, "invalid_api_key", 3000),
        ("model=gpt-realtime", {"OpenAI-Beta": "realtime=v1"}, "beta_api_shape_disabled", 4000),
        ("", {}, "missing_required_parameter", 3000),
    ],
)
async def test_rejected_after_upgrade(loopback, query, headers, code, close_code):
    ws = await connect(f"{loopback.url}?{query}", additional_headers={"Authorization": f"Bearer {KEY}", **headers})
    error = await receive(ws)
    exc = await closed(ws)
    assert error["type"] == "error" and error["error"]["code"] == code
    assert (exc.rcvd.code, exc.rcvd.reason) == (close_code, f"invalid_request_error.{code}")
    if code == "invalid_api_key":
        assert "wxyz" in error["error"]["message"] and "0123456789" not in error["error"]["message"]
    if code == "beta_api_shape_disabled":
        assert error["error"]["message"].startswith("The Realtime Beta API is no longer supported.")


async def test_refused_connections_then_success(loopback):
    loopback.refuse_connections(2)
    for _ in range(2):
        with pytest.raises(InvalidStatus) as refused:
            await open_session(loopback)
        assert refused.value.response.status_code == 503
    ws = await open_session(loopback)
    await ws.close()
    assert len(loopback.attempts) == 3 and len(loopback.connections) == 1


@pytest.mark.parametrize("at", ["speech_started", "committed", "response"])
async def test_drop_next_turn_cuts_the_connection(loopback, at):
    loopback.drop_next_turn(at=at)
    ws = await open_session(loopback, session=GA_SESSION)
    sender = asyncio.create_task(append(ws, utterance()))
    received = []
    with pytest.raises(ConnectionClosedError) as dropped:
        while True:
            received.append((await receive(ws))["type"])
    await asyncio.gather(sender, return_exceptions=True)

    last = {"speech_started": "input_audio_buffer.speech_started", "committed": "input_audio_buffer.committed",
            "response": "response.output_text.delta"}[at]
    assert received[-1] == last and received.count(last) == 1
    assert dropped.value.rcvd is None and ws.close_code == 1006
    await loopback.wait_for(lambda: loopback.connections[0].closed_at is not None)
    assert loopback.connections[0].close_code is None
    assert [t.status for t in loopback.turns] == ([] if at == "speech_started" else ["dropped"])


async def test_session_length_expires_the_session():
    async with LoopbackRealtimeServer(session_length=0.3) as server:
        ws = await open_session(server)
        error = (await receive(ws))["error"]
        exc = await closed(ws)
    assert error["code"] == "session_expired" and error["event_id"] is None
    assert error["message"] == "Your session hit the maximum duration of 0.3 seconds."
    assert (exc.rcvd.code, exc.rcvd.reason) == (1001, error["message"])


async def test_expire_all_and_send_error(loopback):
    first, second = await open_session(loopback), await open_session(loopback, query="intent=transcription")
    await loopback.send_error()
    for ws in (first, second):
        error = (await receive(ws))["error"]
        assert (error["type"], error["code"]) == ("server_error", "server_error")
    await send(first, "input_audio_buffer.clear")
    assert (await receive(first))["type"] == "input_audio_buffer.cleared"  # still open

    await loopback.expire_all()
    for ws in (first, second):
        error = (await receive(ws))["error"]
        assert error["message"] == "Your session hit the maximum duration of 60 minutes."
        assert (await closed(ws)).rcvd.code == 1001


# ---- cancelling ---------------------------------------------------------------------------------


async def test_response_cancel():
    async with LoopbackRealtimeServer(delta_interval=0.05, replies=lambda text: LONG_REPLY) as server:
        ws = await open_session(server, session=MANUAL_SESSION)
        await append(ws, clip())
        await send(ws, "input_audio_buffer.commit")
        await send(ws, "response.create")
        await until(ws, "response.output_text.delta")
        await send(ws, "response.cancel")
        done = (await until(ws, "response.done"))[-1]["response"]
        await send(ws, "response.cancel")
        error = (await until(ws, "error"))[-1]["error"]
        await ws.close()
    assert done["status"] == "cancelled"
    assert done["status_details"] == {"type": "cancelled", "reason": "client_cancelled"}
    assert done["output"][0]["status"] == "incomplete"
    assert error["code"] == "response_cancel_not_active"
    assert server.turns[0].status == "cancelled"


async def test_speech_interrupts_the_response():
    replies = {"utterance 1": LONG_REPLY, "utterance 2": "Sure."}
    async with LoopbackRealtimeServer(delta_interval=0.05, transcription_delay=0.01, replies=replies.get) as server:
        ws = await open_session(server, session=GA_SESSION)
        await append(ws, utterance() + utterance())
        events = await until(ws, "response.done")
        events += await until(ws, "response.done")
        await server.wait_for(lambda: server.turns[1].status == "completed")
        await ws.close()
    types = [e["type"] for e in events]
    assert types.index("input_audio_buffer.speech_started", 1) < types.index("response.done")
    dones = [e["response"] for e in events if e["type"] == "response.done"]
    assert dones[0]["status_details"] == {"type": "cancelled", "reason": "turn_detected"}
    assert dones[1]["status"] == "completed"
    assert [t.status for t in server.turns] == ["cancelled", "completed"]


# ---- stalling -----------------------------------------------------------------------------------


async def test_stall_holds_events_and_pings(loopback):
    ws = await open_session(loopback)
    loopback.stall()
    await send(ws, "session.update", session=MANUAL_SESSION)
    pong = await ws.ping()
    with pytest.raises(TimeoutError):
        await receive(ws, timeout=0.2)
    assert not pong.done()
    loopback.unstall()
    assert (await receive(ws))["type"] == "session.updated"
    await asyncio.wait_for(pong, 3)

    loopback.stall(0.1)  # ends by itself
    await send(ws, "input_audio_buffer.clear")
    assert (await receive(ws))["type"] == "input_audio_buffer.cleared"
    await ws.close()


async def test_connections_are_independent(loopback):
    first = await open_session(loopback, session=MANUAL_SESSION)
    second = await open_session(loopback, session=GA_SESSION)
    await append(first, silence(300))
    await append(second, utterance())
    await until(second, "response.done")
    await send(first, "input_audio_buffer.commit")
    committed = await receive(first)
    for ws in (first, second):
        await ws.close()
    assert committed["type"] == "input_audio_buffer.committed"
    assert [(t.connection, len(t.audio)) for t in loopback.turns][1] == (0, len(silence(300)))
    assert loopback.connections[0].session["audio"]["input"]["turn_detection"] is None
    assert loopback.connections[1].session["audio"]["input"]["turn_detection"]["type"] == "server_vad"


def test_transcripts_are_used_in_order():
    server = LoopbackRealtimeServer(transcripts=["hello", "bye"])
    assert [server.next_transcript(b"") for _ in range(3)] == ["hello", "bye", "bye"]
    assert LoopbackRealtimeServer(transcripts=lambda audio: f"{len(audio)} bytes").next_transcript(b"ab") == "2 bytes"


# ---- audio replies and truncation ----------------------------------------------------------------

AUDIO_SESSION = {"type": "realtime", "output_modalities": ["audio"],
                 "audio": {"input": {"turn_detection": None},
                           "output": {"format": {"type": "audio/pcm", "rate": 24000}, "voice": "marin"}}}


async def _audio_reply(ws) -> list[dict]:
    await append(ws, clip())
    await send(ws, "input_audio_buffer.commit")
    await send(ws, "response.create")
    return await until(ws, "rate_limits.updated")  # the last event of a response


async def test_an_audio_reply_streams_voice_and_transcript_deltas(loopback):
    ws = await open_session(loopback, session=AUDIO_SESSION)
    events = await _audio_reply(ws)
    await ws.close()
    audio = [e for e in events if e["type"] == "response.output_audio.delta"]
    transcript = [e for e in events if e["type"] == "response.output_audio_transcript.delta"]
    pcm = b"".join(base64.b64decode(e["delta"]) for e in audio)
    words = loopback.turns[0].reply.split()
    assert len(transcript) == len(words) and "".join(e["delta"] for e in transcript) == loopback.turns[0].reply
    assert len(pcm) == len(words) * 48 * 100  # audio_per_word = 0.1 s of 24 kHz PCM16
    assert np.abs(np.frombuffer(pcm, "<i2")).max() > 8000  # a voice (a tone), not silence
    assert {e["item_id"] for e in audio} == {events[-2]["response"]["output"][0]["id"]}
    assert loopback.connections[0].session["audio"]["output"]["voice"] == "marin"
    assert "response.output_audio.done" in [e["type"] for e in events]


async def test_truncate_cuts_an_assistant_audio_item_and_checks_its_length(loopback):
    ws = await open_session(loopback, session=AUDIO_SESSION)
    events = await _audio_reply(ws)
    item_id = events[-2]["response"]["output"][0]["id"]
    length_ms = len(loopback.turns[0].reply.split()) * 100

    await send(ws, "conversation.item.truncate", item_id=item_id, content_index=0, audio_end_ms=250)
    truncated = await receive(ws)
    assert truncated == {**truncated, "type": "conversation.item.truncated", "item_id": item_id, "audio_end_ms": 250}
    assert loopback.truncations == [(item_id, 250)]

    await send(ws, "conversation.item.truncate", item_id=item_id, content_index=0, audio_end_ms=length_ms + 1)
    error = (await receive(ws))["error"]
    assert (error["code"], error["param"]) == ("invalid_value", "audio_end_ms")
    assert error["message"] == f"Audio content of {length_ms}ms is already shorter than {length_ms + 1}ms"

    await send(ws, "conversation.item.truncate", item_id="item_nope", content_index=0, audio_end_ms=0)
    assert (await receive(ws))["error"]["code"] == "item_not_found"
    await send(ws, "conversation.item.truncate", item_id=item_id, audio_end_ms=0)
    assert (await receive(ws))["error"]["param"] == "content_index"
    await send(ws, "conversation.item.truncate", item_id=item_id, content_index=0, audio_end_ms="10")
    assert (await receive(ws))["error"]["param"] == "audio_end_ms"
    await ws.close()
    assert loopback.truncations == [(item_id, 250)]
    assert len(loopback.protocol_errors) == 4


async def test_a_text_item_cannot_be_truncated(loopback):
    ws = await open_session(loopback, session=MANUAL_SESSION)
    await append(ws, clip())
    await send(ws, "input_audio_buffer.commit")
    await send(ws, "response.create")
    events = await until(ws, "rate_limits.updated")
    item_id = events[-2]["response"]["output"][0]["id"]
    await send(ws, "conversation.item.truncate", item_id=item_id, content_index=0, audio_end_ms=0)
    assert (await receive(ws))["error"]["param"] == "content_index"
    await ws.close()
