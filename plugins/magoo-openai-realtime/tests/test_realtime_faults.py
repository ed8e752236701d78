"""What a long-running assistant meets: drops, refusals, the session cap, a bad key, stalls,
server errors and garbage. The real client against the loopback server every time."""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import AsyncIterator

import pytest

from magoo_core import AudioChunk, AudioStream, BackendError, Outcome, Reply, SpeechActivity, Transcript
from magoo_core.audio import read_wav
from magoo_openai_realtime import RealtimeSpeechToText
from magoo_openai_realtime.loopback import LoopbackRealtimeServer

from realtime_helpers import CLIP, KEY, REPLY, run, speech, stt


def backend(server: LoopbackRealtimeServer, **options) -> RealtimeSpeechToText:
    section = stt(server, **options)
    section.pop("backend")
    section["api_key"] = KEY
    return RealtimeSpeechToText(RealtimeSpeechToText.Config(**section))


async def utterance(live: bool = False) -> AsyncIterator[AudioChunk]:
    """The clip then silence, in 24 kHz chunks of 40 ms, as the engine would hand it over."""
    fmt, pcm = read_wav(CLIP)
    chunk = AudioChunk(pcm, fmt.sample_rate, fmt.channels, fmt.sample_width)
    from magoo_core.audio import convert, split, silence
    audio = convert(chunk, RealtimeSpeechToText.input_format)
    for piece in [*split(audio, 960), *split(silence(audio.format, 3.0), 960)]:
        if live:
            await asyncio.sleep(piece.duration)
        yield piece


# ---- connection faults ------------------------------------------------------------------------


async def test_a_drop_mid_turn_is_reported_and_the_next_turn_works(server, caplog):
    caplog.set_level(logging.DEBUG)
    server.drop_next_turn(at="committed")
    record = await run(
        {"audio_source": speech(2, gap=2.0), "wake": None, "responder": None, "stt": stt(server)}, turns=2
    )
    first, second = record.timelines
    assert first.outcome is Outcome.ERROR
    assert "connection lost" in first.error and "turn in progress is lost" in first.error
    assert second.outcome is Outcome.OK
    assert record.replies == [REPLY]
    assert len(server.connections) == 2
    assert KEY not in caplog.text


async def test_a_drop_after_a_wake_word_drops_only_that_turn(server):
    server.drop_next_turn(at="response")
    record = await run(
        {"audio_source": speech(2, realtime=False, wake=True), "responder": None, "stt": stt(server)}, turns=2
    )
    assert [t.outcome for t in record.timelines] == [Outcome.ERROR, Outcome.OK]
    assert "connection lost" in record.failures[0].message
    assert record.failures[0].retryable


async def test_refused_connections_back_off_with_growing_capped_jittered_delays(server):
    server.refuse_connections(5, status=503)
    stt_backend = backend(server, reconnect_backoff=0.05, reconnect_backoff_max=0.2, healthy_after=0.5)
    async with stt_backend:
        await server.wait_for(lambda: len(server.connections) == 1)
        link = stt_backend.link
        delays = list(link.delays)
        assert len(delays) == 5 and len(server.attempts) == 6  # five refused, then connected
        nominal = [min(0.2, 0.05 * 2**k) for k in range(5)]  # 0.05, 0.1, 0.2 (cap), 0.2, 0.2
        for delay, expected in zip(delays, nominal):
            assert expected / 2 <= delay <= expected  # "equal jitter": half fixed, half random
        assert len(set(delays)) == 5  # jittered: no two the same
        gaps = [b - a for a, b in zip(server.attempts, server.attempts[1:])]
        assert all(gap >= delay * 0.95 for gap, delay in zip(gaps, delays))  # never sooner than chosen
        assert link.backoff.attempts == 5  # connected, but not yet healthy: no reset
        await server.wait_for(lambda: link.backoff.attempts == 0, timeout=5)  # healthy: starts over
        assert stt_backend.stats()["connect_failures"] == 5


