"""Tools a language model may call: offered by plugins, chosen by the profile, run safely.

A plugin offers tools through the ``magoo_register_tools(register)`` hook (a servo's ``nod``, a
webhook's configured call, the built-in clock and timers); the engine gathers them once per run
into a :class:`Toolbox` and hands it to the responder with each turn (``context.tools``). The
responder's profile section chooses which are on (:meth:`Toolbox.choose`).

A call never raises into the turn: an unknown name, arguments that do not validate, a tool that
raises or one that overruns its ``timeout`` each come back as a :class:`ToolResult` with
``ok=False`` and a message written for the model to read, so it can answer the user anyway.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ValidationError

from .logs import printable

__all__ = ["Tool", "ToolResult", "Toolbox", "NoArguments"]

log = logging.getLogger("magoo.tools")

#: What the function-calling APIs accept as a tool's name.
NAME = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
#: Characters of a tool's result (or error) handed back to the model, at most.
MAX_RESULT_CHARS = 4000


class NoArguments(BaseModel):
    """The arguments of a tool that takes none."""

    model_config = {"extra": "forbid"}


@dataclass(frozen=True)
class Tool:
    """One thing a language model may do.

    :param name: what the model calls it: letters, digits, ``_`` and ``-``, at most 64.
    :param description: when to use it, for the model (one or two sentences).
    :param run: ``async def run(arguments)``: awaited on the event loop with a validated
        instance of ``arguments``; returns what the model is told: a ``str`` or anything
        JSON-serializable (``None``: "done"). Must not block the loop.
    :param arguments: a pydantic model of the arguments; field descriptions reach the model.
    :param timeout: seconds one call may take; past it the call is cancelled and the model is
        told it timed out.
    :param silent: when the model calls it, the turn ends without a spoken reply ("say nothing").
    """

    name: str
    description: str
    run: Callable[[Any], Awaitable[Any]]
    arguments: type[BaseModel] = NoArguments
    timeout: float = 10.0
    silent: bool = False

    def __post_init__(self) -> None:
        if not NAME.match(self.name):
            raise ValueError(f"tool name {self.name!r}: use 1 to 64 letters, digits, '_' or '-'")
        if not (0 < self.timeout <= 600):
            raise ValueError(f"tool {self.name}: timeout must be between 0 and 600 seconds")

    def schema(self) -> dict[str, Any]:
        """The JSON schema of the arguments, as function-calling APIs take it."""
        schema = self.arguments.model_json_schema()
        schema.pop("title", None)
        schema.pop("description", None)  # the class docstring; the tool's own description says it
        schema.setdefault("properties", {})
        return schema


@dataclass(frozen=True)
class ToolResult:
    """What one call gave: ``content`` is what the model is told (text, at most 4000 characters).

    :param ok: False for an unknown tool, bad arguments, a tool that raised or timed out.
    :param silent: the tool asked the turn to end without a spoken reply.
    """

    name: str
    content: str
    ok: bool = True
    silent: bool = False


@dataclass(frozen=True, eq=False)  # eq from Mapping: a Toolbox equals a dict of the same tools
class Toolbox(Mapping[str, Tool]):
    """The tools of a run, by name. Read-only; safe to share between turns.

    Built by :meth:`collect` from every plugin's ``magoo_register_tools``; a responder narrows
    it to what its profile section turned on with :meth:`choose`.
    """

    tools: Mapping[str, Tool] = field(default_factory=dict)

    def __getitem__(self, name: str) -> Tool:
        return self.tools[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self.tools)

    def __len__(self) -> int:
        return len(self.tools)

    @classmethod
    def collect(cls, offer: Callable[..., Any]) -> Toolbox:
        """Call ``offer(register=...)`` (the ``magoo_register_tools`` hook) and keep what it registers.

        A second tool of a name already taken, or something that is not a :class:`Tool`, is
        left out with one warning naming it; the first one registered stays.
        """
        tools: dict[str, Tool] = {}

        def register(tool: Tool) -> None:
            if not isinstance(tool, Tool):
                log.warning("a plugin registered %r as a tool; register magoo_core.tools.Tool objects", type(tool).__name__)
            elif tool.name in tools:
                log.warning("two tools are named %r; the second one is left out", tool.name)
            else:
                tools[tool.name] = tool

        offer(register=register)
        return cls(tools)

    @classmethod
    def from_hook(cls, hook: Any) -> Toolbox:
        """The tools every implementation of the ``magoo_register_tools`` hook offers, each called
        on its own: one that raises is logged with its plugin's name, and the others still count."""

        def offer(register: Callable[[Tool], None]) -> None:
            for impl in hook.get_hookimpls():
                try:
                    impl.function(register=register)
                except Exception as exc:
                    log.warning("plugin %s could not offer its tools: %s", impl.plugin_name, printable(str(exc)) or type(exc).__name__)

        return cls.collect(offer)

    def choose(self, names: Iterable[str]) -> Toolbox:
        """The tools named, in that order.

        :raises KeyError: a name no plugin registered; the message lists the tools there are.
        """
        names = list(names)
        missing = [name for name in names if name not in self.tools]
        if missing:
            there = ", ".join(sorted(self.tools)) or "none"
            raise KeyError(f"no tool named {', '.join(map(repr, missing))} (the tools there are: {there})")
        return Toolbox({name: self.tools[name] for name in names})

    async def call(self, name: str, arguments: str | Mapping[str, Any] | None) -> ToolResult:
        """Run the tool ``name`` with ``arguments`` (a JSON object as text, as models send it,
        or a mapping). Never raises, except for cancellation of the caller.
        """
        tool = self.tools.get(name)
        if tool is None:
            there = ", ".join(sorted(self.tools)) or "none"
            return ToolResult(name, f"error: there is no tool named {name!r}; the tools are: {there}", ok=False)
        try:
            if isinstance(arguments, str):
                arguments = json.loads(arguments) if arguments.strip() else {}
            parsed = tool.arguments.model_validate(arguments or {})
        except (ValueError, ValidationError) as exc:
            return ToolResult(name, _cut(f"error: the arguments do not fit {name}: {_short(exc)}"), ok=False)
        try:
            async with asyncio.timeout(tool.timeout):
                result = await tool.run(parsed)
        except TimeoutError:
            log.warning("tool %s gave no result within %g s", name, tool.timeout)
            return ToolResult(name, f"error: {name} gave no result within {tool.timeout:g} seconds", ok=False)
        except Exception as exc:
            log.warning("tool %s failed: %s", name, printable(str(exc)) or type(exc).__name__)
            return ToolResult(name, _cut(f"error: {name} failed: {_short(exc)}"), ok=False)
        return ToolResult(name, _cut(_as_text(result)), silent=tool.silent)


def _as_text(result: Any) -> str:
    if result is None:
        return "done"
    if isinstance(result, str):
        return result
    try:
        return json.dumps(result, ensure_ascii=False, default=str)
    except (TypeError, ValueError):
        return str(result)


def _short(exc: BaseException) -> str:
    if isinstance(exc, ValidationError):
        return "; ".join(f"{'.'.join(map(str, e['loc'])) or 'arguments'}: {e['msg']}" for e in exc.errors())
    return printable(str(exc)) or type(exc).__name__


def _cut(text: str) -> str:
    return text if len(text) <= MAX_RESULT_CHARS else text[: MAX_RESULT_CHARS - 1] + "…"
