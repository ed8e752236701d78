"""``[responder] wyoming``: answers from a Wyoming handle or intent server.

``mode = "handle"`` (any Wyoming "brain": wyoming-handle-external, an LLM bridge): → ``transcript``
← ``handled{text}`` / ``not-handled{text}``; a server that streams answers ← ``handled-start``
← ``handled-chunk{text}``… ← ``handled-stop``, spoken from its first sentence on.
``mode = "intent"``: → ``recognize{text}`` ← ``intent{name, text}`` / ``not-recognized{text}``; the
intent's ``text`` (its response) is said. One connection per turn.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Mapping
from typing import Any, ClassVar, Literal

from pydantic import Field
from wyoming.asr import Transcript as WyomingTranscript
from wyoming.intent import Recognize

from magoo_core import Backend, BackendError
from magoo_core.fields import Seconds, StrictBool
from magoo_core.types import Reply, Transcript

from ..connection import Connection
from .service import ServerConfig, Service

log = logging.getLogger("magoo.wyoming")
SECTION = "[responder] wyoming"


class WyomingResponder(Backend):
    """Sends the user's words to a Wyoming handle or intent server and says its answer."""

    name: ClassVar[str] = "wyoming"

    class Config(ServerConfig):
        mode: Literal["handle", "intent"] = Field("handle", description="handle: the server answers in words; intent: it recognizes an intent (whose text is said).")
        say_not_handled: StrictBool = Field(True, description="Say the server's text when it could not handle or recognize the words (\"Sorry, ...\").")
        reply_timeout: Seconds(0.5, 300) = Field(30.0, description="Seconds the server may take to answer, and between two pieces of a streamed answer.")

    @classmethod
    def doctor(cls, config: Config, section: str) -> list:
        """``magoo doctor``: the server answers ``describe`` and has a handle (or intent) program."""
        from .doctor import server_rows

        return server_rows(cls, config, section)

    @staticmethod
    def wanted(config: Config) -> str:
        return f"{config.mode} program"

    @staticmethod
    def picker(config: Config):
        return lambda info: next((p for p in (info.handle if config.mode == "handle" else info.intent) if p.installed), None)

    def __init__(self, config: Config) -> None:
        super().__init__(config)
        self.config: WyomingResponder.Config = config
        self.service = Service(config, SECTION, self.wanted(config), self.picker(config))
        self.counters = {"answers": 0, "not_handled": 0, "failures": 0}

    async def __aenter__(self) -> WyomingResponder:
        await self.service.describe()
        return self

    def stats(self) -> Mapping[str, float]:
        return dict(self.counters)

    async def respond(self, transcript: Transcript) -> Reply | AsyncIterator[str] | None:
        """The server's answer to ``transcript``: a Reply, a stream of text pieces (a server that
        streams), or None (nothing to say).

        :raises BackendError: refused, closed or silent before answering, malformed frames.
        """
        text = transcript.text.strip()
        if not text:
            return None
        connection = await self.service.connect()
        streaming = False
        try:
            request = Recognize(text=text) if self.config.mode == "intent" else WyomingTranscript(text=text)
            await connection.send(request.event())
            while True:
                event = await connection.receive(self.config.reply_timeout, "an answer")
                if event.type == "handled-start":
                    streaming = True
                    return self._stream(connection)
                reply = self._answer(event)
                if reply is not False:
                    return reply
        except BackendError:
            self.counters["failures"] += 1
            raise
        finally:
            if not streaming:
                await connection.close()

    def _answer(self, event: Any) -> Reply | None | Literal[False]:
        """The reply an event gives; False for an event that is not an answer (keep reading)."""
        said = str(event.data.get("text") or "").strip()
        if event.type in ("handled", "intent"):
            self.counters["answers"] += 1
            if event.type == "intent":
                log.info("%s: intent %s", SECTION, event.data.get("name"))
            return Reply(said) if said else None
        if event.type in ("not-handled", "not-recognized"):
            self.counters["not_handled"] += 1
            return Reply(said) if said and self.config.say_not_handled else None
        return False

    async def _stream(self, connection: Connection) -> AsyncIterator[str]:
        """The pieces of a streamed answer until ``handled-stop`` (or a final ``handled``)."""
        self.counters["answers"] += 1
        try:
            while True:
                event = await connection.receive(self.config.reply_timeout, "the rest of the answer")
                if event.type == "handled-chunk":
                    piece = str(event.data.get("text") or "")
                    if piece:
                        yield piece
                elif event.type in ("handled-stop", "handled"):
                    return
        except BackendError:
            self.counters["failures"] += 1
            raise
        finally:
            await connection.close()
