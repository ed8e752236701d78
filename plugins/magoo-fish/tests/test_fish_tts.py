"""The fish backend against the loopback server: streaming, the sentence pipeline, retries, errors."""

from __future__ import annotations

import contextlib
import logging
import shutil
import subprocess
import sys
import time

import pytest
from pydantic import ValidationError

import magoo_fish
from magoo_core import AudioChunk, BackendError, EncodedAudio
from magoo_core.testing import run_profile
from magoo_fish import FishTextToSpeech
from magoo_fish.loopback import audio as loopback_audio
from magoo_fish.loopback import LoopbackFishServer
from magoo_fish.sentences import plan_requests

from fish_helpers import KEY, SENTENCE, backend, joined, no_wait, speak, unused_port

TEN = " ".join(
    f"This is sentence {word} of the reply." for word in
    ("one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten")
)


async def expected_audio(texts: list[str], fmt: str, sample_rate: int | None = None) -> bytes:
    return b"".join([(await loopback_audio.encode(t, fmt, sample_rate)).data for t in texts])


# ---- streaming and output -------------------------------------------------------------------------


async def test_mp3_streams_as_encoded_audio_that_is_yielded_before_the_server_finished(server):
    server.slow_chunks(0.03)
    first_piece_at = None
    pieces = []
    async with backend(server) as tts:
        async for piece in tts.synthesize(SENTENCE):
            first_piece_at = first_piece_at or time.monotonic()
            pieces.append(piece)
    (record,) = server.requests
    assert first_piece_at < record.finished_at  # played while the server was still sending
    assert len(pieces) > 3
    assert all(isinstance(p, EncodedAudio) and p.codec == "mp3" and p.sample_rate == 44100 for p in pieces)
    assert joined(pieces) == await expected_audio([SENTENCE], "mp3")
    assert tts.output_format == "mp3"  # what the player is told to get ready for


async def test_wav_becomes_pcm_chunks_at_the_asked_rate(server):
    async with backend(server, format="wav", sample_rate=16000) as tts:
        pieces = await speak(tts, "First sentence. Second sentence.")
    assert all(isinstance(p, AudioChunk) and p.sample_rate == 16000 and p.channels == 1 for p in pieces)
    assert {p.format for p in pieces} == {tts.output_format}
    # two requests, two WAV files: their headers are gone, the samples join seamlessly
    assert joined(pieces) == await expected_audio(["First sentence.", "Second sentence."], "pcm", 16000)


async def test_pcm_becomes_chunks_of_whole_samples_at_44100_by_default():
    async with LoopbackFishServer(KEY, chunk_bytes=1001) as server:  # odd chunks split samples
        async with backend(server, format="pcm") as tts:
            pieces = await speak(tts)
    assert all(isinstance(p, AudioChunk) and p.sample_rate == 44100 and len(p.pcm) % 2 == 0 for p in pieces)
    assert {p.format for p in pieces} == {tts.output_format}
    assert joined(pieces) == await expected_audio([SENTENCE], "pcm")


async def test_opus_is_encoded_audio_at_48_khz(server):
    if shutil.which("opusenc") is None:
        pytest.skip("opusenc is not installed (apt install opus-tools): the loopback answers opus with HTTP 400")
    async with backend(server, format="opus") as tts:
        pieces = await speak(tts)
    assert all(isinstance(p, EncodedAudio) and p.codec == "opus" and p.sample_rate == 48000 for p in pieces)
    assert tts.output_format == "opus"
    assert joined(pieces).startswith(b"OggS")
    assert server.requests[0].body["format"] == "opus"


# ---- what is sent ---------------------------------------------------------------------------------


async def test_defaults_send_no_prosody_and_the_default_model(server):
    async with backend(server) as tts:
        await speak(tts)
    (record,) = server.requests
    assert record.headers["model"] == "s2-pro"
    assert record.body["prosody"] is None and record.body["reference_id"] is None
    assert record.body["latency"] == "balanced" and record.body["format"] == "mp3"


