"""The built-in ``local`` responder: offline answers for the demo and a desk assistant."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from magoo_core import Outcome, Transcript
from magoo_core.default_plugins.local import LocalResponder, intent_of
from magoo_core.errors import ProfileError
from magoo_core.testing import build_plugins, make_profile, run_profile
from magoo_core.testing.contracts import ResponderContract


class TestLocalContract(ResponderContract):
    backend_class = LocalResponder


@pytest.mark.parametrize(
    ("heard", "intent"),
    [
        ("what time is it", "time"),
        ("What's the time, please?", "time"),
        ("is it five o'clock yet", "time"),
        ("what's the date today", "date"),
        ("what day is it", "date"),
        ("tell me a joke", "joke"),
        ("say something funny", "joke"),
        ("what can you do", "help"),
        ("hello there", "hello"),
        ("turn on the kitchen light", "other"),
        ("", "other"),
    ],
)
def test_intents_are_found_by_their_words(heard, intent):
    assert intent_of(heard) == intent


def respond(responder: LocalResponder, text: str) -> str | None:
    import asyncio

    reply = asyncio.run(responder.respond(Transcript(text, final=True)))
    return None if reply is None else reply.text


def test_the_answers_come_from_the_clock_in_the_configured_zone():
    responder = LocalResponder(LocalResponder.Config(timezone="Asia/Tokyo"))
    responder.now = lambda: datetime(2026, 11, 22, 15, 5, tzinfo=ZoneInfo("Asia/Tokyo"))
    assert respond(responder, "what time is it") == "It is 3:05 PM."
    assert respond(responder, "what's the date") == "Today is Sunday, November 22, 2026."
    real = LocalResponder(LocalResponder.Config(timezone="Asia/Tokyo"))
    assert real.now().utcoffset().total_seconds() == 9 * 3600


def test_jokes_are_told_in_turn_and_anything_else_is_echoed():
    responder = LocalResponder(LocalResponder.Config(jokes=["one", "two"], fallback="I heard {text}."))
    assert [respond(responder, "tell me a joke") for _ in range(3)] == ["one", "two", "one"]
    assert respond(responder, "  open the pod bay doors ") == "I heard open the pod bay doors."
    assert respond(LocalResponder(LocalResponder.Config(fallback="")), "open the doors") is None
    assert responder.stats() == {"joke": 3, "other": 1}


def test_an_unknown_time_zone_is_a_profile_error():
    with pytest.raises(ProfileError, match="unknown time zone 'Mars/Olympus'"):
        make_profile({"responder": {"backend": "local", "timezone": "Mars/Olympus"}}, build_plugins())


async def test_a_turn_with_the_local_responder_speaks_the_time():
    record = await run_profile({"responder": {"backend": "local"}})
    assert [t.outcome for t in record.timelines] == [Outcome.OK]
    assert record.replies[0].startswith("It is ") and record.replies[0].endswith(("AM.", "PM."))