async def test_a_server_that_keeps_expiring_sessions_at_once_gets_backoff_not_a_storm(server):
    stt_backend = backend(server, reconnect_backoff=0.05, reconnect_backoff_max=0.2, healthy_after=60)
    async with stt_backend:
        for _ in range(4):
            count = len(server.connections)
            await server.wait_for(lambda: len(server._open_sessions()) == 1 and len(server.connections) == count)
            await server.expire_all()
            await server.wait_for(lambda: len(server.connections) == count + 1)
        assert len(stt_backend.link.delays) == 4
        assert all(delay > 0 for delay in stt_backend.link.delays)


async def test_the_session_is_recycled_before_the_cap_and_no_turn_is_lost():
    async with LoopbackRealtimeServer(api_key=KEY, transcripts=["what time is it"], replies=lambda t: REPLY,
                                      session_length=3.0) as server:
        record = await run(
            {"audio_source": speech(3, gap=1.0), "wake": None, "responder": None,
             "stt": stt(server, recycle_after=1.2)},
            turns=3,
        )
    assert record.failures == []
    assert [t.outcome for t in record.timelines] == [Outcome.OK] * 3
    assert len(server.connections) >= 2
    assert server.connections[0].close_code == 1000  # the client left; the server never expired it
    assert all(c.close_code != 1001 for c in server.connections)  # no session ever hit the cap


async def test_a_bad_key_is_fatal_with_one_clear_message_and_is_not_retried(server, caplog):
    caplog.set_level(logging.DEBUG)
    wrong = "sk-wrong-key-0000000000000000abcd"
    record = await run(
        {"audio_source": speech(realtime=False, wake=True), "responder": None, "stt": stt(server)},
        environ={"OPENAI_API_KEY": wrong},
    )
    assert record.result.exit_code == 1
    assert "OpenAI rejected the API key" in record.result.fatal
    assert "OPENAI_API_KEY" in record.result.fatal
    assert len(server.attempts) == 1
    assert server.connections[0].close_code == 3000
    for text in (caplog.text, record.result.fatal):
        assert wrong not in text and wrong[-4:] not in text


async def test_magoo_run_with_a_bad_key_says_so_once_and_exits(server, tmp_path):
    profile = tmp_path / "realtime.toml"
    profile.write_text(
        f"""
[audio_source]
backend = "silence"
seconds = 5

[stt]
backend = "openai-realtime"
api_key = {{ env = "OPENAI_API_KEY" }}
url = "{server.url}"
"""
    )
    (tmp_path / ".env").write_text("OPENAI_API_KEY=sk-proj-WRONGWRONGWRONG9876\n")
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "magoo_core.cli", "run", "--profile", str(profile),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), 60)
    text = (out + err).decode()
    assert process.returncode == 1
    # once on stderr ("magoo stopped: ..."); the story on stdout ends with the same reason
    assert err.decode().count("OpenAI rejected the API key") == 1, text
    assert "WRONGWRONG" not in text and "9876" not in text
    assert "Traceback" not in text


async def test_an_unreachable_server_does_not_stop_the_start_and_turns_say_why():
    free_port_url = "ws://127.0.0.1:9/v1/realtime"  # discard port: nothing listens
    stt_backend = RealtimeSpeechToText(RealtimeSpeechToText.Config(
        api_key=KEY, url=free_port_url, connect_timeout=0.5, reconnect_backoff=0.05, reconnect_backoff_max=0.1))
    async with stt_backend:
        with pytest.raises(BackendError) as caught:
            async for _ in stt_backend.transcribe(AudioStream(utterance(), continuous=False)):
                pass
        assert "cannot reach 127.0.0.1:9" in caught.value.message
        assert not caught.value.restart and caught.value.retryable


async def test_a_stalled_link_is_noticed_by_pings_and_reconnected(server):
    stt_backend = backend(server, ping_interval=0.2, ping_timeout=0.3)
    async with stt_backend:
        server.stall()
        await server.wait_for(lambda: stt_backend.link.stats["drops"] == 1, timeout=10)
        server.unstall()
        await server.wait_for(lambda: stt_backend.link.current is not None and len(server.connections) == 2)


