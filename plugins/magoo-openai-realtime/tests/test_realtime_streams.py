"""Streamed replies from the backend itself, against the loopback GA server (no engine).

A conversation session hands its reply out at the first delta: ``Reply("", deltas=...)`` in text
mode, ``Reply(text, audio=...)`` with ``output = "audio"``. The engine reads the stream while the
server still writes it; when it lets go early (barge-in), the response is cancelled on the server
and an audio reply is truncated to what was handed out.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import numpy as np
import pytest

from magoo_core import AudioChunk, BackendError, Outcome, Reply, SpeechActivity, Transcript
from magoo_core.roles import AudioStream
from magoo_openai_realtime import RealtimeSpeechToText
from magoo_openai_realtime.loopback import LoopbackRealtimeServer
from magoo_openai_realtime.replies import ReplyStream

from realtime_helpers import KEY, clip_24k, run, speech, stt

LONG_REPLY = " ".join(["It is noon in Berlin. The sun is high. Lunch is at one."] * 3)
CHUNK = 480  # 20 ms at 24 kHz


def backend(server: LoopbackRealtimeServer, **options) -> RealtimeSpeechToText:
    config = RealtimeSpeechToText.Config(api_key=KEY, url=server.url, reconnect_backoff=0.05,
                                         reconnect_backoff_max=0.4, connect_timeout=5.0, **options)
    return RealtimeSpeechToText(config)


def utterance() -> np.ndarray:
    return np.concatenate([np.zeros(7200, np.int16), clip_24k().reshape(-1).astype(np.int16), np.zeros(36000, np.int16)])


async def chunks(*utterances: np.ndarray, gates: list[asyncio.Event] = ()) -> AsyncIterator[AudioChunk]:
    """The utterances as 20 ms chunks; the n-th (from the second on) waits for ``gates[n-1]``."""
    for number, samples in enumerate(utterances):
        if number:
            await gates[number - 1].wait()
        pcm = samples.astype("<i2").tobytes()
        for start in range(0, len(pcm), CHUNK * 2):
            yield AudioChunk(pcm[start : start + CHUNK * 2], 24000)
            await asyncio.sleep(0)
    if gates:  # continuous: the microphone stays open
        await asyncio.Event().wait()


async def first_reply(stt: RealtimeSpeechToText) -> tuple[list, Reply]:
    """What a wake-word turn yields up to its reply; the generator is then closed, as the engine does."""
    items = []
    async with contextlib.aclosing(stt.transcribe(AudioStream(chunks(utterance()), continuous=False))) as results:
        async for item in results:
            items.append(item)
            if isinstance(item, Reply):
                return items, item
    raise AssertionError(f"no reply among {items}")


@pytest.fixture
async def slow_server():
    """Deltas 20 ms apart: the reply is still being written while the test reads its start."""
    async with LoopbackRealtimeServer(api_key=KEY, transcripts=["what time is it"], replies=lambda text: LONG_REPLY,
                                      delta_interval=0.02, audio_per_word=0.1) as srv:
        yield srv


async def test_a_text_reply_is_handed_out_at_its_first_delta_and_streamed_to_its_end(slow_server):
    async with backend(slow_server) as stt:
        items, reply = await first_reply(stt)
        stream = reply.deltas
        assert isinstance(stream, ReplyStream) and reply.text == "" and reply.final and reply.audio is None
        assert [type(i) for i in items if not isinstance(i, Transcript)][:2] == [SpeechActivity, SpeechActivity]
        finals = [i.text for i in items if isinstance(i, Transcript) and i.final]
        assert finals == ["what time is it"]  # the transcript comes before the reply
        first = await anext(stream)
        assert first and not stream.ended  # spoken from its start while the server still writes it
        rest = [piece async for piece in stream]
        assert first + "".join(rest) == LONG_REPLY
        assert len(rest) > 10
        await stream.aclose()  # after the end: nothing to cancel
    assert [e["type"] for e in slow_server.connections[0].events if e["type"] == "response.cancel"] == []
    assert [(x.user, x.assistant) for x in stt.link.history] == [("what time is it", LONG_REPLY)]
    assert slow_server.turns[0].status == "completed"
    assert slow_server.protocol_errors == []


async def test_letting_go_of_a_text_reply_cancels_it_on_the_server(slow_server):
    async with backend(slow_server) as stt:
        _, reply = await first_reply(stt)
        await anext(reply.deltas)
        await reply.deltas.aclose()  # barge-in
        for _ in range(200):
            if slow_server.turns[0].status == "cancelled":
                break
            await asyncio.sleep(0.01)
        cancels = [e for e in slow_server.connections[0].events if e["type"] == "response.cancel"]
        assert len(cancels) == 1 and cancels[0]["response_id"].startswith("resp_")
        assert slow_server.turns[0].status == "cancelled"
        assert stt.stats()["cancels"] == 1
        # the next turn works, and the cut reply is not replayed as context
        _, again = await first_reply(stt)
        assert "".join([piece async for piece in again.deltas]) == LONG_REPLY
    assert [x.assistant for x in stt.link.history] == [LONG_REPLY]
    assert slow_server.protocol_errors == []


async def test_an_audio_reply_is_the_models_voice(slow_server):
    async with backend(slow_server, output="audio", voice="cedar") as stt:
        _, reply = await first_reply(stt)
        assert reply.deltas is None and isinstance(reply.audio, ReplyStream)
        chunks_ = [chunk async for chunk in reply.audio]
    session = slow_server.connections[0].session
    assert session["output_modalities"] == ["audio"] and session["audio"]["output"]["voice"] == "cedar"
    assert {(c.sample_rate, c.channels, c.sample_width) for c in chunks_} == {(24000, 1, 2)}
    words = len(LONG_REPLY.split())
    assert sum(c.frames for c in chunks_) == words * 2400  # every word's 100 ms, nothing lost or doubled
    assert np.abs(np.frombuffer(b"".join(c.pcm for c in chunks_), "<i2")).max() > 8000
    assert [x.assistant for x in stt.link.history] == [LONG_REPLY]  # its transcript, kept as context
    assert slow_server.truncations == [] and slow_server.protocol_errors == []


async def test_letting_go_of_an_audio_reply_truncates_it_to_what_was_handed_out(slow_server):
    async with backend(slow_server, output="audio") as stt:
        _, reply = await first_reply(stt)
        heard = [await anext(reply.audio) for _ in range(3)]
        await reply.audio.aclose()  # barge-in after 300 ms of the voice
        for _ in range(200):
            if slow_server.truncations:
                break
            await asyncio.sleep(0.01)
    assert sum(c.duration for c in heard) == pytest.approx(0.3)
    ((item_id, end_ms),) = slow_server.truncations
    assert end_ms == 300 and item_id.startswith("item_")
    events = [e["type"] for e in slow_server.connections[0].events]
    assert events.count("response.cancel") == 1 and events.index("response.cancel") < events.index("conversation.item.truncate")
    assert slow_server.turns[0].status == "cancelled"
    assert slow_server.protocol_errors == []


async def test_a_drop_while_the_reply_is_streamed_reaches_its_reader(slow_server):
    slow_server.drop_next_turn(at="response")
    async with backend(slow_server, transcription_model="") as stt:  # handed out at once, not held for a transcript
        _, reply = await first_reply(stt)
        with pytest.raises(BackendError, match="connection lost"):
            async for _ in reply.deltas:
                pass


async def test_continuous_conversation_streams_each_reply_while_listening(slow_server):
    gate = asyncio.Event()
    audio = AudioStream(chunks(utterance(), utterance(), gates=[gate]), continuous=True)
    readers: list[asyncio.Task] = []

    async def read(stream: ReplyStream) -> str:
        text = "".join([piece async for piece in stream])
        gate.set()  # the next utterance waits for this reply: the server's VAD would cut it otherwise
        return text

    async with backend(slow_server) as stt:
        async with contextlib.aclosing(stt.transcribe(audio)) as results:
            async for item in results:
                if isinstance(item, Reply):  # read beside the stream of turns, as the engine does
                    readers.append(asyncio.create_task(read(item.deltas)))
                    if len(readers) == 2:
                        break
        texts = await asyncio.gather(*readers)
    assert texts == [LONG_REPLY, LONG_REPLY]
    assert len(slow_server.connections) == 1 and [t.status for t in slow_server.turns] == ["completed"] * 2
    assert slow_server.protocol_errors == []


# ---- through the engine -------------------------------------------------------------------------


async def test_the_engine_speaks_the_first_sentence_while_the_rest_is_written(slow_server):
    record = await run({"audio_source": speech(realtime=False, wake=True), "stt": stt(slow_server), "responder": None})
    assert record.failures == [] and record.timelines[0].outcome is Outcome.OK
    assert record.transcripts == ["what time is it"]
    assert record.replies == [LONG_REPLY]
    assert [k["text"] for k in record.of("speak_start")] == ["It is noon in Berlin."]
    names = [name for name, _ in record.events]
    final_reply = next(i for i, (name, k) in enumerate(record.events) if name == "reply" and k["reply"].final)
    assert names.index("speak_start") < final_reply  # speaking began before the reply was whole
    partial = [k["reply"].text for k in record.of("reply") if not k["reply"].final]
    assert len(partial) >= 8 and all(LONG_REPLY.startswith(text) for text in partial)  # one per sentence
    assert slow_server.turns[0].status == "completed" and slow_server.protocol_errors == []


async def test_the_engine_plays_an_audio_reply_with_levels(slow_server):
    record = await run(
        {"audio_source": speech(realtime=False, wake=True), "stt": stt(slow_server, output="audio"), "responder": None},
    )
    assert record.failures == [] and record.timelines[0].outcome is Outcome.OK
    assert record.replies == [""]  # handed out at its first piece, before its transcript was whole
    (played,) = record.plays
    assert sum(c.duration for c in played) == pytest.approx(len(LONG_REPLY.split()) * 0.1)
    assert [k["text"] for k in record.of("speak_start")] == ["<audio reply>"]
    levels = [k["level"] for k in record.of("speak_chunk")]
    assert levels and max(levels) > 0.1  # an actuator has the voice's envelope to follow
    assert [name for name, _ in record.events if name.startswith("speak_")][-1] == "speak_end"
    assert slow_server.truncations == [] and slow_server.protocol_errors == []


async def test_barge_in_over_an_audio_reply_truncates_it_to_what_was_played(slow_server, tmp_path):
    # real time: the second wake word must come while the 3.9 s voice plays
    record = await run(
        {"audio_source": speech(2, wake=True, gap=1.2), "stt": stt(slow_server, output="audio"), "responder": None,
         "engine": {"barge_in": True},
         "player": {"backend": "wav", "realtime": True, "path": str(tmp_path / "reply-{n}.wav")}},
        turns=2,
    )
    assert record.timelines[0].outcome is Outcome.INTERRUPTED and record.timelines[0].error == "barge-in"
    await slow_server.wait_for(lambda: slow_server.truncations, timeout=5)
    ((item_id, end_ms),) = slow_server.truncations
    assert 0 < end_ms < len(LONG_REPLY.split()) * 100  # cut where the speaker stopped taking it
    assert slow_server.protocol_errors == []
