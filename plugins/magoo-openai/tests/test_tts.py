"""[tts] openai: the real openai SDK against the loopback speech endpoint."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from magoo_core import AudioChunk, BackendError
from magoo_core.testing.contracts import TextToSpeechContract
from magoo_core.types import AudioFormat, EncodedAudio
from magoo_openai.loopback import AudioLoopback, Fault, LoopbackOpenAIServer
from magoo_openai.tts import OpenAITextToSpeech

from openai_audio_helpers import KEY, loopback, loopback_server, section, tone_pcm  # noqa: F401

SENTENCE = "It is noon."


def make(url: str, **options: Any) -> OpenAITextToSpeech:
    return OpenAITextToSpeech(OpenAITextToSpeech.Config(**section(url, **options)))


async def synthesize(tts: OpenAITextToSpeech, text: str = SENTENCE) -> list[Any]:
    async with tts:
        return [piece async for piece in tts.synthesize(text)]


class TestContract(TextToSpeechContract):
    backend_class = OpenAITextToSpeech
    config = {"base_url": "http://127.0.0.1:9/v1"}

    async def entered(self, coro_factory):
        async with LoopbackOpenAIServer(api_key=None, audio=AudioLoopback(speech=tone_pcm(0.5), pace=0)) as server:
            async with make(server.base_url) as tts:
                return await coro_factory(tts)


async def test_pcm_is_played_as_it_arrives_before_the_answer_is_whole(loopback):
    server, url = loopback
    server.speech, server.pace = tone_pcm(0.5), 1.0  # sent in real time: 0.5 s for the whole answer
    tts = make(url)
    async with tts:
        pieces = tts.synthesize(SENTENCE)
        first = await anext(pieces)
        assert not server.speech_sent.is_set()  # the first sound is out while the server still sends
        rest = [piece async for piece in pieces]
    assert server.speech_sent.is_set()
    audio = [first, *rest]
    assert all(isinstance(p, AudioChunk) and p.format == AudioFormat(24000) for p in audio)
    assert b"".join(p.pcm for p in audio) == server.speech
    assert len(audio) > 1


async def test_pcm_cut_at_odd_bytes_arrives_in_whole_samples(loopback):
    server, url = loopback
    server.speech, server.chunk_bytes, server.pace = tone_pcm(0.3), 2401, 0
    audio = await synthesize(make(url))
    assert all(len(p.pcm) % 2 == 0 for p in audio)
    assert b"".join(p.pcm for p in audio) == server.speech


async def test_the_request_carries_the_options(loopback):
    server, url = loopback
    await synthesize(make(url, model="tts-1", voice="nova", speed=1.25, instructions="cheerful"), "  Hello there.  ")
    assert server.speech_requests == [
        {"model": "tts-1", "voice": "nova", "input": "Hello there.", "response_format": "pcm", "speed": 1.25, "instructions": "cheerful"}
    ]


async def test_instructions_are_left_out_when_there_are_none(loopback):
    server, url = loopback
    await synthesize(make(url))
    assert "instructions" not in server.speech_requests[0]


async def test_mp3_goes_to_the_player_as_encoded_audio(loopback):
    server, url = loopback
    server.speech, server.pace = b"ID3\x04" + bytes(range(256)) * 40, 0
    tts = make(url, response_format="mp3")
    assert tts.output_format == "mp3" == OpenAITextToSpeech.output_kind(tts.config)
    pieces = await synthesize(tts)
    assert all(isinstance(p, EncodedAudio) and p.codec == "mp3" for p in pieces)
    assert b"".join(p.data for p in pieces) == server.speech
    assert server.speech_requests[0]["response_format"] == "mp3"


async def test_a_local_servers_pcm_rate_is_told_up_front(loopback, loopback_server):
    server, url = loopback
    loopback_server.api_key, server.speech, server.pcm_rate = None, tone_pcm(0.2, 22050), 22050
    tts = OpenAITextToSpeech(OpenAITextToSpeech.Config(base_url=url, pcm_rate=22050, model="kokoro", voice="af_heart"))
    assert tts.output_format == AudioFormat(22050) == OpenAITextToSpeech.output_kind(tts.config)
    audio = await synthesize(tts)
    assert {p.sample_rate for p in audio} == {22050}


async def test_empty_text_asks_for_nothing(loopback):
    server, url = loopback
    assert await synthesize(make(url), "   ") == []
    assert server.speech_requests == []


async def test_closing_early_stops_reading(loopback):
    """Barge-in: the engine closes the iterator after the first piece."""
    server, url = loopback
    server.speech, server.pace = tone_pcm(2.0), 1.0
    tts = make(url)
    async with tts:
        pieces = tts.synthesize(SENTENCE)
        await anext(pieces)
        await pieces.aclose()
        assert not server.speech_sent.is_set()
        # the next sentence is asked for on a working client
        server.speech, server.pace = tone_pcm(0.1), 0
        assert [p async for p in tts.synthesize("Next.")]


# ---- faults -------------------------------------------------------------------------------------


async def failure(tts: OpenAITextToSpeech) -> tuple[BackendError, list[Any]]:
    got: list[Any] = []
    with pytest.raises(BackendError) as caught:
        async with tts:
            async for piece in tts.synthesize(SENTENCE):
                got.append(piece)
    message = caught.value.message
    assert "\n" not in message and KEY not in message and KEY[3:] not in message
    return caught.value, got


async def test_a_rejected_key_names_the_variable_to_fix(loopback):
    server, url = loopback
    error, _ = await failure(make(url, api_key="sk-wrong-key-000000000000"))
    assert "[tts] openai" in error.message and "rejected the API key (HTTP 401)" in error.message
    assert "OPENAI_API_KEY" in error.message and not error.retryable


async def test_rate_limiting_says_how_long_to_wait(loopback, loopback_server):
    server, url = loopback
    loopback_server.fail_next(Fault(status=429, retry_after=30))
    error, _ = await failure(make(url))
    assert "rate limiting (HTTP 429: Rate limit reached for requests. Please try again later.): try again in 30 s" in error.message
    assert server.speech_requests == []


async def test_a_server_error_is_retried_once(loopback, loopback_server):
    server, url = loopback
    server.pace = 0
    loopback_server.fail_next(Fault(status=500))
    assert await synthesize(make(url))
    loopback_server.fail_next(Fault(status=500), Fault(status=500))
    error, _ = await failure(make(url))
    assert "failed (HTTP 500" in error.message and error.retryable


async def test_a_stalled_answer_ends_in_one_line_after_what_was_said(loopback, loopback_server):
    server, url = loopback
    server.pace = 0
    loopback_server.fail_next(Fault(stream="stall", after=2))
    error, got = await failure(make(url, timeout=0.5))  # the stall outlasts the timeout: 0.5 s of real waiting
    assert got  # what arrived before the stall was played
    heard = sum(len(p.pcm) for p in got)
    assert f"stalled: nothing more of the speech within 0.5 s after {heard} bytes" in error.message


async def test_a_dropped_answer_ends_in_one_line_after_what_was_said(loopback, loopback_server):
    server, url = loopback
    server.pace = 0
    loopback_server.fail_next(Fault(stream="drop", after=2))
    error, got = await failure(make(url))
    heard = sum(len(p.pcm) for p in got)
    assert got and f"the speech broke off after {heard} bytes" in error.message


async def test_an_empty_answer_is_a_failure(loopback):
    server, url = loopback
    server.speech = b""
    error, _ = await failure(make(url))
    assert "answered with no audio: check model and voice" in error.message


async def test_the_key_is_never_logged(loopback, loopback_server, caplog):
    server, url = loopback
    caplog.set_level(logging.DEBUG)
    server.pace = 0
    loopback_server.fail_next(Fault(status=401))
    await failure(make(url))
    tts = make(url)
    await synthesize(tts)
    assert caplog.records and KEY not in caplog.text and KEY not in repr(tts.config)


def test_bad_options_are_refused():
    with pytest.raises(ValueError, match="less than or equal to 4"):
        OpenAITextToSpeech.Config(speed=5.0)
    with pytest.raises(ValueError, match="'pcm', 'mp3' or 'opus'"):
        OpenAITextToSpeech.Config(response_format="wav")


def test_the_readmes_profile_sections_load():
    """Each ``[stt]``/``[tts]`` openai block of the README is a valid section (the key given as text)."""
    import re
    import tomllib
    from pathlib import Path

    from magoo_openai.stt import OpenAISpeechToText

    readme = (Path(__file__).parents[1] / "README.md").read_text(encoding="utf-8")
    blocks = [tomllib.loads(block) for block in re.findall(r"```toml\n(.*?)```", readme, re.S)]
    sections = [(role, block[role]) for block in blocks for role in ("stt", "tts") if block.get(role, {}).get("backend") == "openai"]
    assert len(sections) >= 4
    for role, values in sections:
        options = {k: ("sk-x" if k == "api_key" else v) for k, v in values.items() if k != "backend"}
        (OpenAISpeechToText if role == "stt" else OpenAITextToSpeech).Config(**options)
