"""``[responder] openai`` through the real SDK against the loopback: streaming, tools, memory, follow-up."""

from __future__ import annotations

import asyncio
import json
import logging

from pydantic import BaseModel, ValidationError
import pytest

from magoo_core.default_plugins.clock import SAY_NOTHING, TIME
from magoo_core.tools import Tool, Toolbox
from magoo_core.types import Transcript, TurnContext
from magoo_openai import ChatResponder
from magoo_openai.loopback import Call, LoopbackOpenAIServer

from chat_helpers import KEY, ask, config, follow_ups, responder


class Seconds(BaseModel):
    seconds: float


def tools_called_first(*calls: Call, answer: str = "It is noon."):
    """A model that calls ``calls`` when the last message is the user's, else answers ``answer``."""

    def reply(body: dict):
        return list(calls) if body["messages"][-1]["role"] == "user" else answer

    return reply


async def test_the_reply_streams_delta_by_delta_and_the_request_is_what_the_api_takes(server):
    async with responder(server, model="gpt-4o-mini", system="Be brief.", temperature=0.5, max_tokens=50) as r:
        deltas = [d async for d in r.respond(Transcript("hello"), context=TurnContext(1))]

    assert deltas == ["You", " said:", " hello"]
    (body,) = server.chat_requests()
    assert body["messages"] == [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hello"}]
    assert body["stream"] is True and body["stream_options"] == {"include_usage": True}
    assert (body["temperature"], body["max_tokens"]) == (0.5, 50)  # a compatible server: the name every one knows
    assert "tools" not in body
    assert r.counters["completion_tokens"] == 3


async def test_deltas_come_out_before_the_reply_is_whole():
    async with LoopbackOpenAIServer(api_key=KEY, tokens_per_second=20, replies=["one two three four five six"]) as server:
        async with responder(server) as r:
            stream = r.respond(Transcript("go"), context=TurnContext(1))
            first = await anext(stream)
            whole_when_first = server.requests[-1].done
            await stream.aclose()
    assert first == "one"
    assert whole_when_first is False


async def test_a_system_prompt_from_a_file(server, tmp_path):
    prompt = tmp_path / "pirate.txt"
    prompt.write_text("You are a pirate.\n")
    async with responder(server, system_file=prompt) as r:
        await ask(r, "ahoy")
    assert server.chat_requests()[0]["messages"][0] == {"role": "system", "content": "You are a pirate."}


def test_system_and_system_file_together_are_refused(tmp_path):
    (tmp_path / "p.txt").write_text("x")
    with pytest.raises(ValidationError, match="not both"):
        ChatResponder.Config(system="a", system_file=tmp_path / "p.txt")


# ---- tools --------------------------------------------------------------------------------------


async def test_a_tool_call_is_run_and_its_result_sent_back_for_the_next_round():
    async with LoopbackOpenAIServer(api_key=KEY, replies=tools_called_first(Call("time"))) as server:
        async with responder(server, tools=["time"]) as r:
            text, _ = await ask(r, "what time is it", tools=Toolbox({"time": TIME, "say_nothing": SAY_NOTHING}))

    assert text == "It is noon."
    first, second = server.chat_requests()
    assert [t["function"]["name"] for t in first["tools"]] == ["time"]
    assert first["tools"][0]["function"]["parameters"] == {"type": "object", "properties": {}, "additionalProperties": False}
    asked, answered = second["messages"][-2:]
    assert asked["role"] == "assistant" and asked["tool_calls"][0]["function"]["name"] == "time"
    assert answered["role"] == "tool" and answered["tool_call_id"] == asked["tool_calls"][0]["id"]
    assert answered["content"].startswith("It is ")


async def test_several_calls_run_at_once_with_their_arguments_assembled_from_pieces():
    started: list[float] = []
    release = asyncio.Event()

    async def slow(arguments: Seconds) -> str:
        started.append(arguments.seconds)
        if len(started) == 2:
            release.set()
        await asyncio.wait_for(release.wait(), 5)  # both must be running together to get here
        return f"waited {arguments.seconds}"

    box = Toolbox({"wait": Tool("wait", "Wait.", slow, Seconds)})
    calls = (Call("wait", json.dumps({"seconds": 1.5})), Call("wait", json.dumps({"seconds": 2.5})))
    async with LoopbackOpenAIServer(api_key=KEY, replies=tools_called_first(*calls)) as server:
        async with responder(server, tools=["wait"]) as r:
            text, _ = await ask(r, "wait twice", tools=box)

    assert sorted(started) == [1.5, 2.5]
    results = [m["content"] for m in server.chat_requests()[1]["messages"] if m["role"] == "tool"]
    assert results == ["waited 1.5", "waited 2.5"]
    assert text == "It is noon."


async def test_a_tool_that_raises_or_hangs_gives_the_model_an_error_and_the_turn_goes_on():
    async def broken(arguments):
        raise RuntimeError("the servo is unplugged")

    async def hangs(arguments):
        await asyncio.sleep(60)

    box = Toolbox({"nod": Tool("nod", "Nod.", broken), "wave": Tool("wave", "Wave.", hangs, timeout=0.2)})
    async with LoopbackOpenAIServer(api_key=KEY, replies=tools_called_first(Call("nod"), Call("wave"), answer="Sorry.")) as server:
        async with responder(server, tools=["nod", "wave"]) as r:
            text, _ = await ask(r, "nod and wave", tools=box)

    assert text == "Sorry."
    results = [m["content"] for m in server.chat_requests()[1]["messages"] if m["role"] == "tool"]
    assert results[0] == "error: nod failed: the servo is unplugged"
    assert results[1] == "error: wave gave no result within 0.2 seconds"


async def test_a_call_of_a_tool_that_was_not_offered_gets_an_error_result():
    async with LoopbackOpenAIServer(api_key=KEY, replies=tools_called_first(Call("launch_rockets"))) as server:
        async with responder(server, tools=["time"]) as r:
            text, _ = await ask(r, "launch", tools=Toolbox({"time": TIME}))
    (result,) = [m["content"] for m in server.chat_requests()[1]["messages"] if m["role"] == "tool"]
    assert result == "error: there is no tool named 'launch_rockets'; the tools are: time"
    assert text == "It is noon."


async def test_unknown_tool_names_in_the_profile_are_said_once_listing_the_tools_there_are(server, caplog):
    box = Toolbox({"time": TIME, "say_nothing": SAY_NOTHING})
    with caplog.at_level(logging.WARNING, "magoo.openai"):
        async with responder(server, tools=["time", "nodd"]) as r:
            await ask(r, "one", tools=box)
            await ask(r, "two", turn=2, tools=box)
    lines = [r.getMessage() for r in caplog.records if "nodd" in r.getMessage()]
    assert lines == ["[responder] tools: no tool named 'nodd'; the tools there are: say_nothing, time"]
    assert [t["function"]["name"] for t in server.chat_requests()[0]["tools"]] == ["time"]


async def test_a_model_that_keeps_calling_tools_is_stopped_after_max_tool_rounds():
    def loops(body):
        return [Call("time")] if "tools" in body else "Enough, it is noon."

    async with LoopbackOpenAIServer(api_key=KEY, replies=loops) as server:
        async with responder(server, tools=["time"], max_tool_rounds=3) as r:
            text, _ = await ask(r, "time?", tools=Toolbox({"time": TIME}))

    requests = server.chat_requests()
    assert len(requests) == 4 and ["tools" in body for body in requests] == [True, True, True, False]
    assert text == "Enough, it is noon."


async def test_a_server_that_calls_tools_it_was_not_offered_is_still_bounded():
    async with LoopbackOpenAIServer(api_key=KEY, replies=[[Call("time")]]) as server:
        async with responder(server, tools=["time"], max_tool_rounds=2) as r:
            text, _ = await ask(r, "time?", tools=Toolbox({"time": TIME}))
    assert len(server.chat_requests()) == 3
    assert text == ""


async def test_say_nothing_ends_the_turn_with_no_reply():
    async with LoopbackOpenAIServer(api_key=KEY, replies=tools_called_first(Call("say_nothing"))) as server:
        async with responder(server, tools=["say_nothing"]) as r:
            text, items = await ask(r, "(the television talking)", tools=Toolbox({"say_nothing": SAY_NOTHING}))
    assert (text, items) == ("", [])
    assert len(server.chat_requests()) == 1


# ---- follow-up ----------------------------------------------------------------------------------


async def test_a_reply_that_ends_with_a_question_asks_for_the_follow_up_window_as_its_last_item():
    replies = ["Shall I set a timer?", "Done.", 'She asked: "Is it ready?"', "Is it *ready?*"]
    async with LoopbackOpenAIServer(api_key=KEY, replies=replies) as server:
        async with responder(server) as r:
            _, asked = await ask(r, "pasta")
            _, told = await ask(r, "yes", turn=2)
            quoted = [(await ask(r, "again", turn=n))[1] for n in (3, 4)]
    assert follow_ups(asked) == [True] and not isinstance(asked[-1], str)  # the last item
    assert follow_ups(told) == []
    assert [follow_ups(items) for items in quoted] == [[True], [True]]


# ---- memory -------------------------------------------------------------------------------------


async def test_three_turns_remember_the_conversation(server):
    async with responder(server) as r:
        for turn, text in enumerate(["my name is Ada", "I like tea", "what is my name"], 1):
            await ask(r, text, turn=turn)
    third = server.chat_requests()[2]["messages"]
    assert [(m["role"], m["content"]) for m in third[1:]] == [
        ("user", "my name is Ada"), ("assistant", "You said: my name is Ada"),
        ("user", "I like tea"), ("assistant", "You said: I like tea"),
        ("user", "what is my name"),
    ]


async def test_only_the_last_history_exchanges_are_sent(server):
    async with responder(server, history=2, system="") as r:
        for turn in range(1, 5):
            await ask(r, f"turn {turn}", turn=turn)
    last = server.chat_requests()[-1]["messages"]
    assert [m["content"] for m in last if m["role"] == "user"] == ["turn 2", "turn 3", "turn 4"]


async def test_the_conversation_is_forgotten_after_forget_after_seconds_without_a_turn(server):
    now = [1000.0]
    async with responder(server, forget_after=60) as r:
        r.conversation._clock = lambda: now[0]
        await ask(r, "my name is Ada")
        now[0] += 59
        await ask(r, "still there?", turn=2)
        now[0] += 61
        await ask(r, "what is my name", turn=3)
    second, third = server.chat_requests()[1:]
    assert [m["content"] for m in second["messages"] if m["role"] == "user"] == ["my name is Ada", "still there?"]
    assert [m["content"] for m in third["messages"] if m["role"] == "user"] == ["what is my name"]


async def test_a_memory_file_keeps_the_conversation_across_restarts(server, tmp_path):
    path = tmp_path / "memory" / "chat.json"
    async with responder(server, memory_file=path) as r:
        await ask(r, "my name is Ada")
    assert json.loads(path.read_text())["exchanges"][0]["user"] == "my name is Ada"
    assert path.stat().st_mode & 0o077 == 0  # a conversation is private
    async with responder(server, memory_file=path) as again:
        await ask(again, "what is my name")
    users = [m["content"] for m in server.chat_requests()[1]["messages"] if m["role"] == "user"]
    assert users == ["my name is Ada", "what is my name"]


async def test_a_bad_memory_file_is_kept_aside_with_one_warning(server, tmp_path, caplog):
    path = tmp_path / "chat.json"
    path.write_text("{not json")
    with caplog.at_level(logging.WARNING, "magoo.openai"):
        async with responder(server, memory_file=path) as r:
            await ask(r, "hello")
    assert (tmp_path / "chat.json.bad").read_text() == "{not json"
    assert len([r for r in caplog.records if "cannot read the conversation" in r.getMessage()]) == 1
    assert json.loads(path.read_text())["exchanges"][0]["user"] == "hello"


async def test_a_reply_cut_short_is_remembered_as_it_was_said(server):
    async with responder(server) as r:
        await ask(r, "tell me a long story")
        r.heard(1, "You said:")
        await ask(r, "go on", turn=2)
    messages = server.chat_requests()[1]["messages"]
    assert {"role": "assistant", "content": "You said: …"} in messages


def test_openai_itself_gets_max_completion_tokens():
    from magoo_openai.client import OPENAI_URL

    assert ChatResponder.Config(base_url=OPENAI_URL).is_openai
    assert not ChatResponder.Config(base_url="http://localhost:11434/v1").is_openai
