"""Tools a language model may call: offered through a hook, chosen by name, run without ever
breaking a turn (unknown names, bad arguments, raising and hanging tools come back as errors)."""

from __future__ import annotations

import asyncio
import json

import pytest
from pydantic import BaseModel, Field

from magoo_core import Outcome, hookimpl
from magoo_core.tools import Tool, Toolbox

from probe import run_engine


class Degrees(BaseModel):
    degrees: int = Field(ge=0, le=90, description="how far to nod")


async def nod(arguments: Degrees) -> dict:
    return {"nodded": arguments.degrees}


async def broken(_arguments) -> None:
    raise RuntimeError("the servo is unplugged")


async def hangs(_arguments) -> None:
    await asyncio.Event().wait()


def toolbox() -> Toolbox:
    return Toolbox({
        "nod": Tool("nod", "Nod the head.", nod, Degrees),
        "broken": Tool("broken", "Always fails.", broken),
        # a real wait: the call must be cut at the tool's own timeout, kept short
        "hangs": Tool("hangs", "Never answers.", hangs, timeout=0.05),
        "quiet": Tool("quiet", "Say nothing.", lambda _a: asyncio.sleep(0), silent=True),
    })


async def test_a_call_validates_its_arguments_and_returns_json_for_the_model():
    result = await toolbox().call("nod", '{"degrees": 30}')
    assert result.ok and json.loads(result.content) == {"nodded": 30}


@pytest.mark.parametrize(
    ("name", "arguments", "said"),
    [
        ("shake", "{}", "there is no tool named 'shake'; the tools are: broken, hangs, nod, quiet"),
        ("nod", '{"degrees": 300}', "error: the arguments do not fit nod: degrees:"),
        ("nod", "{not json", "error: the arguments do not fit nod:"),
        ("broken", "{}", "error: broken failed: the servo is unplugged"),
        ("hangs", "", "error: hangs gave no result within 0.05 seconds"),
    ],
)
async def test_a_call_that_cannot_work_tells_the_model_why_and_never_raises(name, arguments, said):
    result = await toolbox().call(name, arguments)
    assert not result.ok
    assert said in result.content


async def test_a_silent_tool_says_so_and_an_empty_result_reads_done():
    result = await toolbox().call("quiet", None)
    assert (result.ok, result.silent, result.content) == (True, True, "done")


def test_choose_keeps_the_order_given_and_names_what_is_missing():
    assert list(toolbox().choose(["quiet", "nod"])) == ["quiet", "nod"]
    with pytest.raises(KeyError, match=r"no tool named 'wave' \(the tools there are: broken, hangs, nod, quiet\)"):
        toolbox().choose(["nod", "wave"])


def test_a_tool_name_the_apis_would_refuse_is_refused_at_once():
    with pytest.raises(ValueError, match="letters, digits"):
        Tool("nod head", "Nod.", nod, Degrees)


def test_the_schema_is_what_function_calling_takes():
    schema = toolbox()["nod"].schema()
    assert schema["properties"]["degrees"]["description"] == "how far to nod"
    assert schema["type"] == "object" and "title" not in schema
    assert toolbox()["quiet"].schema() == {"additionalProperties": False, "properties": {}, "type": "object"}


class Offers:
    """A plugin with tools; one offer of a taken name, one that is no Tool."""

    @hookimpl
    def magoo_register_tools(self, register):
        register(Tool("nod", "Nod.", nod, Degrees))
        register(Tool("nod", "A second nod.", nod, Degrees))
        register("not a tool")


class Fails:
    @hookimpl
    def magoo_register_tools(self, register):
        raise RuntimeError("cannot reach the webhook list")


async def test_the_engine_gathers_every_plugins_tools_and_hands_them_to_the_responder(caplog):
    profile = {"responder": {"backend": "echo", "template": "{text}"}}
    engine, _probe, result = await run_engine(profile, Offers(), Fails(), turns=1)

    assert [t.outcome for t in result.timelines] == [Outcome.OK]
    (context,) = engine.responder.last_instance.contexts
    assert context.tools["nod"].description == "Nod."  # the first one registered; built-in tools beside it
    assert {"time", "say_nothing", "timer_set", "timer_cancel", "timer_list"} <= set(context.tools)
    assert "two tools are named 'nod'" in caplog.text
    assert "registered 'str' as a tool" in caplog.text
    assert "could not offer its tools: cannot reach the webhook list" in caplog.text
