"""The loopback server speaks the Chat Completions wire protocol: SSE chunks like the API's, tool-call
deltas split across chunks, a usage chunk, [DONE]; it refuses what the API refuses; its errors
never echo the key."""

from __future__ import annotations

import json

import aiohttp
import openai
import pytest

from magoo_openai.loopback import Call, Fault, LoopbackOpenAIServer

from chat_helpers import KEY

MESSAGES = [{"role": "user", "content": "hello"}]


async def raw_stream(server: LoopbackOpenAIServer, body: dict, key: str = KEY) -> tuple[int, list[str]]:
    """The ``data:`` payloads of a streamed answer, as sent."""
    async with aiohttp.ClientSession() as session:
        async with session.post(f"{server.base_url}/chat/completions", json=body,
                                headers={"Authorization": f"Bearer {key}"}) as response:
            text = await response.text()
    events = [block for block in text.split("\n\n") if block]
    assert all(block.startswith("data: ") for block in events), text
    return response.status, [block[len("data: "):] for block in events]


async def test_a_streamed_reply_is_role_chunk_content_chunks_finish_usage_and_done(server):
    server.options["replies"] = None
    status, data = await raw_stream(server, {"model": "gpt-4o-mini", "messages": MESSAGES, "stream": True,
                                              "stream_options": {"include_usage": True}})

    assert status == 200
    assert data[-1] == "[DONE]"
    chunks = [json.loads(d) for d in data[:-1]]
    assert {c["object"] for c in chunks} == {"chat.completion.chunk"}
    assert len({c["id"] for c in chunks}) == 1
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])
    assert text == "You said: hello"
    assert [c["choices"][0]["finish_reason"] for c in chunks if c["choices"]][-1] == "stop"
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["completion_tokens"] == 3
    assert all(c["usage"] is None for c in chunks[:-1])


async def test_tool_calls_are_split_across_chunks_by_index_with_the_id_only_in_the_first():
    arguments = json.dumps({"seconds": 300, "name": "pasta"})
    async with LoopbackOpenAIServer(api_key=KEY, replies=[[Call("timer_set", arguments), Call("time")]]) as server:
        _, data = await raw_stream(server, {"model": "m", "messages": MESSAGES, "stream": True})

    deltas = [json.loads(d)["choices"][0]["delta"] for d in data[:-1]]
    pieces = [call for d in deltas for call in d.get("tool_calls") or ()]
    first = [p for p in pieces if p["index"] == 0]
    assert first[0]["id"].startswith("call_") and first[0]["function"]["name"] == "timer_set"
    assert all("id" not in p for p in first[1:]) and len(first) > 2
    assert "".join(p["function"]["arguments"] for p in first) == arguments
    assert [p["function"]["name"] for p in pieces if p["index"] == 1 and "id" in p] == ["time"]
    assert json.loads(data[-2])["choices"][0]["finish_reason"] == "tool_calls"


async def test_the_sdk_reads_the_stream(server):
    client = openai.AsyncOpenAI(base_url=server.base_url, api_key=KEY, max_retries=0)
    stream = await client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True,
                                                  stream_options={"include_usage": True})
    text = "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])
    await client.close()
    assert text == "You said: hello"


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"messages": MESSAGES}, "model"),
        ({"model": "m", "messages": []}, "messages"),
        ({"model": "m", "messages": [{"role": "robot", "content": "x"}]}, "messages[0].role"),
        ({"model": "m", "messages": [{"role": "tool", "tool_call_id": "call_1", "content": "x"}]}, "messages[0].role"),
        ({"model": "m", "messages": MESSAGES, "tools": [{"type": "function", "function": {"name": "a b"}}]},
         "tools[0].function.name"),
        ({"model": "m", "messages": MESSAGES, "tools": [{"type": "function", "function": {"name": "a", "parameters": {"type": "array"}}}]},
         "tools[0].function.parameters"),
        ({"model": "m", "messages": MESSAGES, "stream_options": {"include_usage": True}}, "stream_options"),
        ({"model": "m", "messages": MESSAGES, "temperature": 3}, "temperature"),
        ({"model": "m", "messages": MESSAGES, "colour": "red"}, "colour"),
    ],
)
async def test_requests_the_api_refuses_get_400_naming_the_parameter(server, body, param):
    async with aiohttp.ClientSession() as session:
        async with session.post(f"{server.base_url}/chat/completions", json=body,
                                headers={"Authorization": f"Bearer {KEY}"}) as response:
            error = (await response.json())["error"]
    assert response.status == 400
    assert error["param"] == param and error["type"] == "invalid_request_error"


async def test_a_wrong_key_gets_401_without_the_key_in_the_answer(server):
    wrong = "sk-wrong-key-4e2f8a9b7c6d"
    async with aiohttp.ClientSession() as session:
        async with session.post(f"{server.base_url}/chat/completions", json={"model": "m", "messages": MESSAGES},
                                headers={"Authorization": f"Bearer {wrong}"}) as response:
            text = await response.text()
    assert response.status == 401
    assert json.loads(text)["error"]["code"] == "invalid_api_key"
    assert wrong not in text and KEY not in text and "4e2f" not in text


async def test_faults_are_taken_in_order_and_retry_after_is_sent(server):
    server.fail_next(Fault(status=429, retry_after=12), Fault(status=503))
    statuses = []
    async with aiohttp.ClientSession() as session:
        for _ in range(3):
            async with session.post(f"{server.base_url}/chat/completions", json={"model": "m", "messages": MESSAGES},
                                    headers={"Authorization": f"Bearer {KEY}"}) as response:
                statuses.append((response.status, response.headers.get("Retry-After")))
    assert statuses == [(429, "12"), (503, None), (200, None)]


async def test_a_server_without_a_key_takes_any_request_and_lists_models():
    async with LoopbackOpenAIServer(api_key=None) as server:
        client = openai.AsyncOpenAI(base_url=server.base_url, api_key="anything", max_retries=0)
        models = [m.id async for m in client.models.list()]
        reply = await client.chat.completions.create(model="llama3.2", messages=MESSAGES)
        await client.close()
    assert "llama3.2" in models
    assert reply.choices[0].message.content == "You said: hello"


async def test_a_fault_for_another_path_waits_for_a_request_to_that_path(server):
    server.fail_next(Fault(status=500, path="/v1/audio/speech"))
    async with aiohttp.ClientSession() as session:
        async with session.post(f"{server.base_url}/chat/completions", json={"model": "m", "messages": MESSAGES},
                                headers={"Authorization": f"Bearer {KEY}"}) as response:
            assert response.status == 200
        async with session.post(f"{server.base_url}/audio/speech", json={},
                                headers={"Authorization": f"Bearer {KEY}"}) as response:
            assert response.status == 500  # taken here, before any route (this server has no audio routes)
