"""``POST /v1/chat/completions`` (streamed as server-sent events exactly like the API, or whole)
and ``GET /v1/models``, with scripted replies.

What the assistant "answers" comes from the server's ``replies`` option: a callable given the
request body, or a sequence used in order (its last entry repeats); each reply is text, or a
list of :class:`Call` (the model calls tools). Without it the reply echoes the last user message.
A streamed reply is sent one token (a word with its leading space) per ``1/tokens_per_second``
seconds; a tool call is sent as the API sends it: a first delta with its ``index``, ``id`` and
name, then its arguments in pieces.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from aiohttp import web

from .errors import RequestError, api_error
from .records import FAULT, RECORD
from .validate import validate_chat

if TYPE_CHECKING:
    from .records import Fault
    from .server import LoopbackOpenAIServer

PATH = "/v1/chat/completions"
MODELS = ("gpt-4o-mini", "gpt-4o", "gpt-4.1-mini", "llama3.2", "whisper-1", "gpt-4o-mini-transcribe", "gpt-4o-transcribe",
          "gpt-4o-mini-tts", "tts-1")
TOKEN = re.compile(r"\s*\S+|\s+$")
#: pieces a tool call's arguments are sent in, at most
ARGUMENT_PIECES = 3


@dataclass(frozen=True)
class Call:
    """A scripted tool call: the tool's name and its arguments as JSON text."""

    name: str
    arguments: str = "{}"


Scripted = str | list[Call]


def add_routes(app: web.Application, server: LoopbackOpenAIServer) -> None:
    """Add the chat completion and model list endpoints."""
    replies = _Replies(server.options.get("replies"))

    async def completions(request: web.Request) -> web.StreamResponse:
        record = request[RECORD]
        try:
            body = await request.json()
        except (ValueError, UnicodeDecodeError):
            body = None
        record.body = body
        try:
            validate_chat(body)
        except RequestError as exc:
            record.status = 400
            return api_error(400, exc.message, param=exc.param, code=exc.code)
        reply = replies.next(body)
        if body.get("stream"):
            return await _stream(request, server, body, reply, request[FAULT])
        record.done = True
        return web.json_response(_whole(body, reply))

    async def models(request: web.Request) -> web.Response:
        return web.json_response(
            {"object": "list", "data": [{"id": m, "object": "model", "created": 1_700_000_000, "owned_by": "loopback"} for m in MODELS]}
        )

    app.router.add_post(PATH, completions)
    app.router.add_get("/v1/models", models)


class _Replies:
    def __init__(self, script: Callable[[dict], Scripted] | Sequence[Scripted] | None) -> None:
        self._script = script
        self._count = 0

    def next(self, body: dict) -> Scripted:
        self._count += 1
        if self._script is None:
            return f"You said: {_last_user_text(body)}"
        if callable(self._script):
            return self._script(body)
        return self._script[min(self._count, len(self._script)) - 1]


def _last_user_text(body: dict) -> str:
    for message in reversed(body["messages"]):
        if message.get("role") == "user":
            content = message.get("content")
            if isinstance(content, str):
                return content
            return " ".join(part.get("text", "") for part in content if isinstance(part, dict))
    return ""


def tokens(text: str) -> list[str]:
    """``text`` cut as the loopback streams it: words with the white space before them."""
    return TOKEN.findall(text)


def _chunk(ident: str, model: str, delta: dict | None, finish: str | None = None, usage: dict | None = None,
           include_usage: bool = False) -> dict:
    chunk: dict[str, Any] = {
        "id": ident, "object": "chat.completion.chunk", "created": int(time.time()), "model": model,
        "service_tier": "default", "system_fingerprint": "fp_loopback",
        "choices": [] if delta is None else [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
    }
    if include_usage:
        chunk["usage"] = usage
    return chunk


def _usage(body: dict, reply: Scripted) -> dict:
    prompt = sum(len(tokens(json.dumps(m.get("content") or ""))) for m in body["messages"])
    completion = len(tokens(reply)) if isinstance(reply, str) else sum(len(tokens(c.arguments)) + 1 for c in reply)
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}


def _pieces(body: dict, reply: Scripted) -> list[dict]:
    """The deltas of the reply, in order, after the first (role) delta."""
    if isinstance(reply, str):
        return [{"content": token} for token in tokens(reply)]
    deltas: list[dict] = []
    for index, call in enumerate(reply):
        deltas.append({"tool_calls": [{"index": index, "id": f"call_{uuid.uuid4().hex[:24]}", "type": "function",
                                       "function": {"name": call.name, "arguments": ""}}]})
        size = max(1, -(-len(call.arguments) // ARGUMENT_PIECES))
        for start in range(0, len(call.arguments), size):
            deltas.append({"tool_calls": [{"index": index, "function": {"arguments": call.arguments[start:start + size]}}]})
    return deltas


async def _stream(request: web.Request, server: LoopbackOpenAIServer, body: dict, reply: Scripted,
                  fault: Fault | None) -> web.StreamResponse:
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream; charset=utf-8", "Cache-Control": "no-cache"})
    await response.prepare(request)
    ident = f"chatcmpl-{uuid.uuid4().hex[:24]}"
    model = body["model"]
    include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
    pace = server.seconds_per_token()

    async def send(data: dict | str) -> None:
        text = data if isinstance(data, str) else json.dumps(data, separators=(",", ":"))
        await response.write(f"data: {text}\n\n".encode())

    first = {"role": "assistant", "content": "" if isinstance(reply, str) else None, "refusal": None}
    await send(_chunk(ident, model, first, include_usage=include_usage))
    for sent, delta in enumerate(_pieces(body, reply)):
        if fault is not None and fault.stream is not None and sent == fault.after:
            if await server.stream_fault(request, fault):
                return response
            if fault.stream == "malformed":
                await send('{"id": "chatcmpl-broken", "choices": [{"delta": {"content": "x"')
        await asyncio.sleep(pace)
        await send(_chunk(ident, model, delta, include_usage=include_usage))
    finish = "stop" if isinstance(reply, str) else "tool_calls"
    await send(_chunk(ident, model, {}, finish, include_usage=include_usage))
    if include_usage:
        await send(_chunk(ident, model, None, usage=_usage(body, reply), include_usage=True))
    await send("[DONE]")
    await response.write_eof()
    request[RECORD].done = True
    return response


def _whole(body: dict, reply: Scripted) -> dict:
    message: dict[str, Any] = {"role": "assistant", "content": reply if isinstance(reply, str) else None, "refusal": None}
    if not isinstance(reply, str):
        message["tool_calls"] = [{"id": f"call_{uuid.uuid4().hex[:24]}", "type": "function",
                                  "function": {"name": c.name, "arguments": c.arguments}} for c in reply]
    return {
        "id": f"chatcmpl-{uuid.uuid4().hex[:24]}", "object": "chat.completion", "created": int(time.time()),
        "model": body["model"], "system_fingerprint": "fp_loopback",
        "choices": [{"index": 0, "message": message, "logprobs": None,
                     "finish_reason": "stop" if isinstance(reply, str) else "tool_calls"}],
        "usage": _usage(body, reply),
    }
