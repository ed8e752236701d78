"""Every event's body, from a real run, against the examples in the README (its PyPI page)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from magoo_webhook import EVENTS

from webhook_helpers import Receiver, run_engine, webhook

README = Path(__file__).resolve().parents[1] / "README.md"
#: A wake word, a pause, a command, the silence that ends it.
COMMAND = [
    {"seconds": 0.4, "tone": 660.0, "amplitude": 0.5},
    {"seconds": 0.3},
    {"seconds": 1.0, "tone": 440.0, "amplitude": 0.3},
    {"seconds": 1.2},
]
#: Two turns: the first one's speech-to-text fails (error), the second works (recovered), with
#: heartbeats all along: every event a webhook can send happens.
EVERYTHING = {
    "magoo": {"name": "kitchen"},
    "engine": {"heartbeat_interval": 0.01},
    "audio_source": {"backend": "scripted", "realtime": False, "segments": [{"seconds": 0.4}, *COMMAND, *COMMAND]},
    "stt": {"backend": "scripted", "fail": [1]},
}


@pytest.fixture(scope="module")
def bodies() -> dict[str, dict[str, Any]]:
    """The first body the receiver got for each event (for heartbeat, the first after a wake)."""
    import asyncio

    with Receiver() as receiver:
        record, [actuator] = asyncio.run(
            run_engine({**EVERYTHING, "actuators": [webhook(receiver.url, events=list(EVENTS))]}, turns=2)
        )
    assert actuator.stats()["failed"] == actuator.stats()["dropped"] == 0
    first: dict[str, dict[str, Any]] = {}
    for request in receiver.requests:
        body = request.json
        if body["event"] == "heartbeat" and body["last_wake"] is None:
            continue  # the README shows one after a wake: a heartbeat may come before the first
        first.setdefault(body["event"], body)
    return first


def readme_examples() -> dict[str, dict[str, Any]]:
    """The JSON block under each ``### `event``` heading of the README's Payloads section."""
    examples: dict[str, dict[str, Any]] = {}
    heading, block = None, None
    for line in README.read_text(encoding="utf-8").splitlines():
        if block is not None:
            if line.startswith("```"):
                if heading is not None and heading not in examples:
                    examples[heading] = json.loads("\n".join(block))
                block = None
            else:
                block.append(line)
        elif line.startswith("```json"):
            block = []
        elif match := re.match(r"^#{2,4} (.*)$", line):
            event = re.fullmatch(r"`(\w+)`", match.group(1).strip())
            heading = event.group(1) if event else None
    return examples


def shape(body: dict[str, Any]) -> dict[str, Any]:
    """The keys of a body, and of its timeline, which a receiver relies on."""
    keys: dict[str, Any] = {"keys": sorted(body)}
    for nested in ("timeline", "last_wake"):
        if isinstance(body.get(nested), dict):
            keys[nested] = sorted(body[nested])
    return keys


def test_every_event_is_sent_by_a_run(bodies):
    assert set(bodies) == set(EVENTS)
    for event, body in bodies.items():
        assert body["event"] == event and body["assistant"] == "kitchen" and len(body["id"]) == 32


@pytest.mark.parametrize("event", EVENTS)
def test_the_readme_shows_exactly_what_is_sent(bodies, event):
    examples = readme_examples()
    assert event in examples, f"README.md has no JSON example under a '### `{event}`' heading"
    assert examples[event]["event"] == event
    assert shape(examples[event]) == shape(bodies[event])


def test_the_bodies_carry_what_each_event_says(bodies):
    assert bodies["error"]["message"] == "[stt] scripted: scripted failure on utterance 1"
    assert (bodies["error"]["role"], bodies["error"]["turn"], bodies["error"]["retryable"]) == ("stt", 1, True)
    assert (bodies["recovered"]["role"], bodies["recovered"]["failures"]) == ("stt", 1)
    assert bodies["turn_end"]["outcome"] == "error" and bodies["turn_end"]["timeline"]["transcript"] is None
    assert (bodies["state_change"]["old"], bodies["state_change"]["new"]) == ("listening", "awake")
    assert "actuators:webhook" in bodies["startup"]["backends"]
    assert bodies["heartbeat"]["backends"]["actuators:webhook"].keys() == {"delivered", "failed", "dropped", "retries", "waiting"}
    assert bodies["speak_end"]["interrupted"] is False
    assert bodies["speech_start"]["timestamp"] <= bodies["speech_end"]["timestamp"]
