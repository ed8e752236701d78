"""Tool calls of a streamed chat completion: assembled from their deltas, run, and answered.

The API streams each call in pieces: the first delta of a call has its ``index``, ``id`` and
``function.name``; later deltas of the same ``index`` carry pieces of ``function.arguments``
(JSON text). :class:`ToolCalls` puts them together; :func:`run_calls` runs them all at once
through the run's :class:`~magoo_core.tools.Toolbox` (which never raises) and gives the messages
that send the results back. Runs on the event loop.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from magoo_core.tools import Tool, Toolbox, ToolResult


@dataclass
class ToolCall:
    """One call the model asked for; ``arguments`` is JSON text as the model wrote it."""

    index: int
    id: str = ""
    name: str = ""
    arguments: str = ""


@dataclass
class ToolCalls:
    """The calls of one streamed response, by index, as their deltas arrive."""

    calls: dict[int, ToolCall] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.calls)

    def feed(self, deltas: Iterable[Any]) -> None:
        """Add the ``tool_calls`` of one chunk's delta (SDK objects or dicts)."""
        for delta in deltas:
            index = _get(delta, "index")
            index = len(self.calls) if index is None else int(index)
            call = self.calls.setdefault(index, ToolCall(index))
            call.id = call.id or (_get(delta, "id") or "")
            function = _get(delta, "function")
            if function is not None:
                call.name += _get(function, "name") or ""
                call.arguments += _get(function, "arguments") or ""

    def done(self) -> list[ToolCall]:
        """The calls in index order, each with an id (made up when the server gave none)."""
        ordered = [self.calls[i] for i in sorted(self.calls)]
        for number, call in enumerate(ordered):
            call.id = call.id or f"call_{number}"
        return ordered


async def run_calls(toolbox: Toolbox, calls: list[ToolCall]) -> list[ToolResult]:
    """Every call at once; each result in the order of ``calls``. Never raises but for cancellation."""
    return list(await asyncio.gather(*(toolbox.call(call.name, call.arguments) for call in calls)))


def assistant_message(text: str, calls: list[ToolCall]) -> dict[str, Any]:
    """The assistant's turn that asked for ``calls``, as it is sent back in the next request."""
    return {
        "role": "assistant",
        "content": text or None,
        "tool_calls": [
            {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments or "{}"}}
            for c in calls
        ],
    }


def result_messages(calls: list[ToolCall], results: list[ToolResult]) -> list[dict[str, Any]]:
    """One ``tool`` message per call, with what it gave."""
    return [{"role": "tool", "tool_call_id": c.id, "content": r.content} for c, r in zip(calls, results, strict=True)]


def tool_specs(tools: Mapping[str, Tool]) -> list[dict[str, Any]]:
    """The ``tools`` parameter of a request: each tool as a function with its JSON schema."""
    return [
        {"type": "function", "function": {"name": t.name, "description": t.description, "parameters": t.schema()}}
        for t in tools.values()
    ]


def _get(item: Any, name: str) -> Any:
    return item.get(name) if isinstance(item, Mapping) else getattr(item, name, None)
