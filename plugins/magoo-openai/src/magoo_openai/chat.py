"""``[responder] openai``: a reply from any OpenAI-compatible Chat Completions server, streamed.

Each turn sends the system prompt, the remembered conversation (:mod:`.memory`) and what the user
said, with the tools the profile turned on; the reply's text deltas go to the engine as they come
(it speaks the first sentence while the rest is written). When the model calls tools, their calls
are assembled from the stream, run at once through the run's Toolbox, and their results sent back
for the next round (:mod:`.tool_calls`); after ``max_tool_rounds`` rounds the model is asked for
an answer without tools. A reply that ends with a question asks for the follow-up window.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import Field, model_validator

from magoo_core.errors import BackendError
from magoo_core.fields import Count, Number, Seconds
from magoo_core.roles import Backend, InputFile
from magoo_core.tools import Toolbox
from magoo_core.types import Reply, Transcript, TurnContext

from .client import EndpointConfig, Failures, bounded, call, open_client
from .memory import Conversation
from .tool_calls import ToolCalls, assistant_message, result_messages, run_calls, tool_specs

if TYPE_CHECKING:
    from magoo_core.doctor import Check

log = logging.getLogger("magoo.openai")

SECTION = "[responder] openai"

#: what may follow a reply's question mark: "Shall I?" and (Shall I?) end with a question too
ENDING_QUOTES = " \t\n\"')»”’]*_"

DEFAULT_SYSTEM = (
    "You are a friendly voice assistant. Your words are spoken aloud: answer briefly, in plain sentences,"
    " without lists, markdown or emoji."
)


class ChatResponder(Backend):
    """Replies from any OpenAI-compatible chat server (OpenAI, Ollama, llama.cpp, vLLM), streamed, with tools and memory."""

    name: ClassVar[str] = "openai"

    class Config(EndpointConfig):
        timeout: Seconds(0.1, 600) = Field(
            30.0, description="Seconds to wait for the reply to start, and for each next piece of it, before the turn gives up."
        )
        retries: Count(0, 5) = Field(
            0, description="Retries of a request refused with 429 or 5xx (only when the server asks to wait at most 2 s) or not"
            " connected, before the reply starts; 0: fail the turn at once."
        )
        model: str = Field("gpt-4o-mini", min_length=1, description="The chat model (an Ollama or llama.cpp model name for a local server).")
        system: str = Field(DEFAULT_SYSTEM, description="The system prompt: who the assistant is and how it answers.")
        system_file: InputFile | None = Field(
            None, description="A text file holding the system prompt instead of system (relative to the profile's folder)."
        )
        temperature: Number(0, 2) | None = Field(None, description="Sampling temperature; unset: the server's default.")
        max_tokens: Count(1, 100_000) | None = Field(
            400, description="Longest reply in tokens (sent as max_completion_tokens to OpenAI, max_tokens to other servers); unset: the server's limit."
        )
        tools: list[str] = Field(
            default_factory=list, description='Tools the model may call, by name (e.g. ["time", "say_nothing"]); a name no plugin offers is said at the first turn, with the tools there are.'
        )
        max_tool_rounds: Count(0, 20) = Field(
            4, description="Rounds of tool calls in one turn, at most; then the model must answer without tools."
        )
        history: Count(0, 200) = Field(10, description="Exchanges of the conversation sent with each request.")
        forget_after: Seconds(1, 7 * 86400) = Field(
            300.0, description="Seconds without a turn after which the conversation is forgotten."
        )
        memory_file: Path | None = Field(
            None, description="A JSON file that keeps the conversation across restarts (relative to the profile's folder)."
        )

        @model_validator(mode="after")
        def _one_system(self) -> ChatResponder.Config:
            if self.system_file is not None and "system" in self.model_fields_set:
                raise ValueError("give the system prompt as system or as system_file, not both")
            if len(set(self.tools)) != len(self.tools):
                raise ValueError("tools names a tool twice")
            return self

    def __init__(self, config: Config) -> None:
        super().__init__(config)
        self.config: ChatResponder.Config = config
        self.conversation = Conversation(config.history, config.forget_after, config.memory_file)
        self.counters = {"requests": 0, "tool_calls": 0, "prompt_tokens": 0, "completion_tokens": 0}
        self._system = config.system
        self._failures = Failures(SECTION, "reply", config)
        self._client: Any = None
        self._tools: Toolbox | None = None

    async def __aenter__(self) -> ChatResponder:
        self._client = open_client(self.config, self.name)
        if self.config.system_file is not None:
            try:
                self._system = (await asyncio.to_thread(self.config.system_file.read_text, encoding="utf-8")).strip()
            except (OSError, UnicodeDecodeError) as exc:
                raise BackendError(f"cannot read system_file {self.config.system_file}: {exc}", retryable=False) from None
        await asyncio.to_thread(self.conversation.load)
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.conversation.flush()
        if self._client is not None:
            with contextlib.suppress(Exception):
                await self._client.close()
            self._client = None

    def stats(self) -> Mapping[str, float]:
        return {**self.counters, "remembered": len(self.conversation)}

    @classmethod
    def doctor(cls, config: Config, section: str) -> list[Check]:
        """``magoo doctor``: the endpoint answers, takes the key and has the model (blocking, a few seconds)."""
        from .doctor import endpoint_rows

        return endpoint_rows(config, section, config.model)

    # ---- a turn ---------------------------------------------------------------------------------

    async def respond(self, transcript: Transcript, context: TurnContext | None = None) -> AsyncIterator[str | Reply]:
        """The reply's text deltas as the server writes them; the last item is a ``Reply(text="",
        follow_up=True)`` when the reply ends with a question. Nothing at all when the model chose
        to say nothing. Raises :class:`BackendError` (one line) when the server fails; what was
        yielded before stays said and is remembered."""
        turn = context.turn if context is not None else 0
        tools = self._chosen(context)
        messages: list[dict[str, Any]] = [*self._system_message(), *self.conversation.messages(),
                                          {"role": "user", "content": transcript.text}]
        said: list[str] = []
        remembered = False
        try:
            for round_ in range(self.config.max_tool_rounds + 1):
                calls = ToolCalls()
                text: list[str] = []
                offer = tools if round_ < self.config.max_tool_rounds else None
                async for delta in self._stream(messages, offer, calls):
                    text.append(delta)
                    said.append(delta)
                    yield delta
                if not calls:
                    break
                if offer is None:  # a server that calls tools it was not offered: stop here
                    why = f"after {round_} rounds (max_tool_rounds)" if tools else "though [responder] tools turns none on"
                    log.warning("turn %d: the model calls tools %s; its reply ends here", turn, why)
                    break
                done = calls.done()
                self.counters["tool_calls"] += len(done)
                log.info("turn %d: the model calls %s", turn, ", ".join(c.name or "?" for c in done))
                results = await run_calls(tools or Toolbox(), done)
                if any(result.silent for result in results):
                    log.info("turn %d: the model chose to say nothing", turn)
                    said.clear()
                    break
                messages += [assistant_message("".join(text), done), *result_messages(done, results)]
            reply = "".join(said).strip()
            self.conversation.add(turn, transcript.text, reply)
            remembered = True
            if reply.rstrip(ENDING_QUOTES).endswith("?"):
                yield Reply("", follow_up=True)
        finally:
            if not remembered:  # failed or closed part-way: what was said stays said
                self.conversation.add(turn, transcript.text, "".join(said).strip())

    def heard(self, turn: int, text: str) -> None:
        """The engine: the reply of ``turn`` was cut short after ``text`` was said; remember only that."""
        self.conversation.cut(turn, text)

    def _system_message(self) -> list[dict[str, str]]:
        return [{"role": "system", "content": self._system}] if self._system else []

    def _chosen(self, context: TurnContext | None) -> Toolbox | None:
        """The tools the profile turned on, from the run's toolbox; names it does not have are
        said once (listing the tools there are) and left out."""
        if not self.config.tools or context is None:
            return None
        if self._tools is None:
            available = Toolbox(dict(context.tools))
            known = [name for name in self.config.tools if name in available]
            unknown = [name for name in self.config.tools if name not in available]
            if unknown:
                there = ", ".join(sorted(available)) or "none"
                log.warning("[responder] tools: no tool named %s; the tools there are: %s",
                            ", ".join(map(repr, unknown)), there)
            self._tools = available.choose(known)
        return self._tools or None

    async def _stream(self, messages: list[dict[str, Any]], tools: Toolbox | None, calls: ToolCalls) -> AsyncIterator[str]:
        """One streamed request: its text deltas; its tool-call deltas go into ``calls``."""
        config = self.config
        request: dict[str, Any] = {"model": config.model, "messages": messages, "stream": True,
                                   "stream_options": {"include_usage": True}}
        if tools:
            request["tools"] = tool_specs(tools)
        if config.temperature is not None:
            request["temperature"] = config.temperature
        if config.max_tokens is not None:  # OpenAI's reasoning models take only the new name; local servers the old
            request["max_completion_tokens" if config.is_openai else "max_tokens"] = config.max_tokens
        self.counters["requests"] += 1
        create = self._client.chat.completions.create
        stream = await call(lambda: bounded(create(**request), config.timeout), self._failures, config.retries)
        received = 0
        try:
            chunks = aiter(stream)
            while True:
                async with asyncio.timeout(config.timeout):  # a stream that stalls ends the turn
                    try:
                        chunk = await anext(chunks)
                    except StopAsyncIteration:
                        return
                received += 1
                usage = getattr(chunk, "usage", None)
                if usage is not None:
                    self.counters["prompt_tokens"] += usage.prompt_tokens or 0
                    self.counters["completion_tokens"] += usage.completion_tokens or 0
                for choice in chunk.choices or ():
                    delta = choice.delta
                    if delta is None:
                        continue
                    if delta.tool_calls:
                        calls.feed(delta.tool_calls)
                    if delta.content:
                        yield delta.content
        except (asyncio.CancelledError, GeneratorExit):
            raise
        except Exception as exc:
            raise self._failures.error(exc, received=_pieces(received)) from None
        finally:
            with contextlib.suppress(Exception):
                await stream.close()


def _pieces(received: int) -> str:
    """What of a streamed answer had arrived, for a message."""
    if received == 0:
        return "the answer's headers"
    return "1 chunk" if received == 1 else f"{received} chunks"
