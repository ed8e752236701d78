"""The built-in ``local`` responder: a few useful answers with no network, for demos and desks.

It knows the time, the date, a joke, what it can do and a greeting; anything else is repeated
back through a template. Intents are matched on words, not on exact sentences, so "what's the
time", "tell me the time please" and a pocketsphinx "what time is it" all find the time.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime
from typing import ClassVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, field_validator

from magoo_core.fields import Template
from magoo_core.plugins import hookimpl
from magoo_core.roles import Backend, BackendConfig
from magoo_core.types import Reply, Transcript

JOKES = (
    "Why did the robot go on holiday? It needed to recharge its batteries.",
    "I would tell you a joke about UDP, but you might not get it.",
    "What do you call a fish with no eyes? A fsh.",
    "Why was the computer cold? It left its Windows open.",
)

# (intent, pattern): the first that matches wins; patterns see the lower-cased words
INTENTS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("help", re.compile(r"\bwhat (can|do) you do\b|\bhelp\b")),
    ("time", re.compile(r"\btime\b|\bo'?clock\b")),
    ("date", re.compile(r"\bdate\b|\bwhat day\b|\bwhich day\b|\btoday\b")),
    ("joke", re.compile(r"\bjokes?\b|\bfunny\b")),
    ("hello", re.compile(r"^(hello|hi|hey|good (morning|afternoon|evening))\b")),
)


@hookimpl
def magoo_register_responders(register):
    register(LocalResponder)


class LocalResponder(Backend):
    """Answers the time, the date, a joke, "what can you do" and hello offline; echoes the rest."""

    name: ClassVar[str] = "local"

    class Config(BackendConfig):
        timezone: str | None = Field(
            None, description="IANA time zone for the time and date (e.g. 'Europe/Berlin'); unset uses the system's."
        )
        jokes: list[str] = Field(default_factory=lambda: list(JOKES), min_length=1, description="Jokes, told in turn.")
        fallback: Template("text") = Field(
            "You said: {text}", description="The answer to anything else; {text} is what was heard. Empty: no answer."
        )

        @field_validator("timezone")
        @classmethod
        def _known_zone(cls, value: str | None) -> str | None:
            if value is not None:
                try:
                    ZoneInfo(value)
                except (ZoneInfoNotFoundError, ValueError):
                    raise ValueError(f"unknown time zone '{value}'; use a name like 'Europe/Berlin'") from None
            return value

    config: Config

    def __init__(self, config: Config) -> None:
        super().__init__(config)
        self._zone = ZoneInfo(config.timezone) if config.timezone else None
        #: the clock (replaceable in tests); returns an aware datetime in the configured zone
        self.now: Callable[[], datetime] = lambda: datetime.now(self._zone).astimezone(self._zone)
        self._jokes_told = 0
        self.answered: dict[str, int] = {}

    async def respond(self, transcript: Transcript) -> Reply | None:
        """Never blocks, never fails: an answer for every transcript (None only for an empty fallback)."""
        intent = intent_of(transcript.text)
        self.answered[intent] = self.answered.get(intent, 0) + 1
        text = self._answer(intent, transcript.text)
        return Reply(text) if text else None

    def stats(self) -> dict[str, float]:
        return dict(self.answered)

    def _answer(self, intent: str, heard: str) -> str:
        now = self.now()
        if intent == "time":
            return f"It is {now.strftime('%I:%M %p').lstrip('0')}."
        if intent == "date":
            return f"Today is {now.strftime('%A, %B')} {now.day}, {now.year}."
        if intent == "joke":
            joke = self.config.jokes[self._jokes_told % len(self.config.jokes)]
            self._jokes_told += 1
            return joke
        if intent == "help":
            return "I can tell you the time, the date, or a joke. Anything else, I repeat."
        if intent == "hello":
            return "Hello! Ask me the time, the date, or for a joke."
        return self.config.fallback.format(text=heard.strip()) if self.config.fallback else ""


def intent_of(text: str) -> str:
    """``"time"``, ``"date"``, ``"joke"``, ``"help"``, ``"hello"`` or ``"other"`` for a transcript."""
    words = " ".join(re.findall(r"[a-z']+", text.lower()))
    for intent, pattern in INTENTS:
        if pattern.search(words):
            return intent
    return "other"
