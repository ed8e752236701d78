"""``magoo doctor`` for ``[responder] openai``: the endpoint answers, takes the key, has the model;
the key itself is never in a row."""

from __future__ import annotations

import asyncio

from magoo_core.doctor import Result
from magoo_core.doctor.context import PLACEHOLDER
from magoo_core.fields import EnvText
from magoo_openai import ChatResponder
from magoo_openai.loopback import LoopbackOpenAIServer

from chat_helpers import KEY, VARIABLE, config


async def rows(cfg: ChatResponder.Config):
    return await asyncio.to_thread(ChatResponder.doctor, cfg, "[responder]")


async def test_an_endpoint_that_answers_with_the_model_is_ok(server):
    (row,) = await rows(config(server, model="gpt-4o-mini"))
    assert row.result is Result.OK and "answers with the key; model gpt-4o-mini is there" in row.found
    assert server.requests[-1].path == "/v1/models"
    assert server.requests[-1].headers["authorization"] == f"Bearer {KEY}"


async def test_a_model_the_server_lacks_is_a_warning_listing_those_it_has(server):
    (row,) = await rows(config(server, model="llama9"))
    assert row.result is Result.WARN and "lists no model llama9" in row.found and "llama3.2" in row.found
    assert "ollama pull llama9" in row.fix


async def test_a_rejected_key_names_its_variable_not_its_value():
    async with LoopbackOpenAIServer(api_key="sk-some-other-key-555") as server:
        (row,) = await rows(config(server))
    assert row.result is Result.FAIL and "rejected the API key (HTTP 401)" in row.found
    assert row.fix == f"check {VARIABLE}"
    assert KEY not in row.found + row.fix


async def test_a_key_not_set_is_not_sent(server):
    (row,) = await rows(config(server, api_key=EnvText(PLACEHOLDER, VARIABLE)))
    assert row.result is Result.FAIL and f"{VARIABLE} is not set" in row.found
    assert server.requests == []


async def test_a_local_server_without_a_key_is_fine():
    async with LoopbackOpenAIServer(api_key=None) as server:
        (row,) = await rows(ChatResponder.Config(base_url=server.base_url, model="llama3.2"))
    assert row.result is Result.OK and "answers without a key" in row.found


def test_openai_without_a_key_fails_without_asking():
    (row,) = ChatResponder.doctor(ChatResponder.Config(), "[responder]")
    assert row.result is Result.FAIL and "needs an API key" in row.found and 'api_key = { env = "OPENAI_API_KEY" }' in row.fix


async def test_nothing_listening_says_to_start_the_server_or_fix_base_url():
    async with LoopbackOpenAIServer(api_key=None) as server:
        pass  # stopped: its port is closed now
    (row,) = await rows(ChatResponder.Config(base_url=server.base_url))
    assert row.result is Result.FAIL and "cannot reach" in row.found and "fix base_url" in row.fix


async def test_three_backends_on_one_endpoint_ask_it_once_and_each_gets_its_model_checked(server):
    from magoo_openai.stt import OpenAISpeechToText
    from magoo_openai.tts import OpenAITextToSpeech

    endpoint = {"base_url": server.base_url, "api_key": EnvText(KEY, VARIABLE)}
    stt = await asyncio.to_thread(OpenAISpeechToText.doctor, OpenAISpeechToText.Config(model="whisper-1", **endpoint), "[stt]")
    tts = await asyncio.to_thread(OpenAITextToSpeech.doctor, OpenAITextToSpeech.Config(model="kokoro", **endpoint), "[tts]")
    (chat,) = await rows(config(server, model="gpt-4o-mini"))
    assert [row.check for row in stt] == ["[stt] end of speech", "[stt] openai"] and stt[1].result is Result.OK
    assert tts[0].result is Result.WARN and "lists no model kokoro" in tts[0].found
    assert chat.result is Result.OK
    assert [r.path for r in server.requests] == ["/v1/models"]  # one request for the three


async def test_an_endpoint_that_fails_is_one_row_for_the_backends_that_share_it():
    async with LoopbackOpenAIServer(api_key="sk-another-key-0000000000") as server:
        first = await rows(config(server))
        second = await rows(config(server, model="gpt-4o"))
    assert [(row.result, "rejected the API key (HTTP 401)" in row.found) for row in first] == [(Result.FAIL, True)]
    assert second == [] and len(server.requests) == 1
