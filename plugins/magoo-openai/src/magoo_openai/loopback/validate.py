"""Checks a Chat Completions request as the real API does, so a client that sends what OpenAI
would refuse fails against the loopback too. Pure; raises :class:`~.errors.RequestError`.

Covered: the top-level parameters (unknown ones refused, like the API's "Unrecognized request
argument supplied"), ``model``, ``messages`` (roles, content forms, an assistant's
``tool_calls``, a ``tool`` message answering a call of the assistant message before it),
``tools`` (function name pattern, parameters as a JSON-schema object), ``stream_options`` only
with ``stream``, and the ranges of the sampling parameters.
"""

from __future__ import annotations

import json
import re
from typing import Any

from .errors import RequestError

ROLES = ("system", "developer", "user", "assistant", "tool")
TOP_LEVEL = {
    "model", "messages", "stream", "stream_options", "tools", "tool_choice", "parallel_tool_calls", "temperature",
    "top_p", "max_tokens", "max_completion_tokens", "n", "stop", "presence_penalty", "frequency_penalty", "seed",
    "user", "response_format", "logprobs", "top_logprobs", "logit_bias", "metadata", "store", "reasoning_effort",
    "modalities", "audio", "prediction", "service_tier", "verbosity", "web_search_options", "prompt_cache_key",
    "safety_identifier",
}
FUNCTION_NAME = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")


def validate_chat(body: Any) -> None:
    """Raise :class:`RequestError` for the first thing the API would refuse in ``body``."""
    if not isinstance(body, dict):
        raise RequestError("We could not parse the JSON body of your request.")
    for key in body:
        if key not in TOP_LEVEL:
            raise RequestError(f"Unrecognized request argument supplied: {key}", key)
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise RequestError("you must provide a model parameter", "model")
    _messages(body.get("messages"))
    if "tools" in body:
        _tools(body["tools"])
    stream = body.get("stream", False)
    if not isinstance(stream, bool) and stream is not None:
        raise RequestError(f"Invalid type for 'stream': expected a boolean, but got {_kind(stream)} instead.", "stream")
    if "stream_options" in body and body["stream_options"] is not None:
        if not stream:
            raise RequestError("The 'stream_options' parameter is only allowed when 'stream' is enabled.", "stream_options")
        options = body["stream_options"]
        if not isinstance(options, dict) or set(options) - {"include_usage", "include_obfuscation"}:
            raise RequestError("Invalid 'stream_options': only 'include_usage' and 'include_obfuscation' are known.", "stream_options")
    _number(body, "temperature", 0, 2)
    _number(body, "top_p", 0, 1)
    for key in ("max_tokens", "max_completion_tokens"):
        if key in body and body[key] is not None and (not isinstance(body[key], int) or isinstance(body[key], bool) or body[key] < 1):
            raise RequestError(f"Invalid '{key}': integer below minimum value. Expected a value >= 1.", key)


def _messages(messages: Any) -> None:
    if not isinstance(messages, list):
        raise RequestError("Missing required parameter: 'messages'.", "messages")
    if not messages:
        raise RequestError("Invalid 'messages': empty array. Expected an array with minimum length 1.", "messages")
    open_calls: set[str] = set()
    for index, message in enumerate(messages):
        where = f"messages[{index}]"
        if not isinstance(message, dict):
            raise RequestError(f"Invalid type for '{where}': expected an object.", where)
        role = message.get("role")
        if role not in ROLES:
            raise RequestError(
                f"Invalid value: '{role}'. Supported values are: {', '.join(map(repr, ROLES))}.", f"{where}.role"
            )
        content = message.get("content")
        if role == "assistant":
            calls = message.get("tool_calls")
            if calls is not None:
                open_calls = _assistant_calls(calls, where)
            elif content is None:
                raise RequestError(f"Invalid '{where}': an assistant message needs content or tool_calls.", where)
            else:
                open_calls = set()
        elif role == "tool":
            call_id = message.get("tool_call_id")
            if not isinstance(call_id, str) or call_id not in open_calls:
                raise RequestError(
                    "Invalid parameter: messages with role 'tool' must be a response to a preceeding message with"
                    " 'tool_calls'.", f"{where}.role",
                )
            open_calls.discard(call_id)
        else:
            if open_calls:
                raise RequestError(
                    "An assistant message with 'tool_calls' must be followed by tool messages responding to each"
                    f" 'tool_call_id'. The following tool_call_ids did not have response messages: {', '.join(sorted(open_calls))}",
                    f"{where}.role",
                )
        if role != "assistant" or content is not None:
            _content(content, f"{where}.content")
    if open_calls:
        raise RequestError(
            "An assistant message with 'tool_calls' must be followed by tool messages responding to each 'tool_call_id'.",
            "messages",
        )


