"""What the server may do wrong, through the real SDK: each gives one readable line (a BackendError),
what was said before a failure stays said and remembered, and the key is never in a message."""

from __future__ import annotations

import asyncio

import pytest

from magoo_core.errors import BackendError
from magoo_core.types import Transcript, TurnContext
from magoo_openai.loopback import Fault, LoopbackOpenAIServer

from chat_helpers import KEY, VARIABLE, ask, responder


async def failure(r, text: str = "hello") -> tuple[list[str], BackendError]:
    said: list[str] = []
    with pytest.raises(BackendError) as caught:
        async for delta in r.respond(Transcript(text), context=TurnContext(1)):
            said.append(delta)
    assert KEY not in caught.value.message
    assert "\n" not in caught.value.message
    return said, caught.value


async def test_no_key_for_a_server_that_wants_one_says_how_to_give_it(server):
    async with responder(server, api_key=None) as r:
        _, error = await failure(r)
    assert error.retryable is False
    assert "wants an API key (HTTP 401): add api_key = { env = \"OPENAI_API_KEY\" } to [responder] openai" in error.message


async def test_a_rejected_key_from_the_environment_says_which_variable_to_fix():
    async with LoopbackOpenAIServer(api_key="sk-another-key-987654321") as server:
        async with responder(server) as r:
            _, error = await failure(r)
    assert f"check {VARIABLE}" in error.message and error.retryable is False


async def test_a_rate_limit_says_when_to_try_again(server):
    server.fail_next(Fault(status=429, retry_after=20))
    async with responder(server) as r:
        _, error = await failure(r)
        text, _ = await ask(r, "again", turn=2)  # the next turn works
    assert error.message.startswith("[responder] openai: 127.0.0.1:") and "is rate limiting (HTTP 429" in error.message
    assert error.message.endswith("try again in 20 s")
    assert text == "You said: again"


@pytest.mark.parametrize("status", [500, 502, 503])
async def test_a_server_error_fails_the_turn_and_the_next_one_works(server, status):
    server.fail_next(Fault(status=status))
    async with responder(server) as r:
        _, error = await failure(r)
        text, _ = await ask(r, "again", turn=2)
    assert f"failed (HTTP {status}" in error.message and error.retryable
    assert text == "You said: again"


async def test_retries_retry_a_server_error_that_asks_for_a_short_wait(server):
    server.fail_next(Fault(status=500, retry_after=0))
    async with responder(server, retries=1) as r:
        text, _ = await ask(r, "hello")
    assert text == "You said: hello"


async def test_a_stream_that_stalls_ends_after_timeout_with_what_was_said_kept():
    async with LoopbackOpenAIServer(api_key=KEY, replies=["one two three four"]) as server:
        server.fail_next(Fault(stream="stall", after=2))
        # waits the 0.3 s timeout: the stall is only noticed by time passing
        async with responder(server, timeout=0.3) as r:
            said, error = await failure(r)
            server.unstall()
            await ask(r, "next", turn=2)
    assert said == ["one", " two"]
    assert "stalled: nothing more of the reply within 0.3 s after 3 chunks" in error.message
    assert {"role": "assistant", "content": "one two"} in server.chat_requests()[1]["messages"]


async def test_a_stream_dropped_mid_reply_keeps_what_was_said():
    async with LoopbackOpenAIServer(api_key=KEY, replies=["one two three four"]) as server:
        server.fail_next(Fault(stream="drop", after=3))
        async with responder(server) as r:
            said, error = await failure(r)
            await ask(r, "next", turn=2)
    assert said == ["one", " two", " three"]
    assert error.message.startswith("[responder] openai: 127.0.0.1:") and ": the reply broke off after 4 chunks (" in error.message
    assert {"role": "assistant", "content": "one two three"} in server.chat_requests()[1]["messages"]


async def test_malformed_server_sent_events_fail_with_one_line():
    async with LoopbackOpenAIServer(api_key=KEY, replies=["one two three"]) as server:
        server.fail_next(Fault(stream="malformed", after=1))
        async with responder(server) as r:
            said, error = await failure(r)
    assert said == ["one"]
    assert "not valid server-sent JSON events" in error.message


async def test_nobody_listening_says_to_check_base_url():
    async with LoopbackOpenAIServer(api_key=KEY) as server:
        pass  # stopped: its port is closed now
    async with responder(server) as r:
        _, error = await failure(r)
    assert "127.0.0.1" in error.message and "cannot be reached" in error.message and "check base_url" in error.message


async def test_an_unknown_model_says_to_check_the_model(server):
    server.fail_next(Fault(status=404))
    async with responder(server) as r:
        _, error = await failure(r)
    assert "HTTP 404" in error.message and "check model" in error.message and not error.retryable


async def test_a_request_that_never_answers_times_out(server):
    server.fail_next(Fault(stream="stall", after=0))
    # waits the 0.2 s timeout: nothing but time passing can show a silent server
    async with responder(server, timeout=0.2) as r:
        said, error = await failure(r)
        server.unstall()
    assert said == [] and "stalled: nothing more of the reply within 0.2 s after 1 chunk" in error.message  # its role
    await asyncio.sleep(0)
