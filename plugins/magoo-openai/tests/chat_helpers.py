"""What the chat tests share: the key, a responder on a loopback server, collecting a reply."""

from __future__ import annotations

import contextlib
from typing import Any

from magoo_core.tools import Toolbox
from magoo_core.types import Reply, Transcript, TurnContext
from magoo_openai import ChatResponder

#: long and unusual, so a test finds it wherever it leaks
KEY = "sk-loopback-6f1d9c0e2b7a4c58a1e3"
VARIABLE = "MAGOO_TEST_OPENAI_KEY"


def config(server: Any, **options: Any) -> ChatResponder.Config:
    """A responder's config for ``server``, with the test key (as if from ``{ env = VARIABLE }``)."""
    from magoo_core.fields import EnvText

    options.setdefault("api_key", EnvText(KEY, VARIABLE))
    return ChatResponder.Config(base_url=server.base_url, **options)


@contextlib.asynccontextmanager
async def responder(server: Any, **options: Any):
    async with ChatResponder(config(server, **options)) as started:
        yield started


async def ask(responder: ChatResponder, text: str, turn: int = 1, tools: Toolbox | None = None) -> tuple[str, list[Any]]:
    """The reply's text and every item ``respond`` yielded."""
    items = [item async for item in responder.respond(Transcript(text), context=TurnContext(turn, tools=tools or Toolbox()))]
    return "".join(item for item in items if isinstance(item, str)), items


def follow_ups(items: list[Any]) -> list[bool | None]:
    return [item.follow_up for item in items if isinstance(item, Reply)]