def _content(content: Any, where: str) -> None:
    if isinstance(content, str):
        return
    if isinstance(content, list) and content and all(
        isinstance(part, dict) and part.get("type") in ("text", "image_url", "input_audio", "file", "refusal") for part in content
    ):
        return
    raise RequestError(f"Invalid type for '{where}': expected one of a string or array of objects, but got {_kind(content)} instead.", where)


def _assistant_calls(calls: Any, where: str) -> set[str]:
    if not isinstance(calls, list) or not calls:
        raise RequestError(f"Invalid '{where}.tool_calls': expected a non-empty array.", f"{where}.tool_calls")
    ids = set()
    for number, call in enumerate(calls):
        at = f"{where}.tool_calls[{number}]"
        if not isinstance(call, dict) or call.get("type") != "function" or not isinstance(call.get("id"), str):
            raise RequestError(f"Invalid '{at}': expected an object with id and type 'function'.", at)
        function = call.get("function")
        if not isinstance(function, dict) or not isinstance(function.get("name"), str):
            raise RequestError(f"Missing required parameter: '{at}.function.name'.", f"{at}.function.name")
        if not isinstance(function.get("arguments"), str):
            raise RequestError(f"Missing required parameter: '{at}.function.arguments'.", f"{at}.function.arguments")
        ids.add(call["id"])
    return ids


def _tools(tools: Any) -> None:
    if not isinstance(tools, list):
        raise RequestError(f"Invalid type for 'tools': expected an array, but got {_kind(tools)} instead.", "tools")
    if not tools:
        raise RequestError("Invalid 'tools': empty array. Expected an array with minimum length 1.", "tools")
    names = set()
    for number, tool in enumerate(tools):
        at = f"tools[{number}]"
        if not isinstance(tool, dict) or tool.get("type") != "function":
            raise RequestError(f"Invalid value for '{at}.type': expected 'function'.", f"{at}.type")
        function = tool.get("function")
        if not isinstance(function, dict):
            raise RequestError(f"Missing required parameter: '{at}.function'.", f"{at}.function")
        unknown = set(function) - {"name", "description", "parameters", "strict"}
        if unknown:
            raise RequestError(f"Unknown parameter: '{at}.function.{sorted(unknown)[0]}'.", f"{at}.function")
        name = function.get("name")
        if not isinstance(name, str) or not FUNCTION_NAME.match(name):
            raise RequestError(
                f"Invalid '{at}.function.name': string does not match pattern. Expected a string that matches the"
                " pattern '^[a-zA-Z0-9_-]+$'.", f"{at}.function.name",
            )
        if name in names:
            raise RequestError(f"Invalid 'tools': duplicate function name '{name}'.", "tools")
        names.add(name)
        parameters = function.get("parameters")
        if parameters is not None:
            if not isinstance(parameters, dict) or parameters.get("type") != "object":
                raise RequestError(
                    f"Invalid schema for function '{name}': schema must be a JSON Schema of 'type: \"object\"'.",
                    f"{at}.function.parameters",
                )
            json.dumps(parameters)


def _number(body: dict, key: str, lo: float, hi: float) -> None:
    if key not in body or body[key] is None:
        return
    value = body[key]
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise RequestError(f"Invalid type for '{key}': expected a decimal, but got {_kind(value)} instead.", key)
    if not lo <= value <= hi:
        raise RequestError(f"Invalid '{key}': decimal out of range. Expected a value between {lo} and {hi}.", key)


def _kind(value: Any) -> str:
    return {bool: "a boolean", int: "an integer", float: "a decimal", str: "a string", list: "an array",
            dict: "an object", type(None): "null"}.get(type(value), "something else")
