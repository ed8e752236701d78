"""Configured calls as tools for a language model (issue 19), against a real HTTP receiver on
localhost: the model fills in only the arguments the profile declares, within their bounds;
where the call goes is the profile's; an error status, no answer or no connection is an error
the model reads, and a call is never sent twice."""

from __future__ import annotations

import json

import pytest
from pydantic import ValidationError

from magoo_core.tools import Toolbox
from magoo_webhook import WebhookActuator

from webhook_helpers import TOKEN, Answer, Receiver, dead_url, json_answer

LIGHTS = {
    "name": "kitchen_lights",
    "description": "Switch the kitchen lights on or off, and set how bright they are.",
    "fields": {"entity_id": "light.kitchen"},
    "arguments": {
        "state": {"description": "on or off", "choices": ["on", "off"]},
        "brightness": {"type": "integer", "description": "percent", "minimum": 0, "maximum": 100, "required": False},
    },
}


def config(url: str, **options) -> WebhookActuator.Config:
    return WebhookActuator.Config.model_validate({"url": url, "events": [], "tools": [LIGHTS], **options})


async def call(url: str, arguments, **options):
    """One call of the kitchen_lights tool through a running actuator."""
    async with WebhookActuator(config(url, **options)) as actuator:
        toolbox = Toolbox.collect(actuator.magoo_register_tools)
        return await toolbox.call("kitchen_lights", arguments)


async def test_a_call_sends_the_fixed_fields_and_the_arguments_and_the_model_reads_the_answer():
    with Receiver(json_answer({"ok": True, "brightness": 40})) as receiver:
        result = await call(receiver.url, '{"state": "on", "brightness": 40}', headers={"Authorization": TOKEN})
        (request,) = receiver.requests
    assert result.ok and json.loads(result.content) == {"ok": True, "brightness": 40}
    assert (request.method, request.path) == ("POST", "/hook")
    assert request.json == {"tool": "kitchen_lights", "arguments": {"state": "on", "brightness": 40}, "entity_id": "light.kitchen"}
    assert request.headers["Authorization"] == TOKEN


async def test_an_empty_answer_reads_done_and_an_optional_argument_may_be_left_out():
    with Receiver(Answer(204)) as receiver:
        result = await call(receiver.url, {"state": "off"})
        assert receiver.requests[0].json["arguments"] == {"state": "off"}
    assert (result.ok, result.content) == (True, "done (HTTP 204)")


@pytest.mark.parametrize(
    ("arguments", "said"),
    [
        ({"state": "dim"}, "state: Input should be 'on' or 'off'"),
        ({"state": "on", "brightness": 150}, "brightness: Input should be less than or equal to 100"),
        ({"state": "on", "brightness": "40"}, "brightness: Input should be a valid integer"),
        ({"state": "on", "url": "http://elsewhere/"}, "url: Extra inputs are not permitted"),
        ({}, "state: Field required"),
    ],
)
async def test_arguments_that_do_not_fit_never_reach_the_receiver(arguments, said):
    with Receiver() as receiver:
        result = await call(receiver.url, arguments)
        assert receiver.requests == []
    assert not result.ok and said in result.content


async def test_an_error_status_is_an_error_for_the_model_and_the_call_is_not_repeated():
    with Receiver(Answer(503), default=Answer(200)) as receiver:
        result = await call(receiver.url, {"state": "on"}, retries=3)
        assert len(receiver.requests) == 1  # a command is never sent twice
    assert not result.ok
    assert result.content == f"error: kitchen_lights failed: kitchen_lights was sent to {receiver.url}, which answered: HTTP 503 Service Unavailable"


async def test_no_answer_in_time_or_no_connection_is_an_error_for_the_model():
    # a real wait: the receiver holds its answer past the 0.2 s timeout
    with Receiver(Answer(200, hold=True)) as receiver:
        late = await call(receiver.url, {"state": "on"}, timeout=0.2)
    assert not late.ok and late.content.endswith("which answered: no answer within 0.2 s")
    dead = await call(dead_url(), {"state": "on"})
    assert not dead.ok and "which answered: cannot connect" in dead.content


async def test_a_call_goes_to_its_own_url_and_method_when_it_has_them():
    with Receiver() as events, Receiver(Answer(200, b"Lights on.", "text/plain")) as lights:
        tool = {**LIGHTS, "url": lights.url, "method": "PUT"}
        async with WebhookActuator(config(events.url, tools=[tool])) as actuator:
            result = await Toolbox.collect(actuator.magoo_register_tools).call("kitchen_lights", {"state": "on"})
        assert events.requests == [] and lights.requests[0].method == "PUT"
    assert result.content == "Lights on."


async def test_a_tool_of_an_actuator_that_is_not_running_says_so():
    actuator = WebhookActuator(config(dead_url()))
    result = await Toolbox.collect(actuator.magoo_register_tools).call("kitchen_lights", {"state": "on"})
    assert result.content == "error: kitchen_lights failed: the webhook actuator is not running; kitchen_lights cannot be called"


def test_the_schema_the_model_sees_is_the_profiles():
    tool = Toolbox.collect(WebhookActuator(config("http://127.0.0.1:9/hook")).magoo_register_tools)["kitchen_lights"]
    schema = tool.schema()
    assert schema["required"] == ["state"] and schema["additionalProperties"] is False
    assert schema["properties"]["state"]["enum"] == ["on", "off"]
    assert tool.description == LIGHTS["description"]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"tools": [{**LIGHTS, "fields": {"tool": "x"}}]}, "fields may not be named tool"),
        ({"tools": [LIGHTS, LIGHTS]}, "two tools are named kitchen_lights"),
        ({"tools": []}, "events is empty and there are no tools"),
        ({"tools": [{**LIGHTS, "arguments": {"level": {"type": "integer", "description": "x", "choices": ["a"]}}}]},
         'choices are for type = "string"'),
        ({"tools": [{**LIGHTS, "name": "kitchen lights"}]}, "should match pattern"),
        ({"tools": [{**LIGHTS, "url": "ftp://x/"}]}, "must be an absolute http:// or https:// URL"),
    ],
)
def test_the_profile_says_what_is_wrong_with_a_tool(change, message):
    with pytest.raises(ValidationError, match=message):
        config("http://127.0.0.1:9/hook", **change)