async def test_options_reach_the_request(server):
    options = dict(voice_id="voice-123", model="s1", speed=1.2, volume=-6.0, latency="normal", chunk_length=150,
                   normalize=False, temperature=0.3, top_p=0.9, mp3_bitrate=64, sample_rate=32000)
    async with backend(server, **options) as tts:
        await speak(tts)
    (record,) = server.requests
    assert record.headers["model"] == "s1"
    assert record.body["reference_id"] == "voice-123"
    assert record.body["prosody"] == {"speed": 1.2, "volume": -6.0}
    assert {k: record.body[k] for k in ("latency", "chunk_length", "normalize", "temperature", "top_p",
                                        "mp3_bitrate", "sample_rate")} == {
        "latency": "normal", "chunk_length": 150, "normalize": False, "temperature": 0.3, "top_p": 0.9,
        "mp3_bitrate": 64, "sample_rate": 32000}


async def test_only_a_changed_speed_or_volume_sends_prosody(server):
    async with backend(server, volume=3.0) as tts:
        await speak(tts)
    assert server.requests[0].body["prosody"] == {"speed": 1.0, "volume": 3.0}


def test_a_sample_rate_that_does_not_fit_the_format_is_refused():
    for fmt, rate in (("mp3", 16000), ("opus", 44100), ("wav", 22050)):
        with pytest.raises(ValidationError, match=f"sample_rate {rate} does not work with format '{fmt}'"):
            FishTextToSpeech.Config(api_key=KEY, format=fmt, sample_rate=rate)
    FishTextToSpeech.Config(api_key=KEY, format="pcm", sample_rate=16000)


# ---- sentences and the pipeline -------------------------------------------------------------------


async def test_a_long_reply_goes_out_sentence_first_then_pipelined():
    async with LoopbackFishServer(KEY, chunk_bytes=4096) as server:
        server.slow_chunks(0.015)
        async with backend(server, format="pcm", sample_rate=8000, max_chars=80) as tts:
            pieces = await speak(tts, TEN)
        assert server.protocol_errors == []
    texts = [r.text for r in server.requests]
    assert texts[0] == "This is sentence one of the reply."  # as early as a one-sentence reply
    assert texts == plan_requests(TEN, 80) and len(texts) == 1 + 5  # then two sentences a request
    assert " ".join(texts) == TEN
    assert joined(pieces) == await expected_audio(texts, "pcm", 8000)  # every sentence, in order, once
    requests = server.requests
    for k in range(len(requests) - 1):
        assert requests[k + 1].received_at < requests[k].finished_at  # fetched while k was streaming
    for k in range(len(requests) - 2):
        assert requests[k + 2].received_at > requests[k].finished_at  # exactly one ahead


async def test_a_one_sentence_reply_is_one_request(server):
    async with backend(server) as tts:
        await speak(tts, "Just this.")
    assert [r.text for r in server.requests] == ["Just this."]


async def test_nothing_to_say_sends_nothing(server):
    async with backend(server) as tts:
        assert await speak(tts, "  \n ") == []
    assert server.requests == []


async def test_closing_the_stream_early_cancels_the_request_in_flight_and_the_prefetch():
    async with LoopbackFishServer(KEY, chunk_bytes=2048) as server:
        server.slow_chunks(0.05)
        async with backend(server, max_chars=60) as tts:
            stream = tts.synthesize(TEN)
            await anext(stream)
            await server.wait_for(lambda: len(server.requests) == 2)  # the prefetch went out
            await stream.aclose()  # barge-in
            await server.wait_for(lambda: all(r.finished_at for r in server.requests))
        assert [r.aborted for r in server.requests] == [True, True]
        assert len(server.requests) == 2  # nothing more was asked for


# ---- failures -------------------------------------------------------------------------------------


async def test_a_rejected_key_is_one_clear_error_and_not_retried(server):
    async with backend(server, api_key="wrong-key") as tts:
        with pytest.raises(BackendError) as raised:
            await speak(tts)
    error = raised.value
    assert error.message == "Fish Audio rejected the API key (HTTP 401): check FISH_API_KEY (the [tts] api_key)"
    assert error.retryable is False
    assert len(server.requests) == 1


async def test_429_then_success_is_retried_and_the_audio_is_complete(server):
    server.fail_next(429)
    async with backend(server) as tts:
        asked = no_wait(tts)
        pieces = await speak(tts)
    assert [r.status for r in server.requests] == [429, 200]
    assert len(asked) == 1
    assert joined(pieces) == await expected_audio([SENTENCE], "mp3")