# ---- server events ----------------------------------------------------------------------------


async def test_a_server_error_during_a_turn_drops_it_with_the_servers_words(server):
    stt_backend = backend(server)
    async with stt_backend:
        with pytest.raises(BackendError) as caught:
            async for item in stt_backend.transcribe(AudioStream(utterance(live=True), continuous=False)):
                if isinstance(item, SpeechActivity) and item.started:
                    await server.send_error(code="server_error", message="The server had an error.")
        assert caught.value.message == "OpenAI Realtime error server_error: The server had an error."
        # the session survives: the next turn works on the same connection
        items = [i async for i in stt_backend.transcribe(AudioStream(utterance(), continuous=False))]
        assert await replies(items) == [REPLY]
        assert len(server.connections) == 1


async def test_a_server_error_between_turns_is_logged_and_loses_nothing(server, caplog):
    record_task = asyncio.create_task(run(
        {"audio_source": speech(1, lead=1.5), "wake": None, "responder": None, "stt": stt(server)}
    ))
    await server.wait_for(lambda: len(server.connections) == 1)
    await asyncio.sleep(0.3)
    await server.send_error(code="rate_limit_exceeded", message="Slow down a little.")
    record = await record_task
    assert record.failures == []
    assert record.replies == [REPLY]
    assert "rate_limit_exceeded" in caplog.text and "between turns" in caplog.text


async def test_closing_the_turn_early_cancels_the_reply_being_written():
    async with LoopbackRealtimeServer(api_key=KEY, replies=lambda t: "one two three four five six seven eight",
                                      delta_interval=0.3) as server:
        stt_backend = backend(server)
        async with stt_backend:
            results = stt_backend.transcribe(AudioStream(utterance(), continuous=False))
            async for item in results:
                if isinstance(item, Transcript) and item.final:  # the reply is being written: the turn ends
                    break
            await results.aclose()
            await server.wait_for(lambda: server.turns and server.turns[0].status == "cancelled")
            assert stt_backend.stats()["cancels"] == 1
            cancels = [e for e in server.connections[0].events if e["type"] == "response.cancel"]
            assert len(cancels) == 1


async def replies(items: list) -> list[str]:
    """The text of each final reply among ``items``, read to its end when it is streamed."""
    texts = []
    for item in items:
        if isinstance(item, Reply) and item.final:
            texts.append("".join([d async for d in item.deltas]) if item.deltas is not None else item.text)
    return texts


GARBAGE = [
    "this is not json",
    "[1, 2, 3]",
    '{"no_type": true}',
    {"type": "response.output_text.delta"},  # a known type missing every field
    {"type": "response.done", "response": "not an object"},
    {"type": "input_audio_buffer.speech_stopped", "item_id": 42, "audio_end_ms": "late"},
    {"type": "conversation.item.input_audio_transcription.completed", "item_id": "item_unknown", "transcript": 7},
    {"type": "brand_new.event_type", "payload": {"nested": [1, 2]}, "obfuscation": "x"},
    {"type": "error"},  # an error without details
]


async def test_malformed_and_unknown_server_events_are_skipped_never_a_crash(server, caplog):
    stt_backend = backend(server)
    async with stt_backend:
        for frame in GARBAGE:
            await server.inject(frame)
        await server.wait_for(lambda: stt_backend.stats()["malformed_events"] == 3)
        await asyncio.sleep(0.1)  # the rest read too: between turns, the error is only logged
        items = []
        async for item in stt_backend.transcribe(AudioStream(utterance(live=True), continuous=False)):
            items.append(item)
            if isinstance(item, SpeechActivity) and item.started:
                for frame in GARBAGE[:-1]:  # in the middle of a turn too (an "error" there drops it)
                    await server.inject(frame)
        assert await replies(items) == [REPLY]
        assert stt_backend.stats()["malformed_events"] == 6  # 3 frames, twice
        assert "ignored a malformed event" in caplog.text
        assert "OpenAI Realtime error unknown: the server reported an error without details (between turns" in caplog.text
        assert len(server.connections) == 1
