"""[stt] openai: the real openai SDK against the loopback transcription endpoint, on recordings."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from magoo_core import AudioChunk, BackendError
from magoo_core.testing.contracts import SpeechToTextContract
from magoo_core.types import SpeechActivity, Transcript
from magoo_openai.loopback import AudioLoopback, Fault, LoopbackOpenAIServer
from magoo_openai.stt import OpenAISpeechToText

from openai_audio_helpers import KEY, LONG_SPEECH, PAUSED, QUESTION, loopback, loopback_server, pcm, quiet, section, stream  # noqa: F401

COMMAND = "set a timer for five minutes"


def make(url: str, **options: Any) -> OpenAISpeechToText:
    return OpenAISpeechToText(OpenAISpeechToText.Config(**section(url, **options)))


async def transcribe(stt: OpenAISpeechToText, audio) -> list[Any]:
    async with stt:
        return [item async for item in stt.transcribe(audio)]


def finals(items: list[Any]) -> list[str]:
    return [item.text for item in items if isinstance(item, Transcript) and item.final]


class TestContract(SpeechToTextContract):
    backend_class = OpenAISpeechToText
    config = {"base_url": "http://127.0.0.1:9/v1"}

    def utterance(self, fmt):
        return [AudioChunk(quiet(0.3) + pcm(QUESTION) + quiet(1.0), 16000)]

    async def entered(self, coro_factory):
        async with LoopbackOpenAIServer(api_key=None, audio=AudioLoopback(transcripts=["what time is it"])) as server:
            async with make(server.base_url) as stt:
                return await coro_factory(stt)


async def test_a_command_with_a_pause_is_sent_whole_as_one_wav(loopback):
    server, url = loopback
    server.transcripts = [COMMAND]
    items = await transcribe(make(url, language="en", prompt="timers"), stream(quiet(0.5) + pcm(PAUSED) + quiet(1.5)))
    kinds = [f"speech:{item.started}" if isinstance(item, SpeechActivity) else f"final:{item.final}" for item in items]
    assert kinds[:2] == ["speech:True", "speech:False"] and kinds[-1] == "final:True"
    assert set(kinds[2:-1]) == {"final:False"}  # the partial transcripts of the default model
    assert finals(items) == [COMMAND]
    (upload,) = server.uploads
    assert (upload.sample_rate, upload.channels, upload.filename) == (16000, 1, "speech.wav")
    # the whole command (2.42 s, its pause included) with a little before and after, not half of it
    assert 2.2 <= upload.seconds <= 2.42 + 0.3 + 0.2 + 0.1
    assert upload.fields == {"model": "gpt-4o-mini-transcribe", "language": "en", "prompt": "timers", "stream": "true"}


async def test_speech_boundaries_are_in_the_order_they_were_heard(loopback):
    server, url = loopback
    server.transcripts = [COMMAND]
    items = await transcribe(make(url), stream(quiet(0.5) + pcm(PAUSED) + quiet(1.5)))
    start, end = [item for item in items if isinstance(item, SpeechActivity)]
    assert start.started and not end.started and start.timestamp < end.timestamp


async def test_a_streaming_model_gives_partial_transcripts_first(loopback):
    server, url = loopback
    server.transcripts = [COMMAND]
    items = await transcribe(make(url, model="gpt-4o-transcribe"), stream(quiet(0.3) + pcm(PAUSED) + quiet(1.0)))
    texts = [(item.text, item.final) for item in items if isinstance(item, Transcript)]
    assert texts[0] == ("set", False)
    assert [text for text, final in texts if not final][-1] == COMMAND
    assert texts[-1] == (COMMAND, True)
    assert server.uploads[0].fields["stream"] == "true"


async def test_whisper_is_asked_for_json_not_a_stream(loopback):
    server, url = loopback
    server.transcripts = ["what time is it"]
    items = await transcribe(make(url, model="whisper-1"), stream(quiet(0.3) + pcm(QUESTION) + quiet(1.0)))
    assert [(item.text, item.final) for item in items if isinstance(item, Transcript)] == [("what time is it", True)]
    assert server.uploads[0].fields == {"model": "whisper-1", "response_format": "json"}


async def test_nothing_said_after_the_wake_word_ends_the_turn_with_nothing_heard(loopback):
    server, url = loopback
    consumed: list[int] = []
    items = await transcribe(make(url, no_speech=1.0), stream(quiet(5.0), consumed=consumed))
    assert items == [Transcript("", final=True)]
    assert server.uploads == []
    assert len(consumed) * 0.08 < 2.0  # it stopped listening after about a second, not at the audio's end


async def test_audio_that_ends_without_speech_gives_an_empty_final(loopback):
    server, url = loopback
    assert await transcribe(make(url), stream(quiet(1.0))) == [Transcript("", final=True)]


async def test_audio_that_ends_mid_utterance_sends_what_was_heard(loopback):
    server, url = loopback
    server.transcripts = ["set a timer for"]
    audio = quiet(0.5) + pcm(PAUSED)[: 16000 * 2]  # the engine's capture time ran out in the pause
    items = await transcribe(make(url), stream(audio))
    assert finals(items) == ["set a timer for"]
    assert 1.0 < server.uploads[0].seconds <= 2.2


async def test_a_long_utterance_is_cut_at_max_seconds(loopback):
    server, url = loopback
    server.transcripts = ["a license"]
    items = await transcribe(make(url, max_seconds=3.0), stream(pcm(LONG_SPEECH)[: 16000 * 2 * 10]))
    assert finals(items) == ["a license"]
    assert server.uploads[0].seconds <= 3.0 + 0.3 + 0.1


async def test_continuous_mode_gives_turn_after_turn(loopback):
    server, url = loopback
    server.transcripts = ["what time is it", COMMAND]
    audio = quiet(0.5) + pcm(QUESTION) + quiet(1.5) + pcm(PAUSED) + quiet(1.5)
    items = await transcribe(make(url, model="whisper-1"), stream(audio, continuous=True))
    assert finals(items) == ["what time is it", COMMAND]
    assert [item.started for item in items if isinstance(item, SpeechActivity)] == [True, False, True, False]
    assert len(server.uploads) == 2


# ---- faults -------------------------------------------------------------------------------------


async def failure(stt: OpenAISpeechToText, audio=None) -> BackendError:
    with pytest.raises(BackendError) as caught:
        await transcribe(stt, audio or stream(quiet(0.3) + pcm(QUESTION) + quiet(1.0)))
    assert "\n" not in caught.value.message
    assert KEY not in caught.value.message and KEY[3:] not in caught.value.message
    return caught.value


async def test_a_rejected_key_names_the_variable_to_fix(loopback):
    server, url = loopback
    error = await failure(make(url, api_key="sk-wrong-key-000000000000"))
    assert not error.retryable
    assert "rejected the API key (HTTP 401)" in error.message and "OPENAI_API_KEY" in error.message
    assert "sk-wrong-key" not in error.message


async def test_a_server_that_wants_a_key_says_how_to_give_one(loopback):
    server, url = loopback
    error = await failure(OpenAISpeechToText(OpenAISpeechToText.Config(base_url=url)))
    assert 'add api_key = { env = "OPENAI_API_KEY" }' in error.message and not error.retryable


async def test_a_local_server_without_keys_needs_none(loopback, loopback_server):
    server, url = loopback
    loopback_server.api_key = None
    server.transcripts = ["what time is it"]
    items = await transcribe(OpenAISpeechToText(OpenAISpeechToText.Config(base_url=url)), stream(quiet(0.3) + pcm(QUESTION) + quiet(1.0)))
    assert finals(items) == ["what time is it"]


async def test_rate_limiting_says_how_long_the_server_asks_to_wait(loopback, loopback_server):
    server, url = loopback
    loopback_server.fail_next(Fault(status=429, retry_after=7))
    error = await failure(make(url))
    assert "rate limiting (HTTP 429: Rate limit reached for requests. Please try again later.): try again in 7 s" in error.message
    assert error.retryable and server.uploads == []  # not retried: 7 s is too long for a turn


async def test_a_short_retry_after_is_waited_for_once(loopback, loopback_server):
    server, url = loopback
    loopback_server.fail_next(Fault(status=429, retry_after=0.05))
    server.transcripts = ["what time is it"]
    items = await transcribe(make(url), stream(quiet(0.3) + pcm(QUESTION) + quiet(1.0)))
    assert finals(items) == ["what time is it"] and [r.status for r in loopback_server.requests] == [429, 200]


async def test_a_server_error_is_retried_then_reported(loopback, loopback_server):
    server, url = loopback
    loopback_server.fail_next(Fault(status=500), Fault(status=500))
    error = await failure(make(url, retries=1))
    assert "failed (HTTP 500: The server had an error while processing your request. Sorry about that!)" in error.message
    assert error.retryable and [r.status for r in loopback_server.requests] == [500, 500]


@pytest.mark.parametrize(
    ("fault", "message"),
    [
        # the stall outlasts the 0.5 s timeout: real waiting, 0.5 s
        ("stall", "stalled: nothing more of the transcription within 0.5 s after 3 events"),
        ("drop", "the transcription broke off after 3 events"),
        ("malformed", "sent a stream that is not valid server-sent JSON events"),
    ],
)
async def test_a_transcript_stream_that_goes_wrong_ends_in_one_line(loopback, loopback_server, fault, message):
    server, url = loopback
    loopback_server.fail_next(Fault(stream=fault, after=3))
    server.transcripts = [COMMAND]
    error = await failure(make(url, timeout=0.5))
    assert message in error.message


async def test_an_unreachable_server_is_named():
    stt = OpenAISpeechToText(OpenAISpeechToText.Config(base_url="http://127.0.0.1:9/v1", retries=0, api_key=KEY))
    error = await failure(stt)
    assert "127.0.0.1:9 cannot be reached" in error.message and "check base_url" in error.message


async def test_a_streaming_request_to_a_model_that_cannot_stream_is_refused_clearly(loopback):
    server, url = loopback
    error = await failure(make(url, model="whisper-1", stream=True))
    assert "refused the request (HTTP 400: Streaming is not supported for the model whisper-1.)" in error.message
    assert not error.retryable


async def test_the_key_is_never_logged(loopback, loopback_server, caplog):
    server, url = loopback
    caplog.set_level(logging.DEBUG)
    loopback_server.fail_next(Fault(status=401))
    await failure(make(url))
    server.transcripts = ["what time is it"]
    stt = make(url)
    await transcribe(stt, stream(quiet(0.3) + pcm(QUESTION) + quiet(1.0)))
    assert caplog.records  # the SDK and the HTTP library did log at DEBUG
    assert KEY not in caplog.text and KEY not in repr(stt.config) and KEY not in str(stt.stats())


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"base_url": "api.openai.com/v1"}, "must start with http:// or https://"),
        ({"language": "english"}, "two-letter ISO-639-1 code"),
        ({"end_silence": 0.0}, "greater than or equal to 0.1"),
        ({"model": ""}, "at least 1 character"),
    ],
)
def test_bad_options_are_refused_with_what_to_write(options, message):
    with pytest.raises(ValueError, match=message):
        OpenAISpeechToText.Config(**options)


async def test_doctor_checks_the_detector_then_the_endpoint_with_the_key_never_showing_it(loopback):
    import asyncio

    from magoo_core.doctor import Result

    without = OpenAISpeechToText.doctor(OpenAISpeechToText.Config(), "[stt]")
    assert [(row.check, row.result) for row in without] == [("[stt] end of speech", Result.OK), ("[stt] openai", Result.FAIL)]
    assert "Silero VAD" in without[0].found and "api_key" in without[1].fix
    _, url = loopback
    keyed = await asyncio.to_thread(OpenAISpeechToText.doctor, make(url, model="whisper-1").config, "[stt]")
    assert [row.result for row in keyed] == [Result.OK, Result.OK]
    assert "answers with the key; model whisper-1 is there" in keyed[1].found
    assert KEY not in repr(keyed)