async def test_an_overloaded_server_is_given_up_after_the_retries(server):
    server.fail_next(503, times=10)
    async with backend(server, retries=2) as tts:
        asked = no_wait(tts)
        with pytest.raises(BackendError) as raised:
            await speak(tts)
    assert raised.value.message == "Fish Audio is overloaded (HTTP 503: high load) after 3 attempts"
    assert raised.value.retryable
    assert len(server.requests) == 3 and len(asked) == 2
    assert asked[1] > asked[0] / 2  # backoff grows (each delay jittered within half of its nominal value)


async def test_retry_after_is_the_delay_used(server):
    server.fail_next(429, retry_after=2.5)
    server.fail_next(503, retry_after=0.0)
    async with backend(server, retries=3) as tts:
        asked = no_wait(tts)
        await speak(tts)
    assert asked == [2.5, 0.0]
    assert tts.retry_delays == [2.5, 0.0]
    assert len(server.requests) == 3


async def test_a_long_retry_after_is_not_waited_for(server):
    server.fail_next(429, retry_after=120)
    async with backend(server) as tts:
        asked = no_wait(tts)
        with pytest.raises(BackendError) as raised:
            await speak(tts)
    assert raised.value.message == (
        "Fish Audio is rate limiting (HTTP 429: Rate limit exceeded, please slow down); it asks to wait 120 s"
    )
    assert asked == [] and len(server.requests) == 1


@pytest.mark.parametrize(
    ("status", "message", "retryable"),
    [
        (402, "no credit left on the Fish Audio account (HTTP 402): top it up at https://fish.audio", False),
        (404, "Fish Audio has no voice 'nobody' or model 's2-pro' (HTTP 404: Not found): check voice_id and model in [tts]", False),
        (403, "Fish Audio rejected the API key (HTTP 403): check FISH_API_KEY (the [tts] api_key)", False),
        (400, "Fish Audio refused the request (HTTP 400: Bad request): check the [tts] options", False),
    ],
)
async def test_errors_that_retrying_cannot_fix(server, status, message, retryable):
    server.fail_next(status)
    async with backend(server, voice_id="nobody") as tts:
        no_wait(tts)
        with pytest.raises(BackendError) as raised:
            await speak(tts)
    assert (raised.value.message, raised.value.retryable) == (message, retryable)
    assert len(server.requests) == 1


async def test_no_first_byte_in_time_is_a_clear_error(server):
    server.stall_next()
    async with backend(server, first_byte_timeout=0.3, retries=0) as tts:
        with pytest.raises(BackendError) as raised:
            await speak(tts)
    assert raised.value.message == "Fish Audio sent no audio within 0.3 s"
    await server.wait_for(lambda: server.requests[0].aborted)  # the connection was closed, not left hanging


async def test_a_slow_first_byte_is_retried(server):
    server.delay_next(3.0)
    async with backend(server, first_byte_timeout=0.3, retries=1) as tts:
        asked = no_wait(tts)
        pieces = await speak(tts)
    assert len(server.requests) == 2 and len(asked) == 1
    assert server.requests[0].aborted and server.requests[1].status == 200
    assert joined(pieces) == await expected_audio([SENTENCE], "mp3")


async def test_an_unreachable_server_is_named_in_the_error():
    url = f"http://127.0.0.1:{unused_port()}"
    async with backend(url, retries=1) as tts:
        no_wait(tts)
        with pytest.raises(BackendError) as raised:
            await speak(tts)
    assert raised.value.message == f"cannot reach Fish Audio at {url}: connection refused after 2 attempts"
    assert raised.value.retryable


async def test_a_stream_that_stalls_after_audio_was_played_is_an_error(server):
    server.slow_chunks(2.0)
    async with backend(server, read_timeout=0.2) as tts:
        asked = no_wait(tts)
        with pytest.raises(BackendError) as raised:
            await speak(tts)
    assert raised.value.message == f"Fish Audio's stream stalled: no audio for 0.2 s after {server.chunk_bytes} bytes"
    assert asked == [] and len(server.requests) == 1
    await server.wait_for(lambda: server.requests[0].aborted)


async def test_a_stream_that_breaks_off_after_audio_was_played_is_an_error(server):
    server.slow_chunks(0.02)
    server.drop_next(after_bytes=10000)
    pieces = []
    async with backend(server) as tts:
        no_wait(tts)
        with pytest.raises(BackendError) as raised:
            async for piece in tts.synthesize(SENTENCE):
                pieces.append(piece)
    assert raised.value.message.startswith("Fish Audio's stream broke off after 10000 bytes (")
    assert len(joined(pieces)) == 10000  # what came was played
    assert len(server.requests) == 1  # audio was heard: a retry would repeat it


async def test_a_prefetched_request_that_breaks_before_it_is_played_is_retried():
    async with LoopbackFishServer(KEY, chunk_bytes=2048) as server:
        server.slow_chunks(0.03)
        async with backend(server, max_chars=60) as tts:
            no_wait(tts)
            stream = tts.synthesize("This first sentence streams slowly for a while. Then this one breaks.")
            pieces = [await anext(stream)]
            server.drop_next(after_bytes=100)  # the next request (the prefetch) breaks early
            async for piece in stream:
                pieces.append(piece)
    texts = [r.text for r in server.requests]
    assert texts == ["This first sentence streams slowly for a while.", "Then this one breaks.", "Then this one breaks."]
    assert server.requests[1].dropped and server.requests[1].finished_at < server.requests[0].finished_at
    assert joined(pieces) == await expected_audio(texts[:2], "mp3")  # the broken start was thrown away


async def test_stats_count_requests_retries_and_bytes(server):
    server.fail_next(503)
    async with backend(server) as tts:
        no_wait(tts)
        pieces = await speak(tts, "One. Two.")
        assert tts.stats() == {"requests": 2, "retries": 1, "failures": 0, "bytes": len(joined(pieces))}


def test_importing_the_plugin_imports_neither_httpx_nor_the_sdk():
    code = "import sys, magoo_fish; print(sorted({'httpx', 'fish_audio_sdk', 'h11'} & set(sys.modules)))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    assert result.stdout.strip() == "[]"


async def test_synthesize_outside_async_with_says_so():
    tts = backend("http://127.0.0.1:9")
    with pytest.raises(BackendError, match="not started"):
        await speak(tts)


# ---- the key stays secret -------------------------------------------------------------------------


async def test_the_key_is_never_logged_nor_in_a_message(server, caplog):
    caplog.set_level(logging.DEBUG)  # root and every library logger, httpx and httpcore included
    server.fail_next(401)
    async with backend(server) as tts:
        with pytest.raises(BackendError) as scripted:
            await speak(tts)
        await speak(tts, "One sentence. And another one.")
    async with backend(server, api_key="wrong" + KEY) as tts:
        with pytest.raises(BackendError) as rejected:
            await speak(tts)
    assert {r.name.split(".")[0] for r in caplog.records} >= {"httpx", "httpcore"}
    assert "magoo.fish" in {r.name for r in caplog.records}
    assert KEY not in caplog.text
    for error in (scripted.value, rejected.value):
        assert KEY not in error.message and KEY not in repr(error)


# ---- in the engine --------------------------------------------------------------------------------


async def test_a_turn_of_the_engine_speaks_through_fish(server):
    record = await run_profile(
        {"tts": {"backend": "fish", "api_key": {"env": "FISH_API_KEY"}, "base_url": server.base_url, "format": "pcm"}},
        plugins=[magoo_fish], environ={"FISH_API_KEY": KEY},
    )
    assert record.failures == []
    (reply,) = record.replies
    assert [r.text for r in server.requests] == plan_requests(reply, 250)
    assert joined(record.plays[0]) == await expected_audio([r.text for r in server.requests], "pcm")


async def test_a_rejected_key_fails_the_turn_with_the_hint(server):
    record = await run_profile(
        {"tts": {"backend": "fish", "api_key": {"env": "FISH_API_KEY"}, "base_url": server.base_url}},
        plugins=[magoo_fish], environ={"FISH_API_KEY": "not-the-key"},
    )
    (failure,) = record.failures
    assert failure.role == "tts" and failure.retryable is False
    assert "check FISH_API_KEY" in failure.message
