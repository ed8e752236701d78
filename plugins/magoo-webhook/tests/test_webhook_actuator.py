"""The webhook actuator end to end: a run of the test profile against a real local receiver."""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import datetime

import pytest

from magoo_core import Outcome, ProfileError, WakeEvent
from magoo_core.testing import build_plugins, make_profile
import magoo_webhook
from magoo_webhook import WebhookActuator

from webhook_helpers import TOKEN, Answer, Receiver, dead_url, example_with, run_engine, webhook

#: Like examples/test.toml, for the tests that are not about the example itself.
EXAMPLE = {"magoo": {"name": "test"}, "wake": {"backend": "scripted", "level": 0.2, "model": "hey_magoo"}}
TURN_EVENTS = ["wake", "transcript", "reply", "turn_end"]
#: Seconds the hanging receiver's requests may take; the turn must end long before.
HANG_TIMEOUT = 1.5
ENVELOPE = {"event", "id", "assistant", "turn", "time"}


def wake() -> WakeEvent:
    return WakeEvent("hey_magoo", 0.9, 0.5, time.monotonic(), scores={"hey_magoo": 0.9, "alexa": 0.01})


async def test_a_run_of_the_example_profile_sends_the_wake_with_every_field_of_the_original_listener(caplog):
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="httpx")  # another backend of the process may have turned it down
    headers = {"Authorization": {"env": "HOOK_TOKEN"}, "X-Room": "kitchen"}
    with Receiver() as receiver:
        before = time.time()
        record, [actuator] = await run_engine(
            example_with(webhook(receiver.url, events=TURN_EVENTS, headers=headers)), environ={"HOOK_TOKEN": TOKEN}
        )
        after = time.time()

    [wake_body] = receiver.events("wake")
    assert set(wake_body) == ENVELOPE | {"wake_word", "confidence", "threshold", "timestamp", "model_name", "all_scores"}
    assert wake_body["event"] == "wake" and wake_body["assistant"] == "test" and wake_body["turn"] == 1
    assert wake_body["wake_word"] == "hey_magoo" and wake_body["model_name"] == "hey_magoo"
    assert wake_body["confidence"] == 0.9 and wake_body["threshold"] == 0.5
    assert wake_body["all_scores"] == {"hey_magoo": 0.9}
    assert before - 0.01 <= wake_body["timestamp"] <= after + 0.01, "the detection's wall-clock time"
    sent_at = datetime.fromisoformat(wake_body["time"])
    assert sent_at.tzinfo is not None and sent_at.utcoffset().total_seconds() == 0
    assert before - 0.01 <= sent_at.timestamp() <= after + 0.01

    [turn] = record.timelines
    [transcript] = receiver.events("transcript")
    assert (transcript["text"], transcript["final"], transcript["confidence"]) == ("what time is it", True, 1.0)
    so_far = transcript["timeline"]
    assert so_far["started"] == so_far["wake"] == 0.0
    assert 0.0 <= so_far["speech_end"] <= so_far["transcript"]
    assert so_far["reply"] is None and so_far["ended"] is None
    assert so_far["started_at"] == pytest.approx(wake_body["timestamp"], abs=0.002)
    [reply] = receiver.events("reply")
    assert reply["text"] == "You asked: what time is it"
    assert reply["timeline"]["transcript"] <= reply["timeline"]["reply"]
    [end] = receiver.events("turn_end")
    assert (end["outcome"], end["error"]) == ("ok", None)
    assert end["timeline"]["ended"] == round(turn.ended - turn.started, 3)
    assert end["latencies_ms"] == turn.latencies()

    assert [r.json["event"] for r in receiver.requests] == TURN_EVENTS
    for request in receiver.requests:
        assert request.method == "POST" and request.path == "/hook"
        assert request.headers["Authorization"] == TOKEN and request.headers["X-Room"] == "kitchen"
        assert request.headers["Content-Type"] == "application/json"
    assert actuator.stats() == {"delivered": 4, "failed": 0, "dropped": 0, "retries": 0, "waiting": 0}
    assert record.failures == []
    assert "hook-secret" not in caplog.text
    assert any(receiver.url in r.getMessage() for r in caplog.records), "guards the check above: httpx logged"


async def test_a_receiver_that_hangs_does_not_delay_the_turn_and_the_failure_is_reported(caplog):
    caplog.set_level(logging.INFO)
    with Receiver() as working:
        normal, _ = await run_engine(example_with(webhook(working.url, events=TURN_EVENTS)))
    with Receiver(default=Answer(hold=True)) as hanging:
        record, [actuator] = await run_engine(
            example_with(webhook(hanging.url, events=TURN_EVENTS, timeout=HANG_TIMEOUT, retries=0))
        )
        requests = list(hanging.requests)

    [usual] = normal.timelines
    [turn] = record.timelines
    assert turn.outcome is Outcome.OK and record.replies == ["You asked: what time is it"]
    assert requests and requests[0].json["event"] == "wake", "the wake's request reached the receiver"
    # the wake's request went out after the wake, so it could not time out before wake + timeout:
    # the turn was over before that, and took no longer than with a receiver that answers
    assert turn.ended < turn.wake + HANG_TIMEOUT
    assert turn.ended - turn.wake < (usual.ended - usual.wake) + HANG_TIMEOUT / 2
    assert record.failures == [], "a dead receiver is not a failure of the turn"

    stats = actuator.stats()
    assert stats["delivered"] == 0 and stats["failed"] >= 1
    assert stats["failed"] + stats["dropped"] == len(TURN_EVENTS)
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING and r.name == "magoo.webhook"]
    assert any(
        hanging.url in w and "could not deliver the wake event of turn 1" in w and f"no answer within {HANG_TIMEOUT:g} s" in w
        for w in warnings
    ), warnings


async def test_a_dead_url_does_not_delay_the_turn_and_every_event_is_reported(caplog):
    caplog.set_level(logging.WARNING)
    url = dead_url()
    record, [actuator] = await run_engine(
        {**EXAMPLE, "actuators": [webhook(url, events=TURN_EVENTS, retries=1, retry_backoff=0.01, timeout=HANG_TIMEOUT)]}
    )
    [turn] = record.timelines
    assert turn.outcome is Outcome.OK and turn.ended < turn.wake + HANG_TIMEOUT
    assert actuator.stats() == {"delivered": 0, "failed": 4, "dropped": 0, "retries": 4, "waiting": 0}
    failed = [r.getMessage() for r in caplog.records if "could not deliver" in r.getMessage()]
    assert len(failed) == 4 and all(url in m and "cannot connect" in m and "after 2 attempts" in m for m in failed)


async def test_retries_with_backoff_until_the_receiver_takes_it():
    with Receiver(Answer(500), Answer(503), default=Answer(200)) as receiver:
        actuator = WebhookActuator(WebhookActuator.Config(url=receiver.url, retries=2, retry_backoff=1.0))
        asked: list[float] = []
        async with actuator:

            async def sleep(seconds: float) -> None:
                asked.append(seconds)

            actuator.outbox.sleep = sleep
            actuator.magoo_on_wake(wake=wake(), turn=1)
    assert len(receiver.requests) == 3
    assert len({r.body for r in receiver.requests}) == 1, "the same body, id included, on every attempt"
    assert asked == actuator.outbox.retry_delays and len(asked) == 2
    assert 0.5 <= asked[0] <= 1.0 and 1.0 <= asked[1] <= 2.0, "doubling from retry_backoff, with jitter"
    assert actuator.stats() == {"delivered": 1, "failed": 0, "dropped": 0, "retries": 2, "waiting": 0}


async def test_gives_up_after_the_last_retry_and_never_retries_a_client_error(caplog):
    with Receiver(default=Answer(502)) as down, Receiver(default=Answer(404)) as wrong:
        actuators = [WebhookActuator(WebhookActuator.Config(url=r.url, retries=2, retry_backoff=0.01)) for r in (down, wrong)]
        for actuator in actuators:
            async with actuator:
                actuator.magoo_on_wake(wake=wake(), turn=7)
    assert (len(down.requests), len(wrong.requests)) == (3, 1)
    assert [a.stats()["failed"] for a in actuators] == [1, 1]
    messages = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    expected = f"webhook {down.url}: could not deliver the wake event of turn 7 (HTTP 502 Bad Gateway, after 3 attempts)"
    assert expected in messages[0]
    assert "(HTTP 404 Not Found, after 1 attempt)" in messages[1]


async def test_a_full_queue_drops_the_oldest_event_and_never_blocks(caplog):
    with Receiver(Answer(200, hold=True), default=Answer(200)) as receiver:
        actuator = WebhookActuator(WebhookActuator.Config(url=receiver.url, queue_size=2, timeout=10.0))
        async with actuator:
            actuator.magoo_on_wake(wake=wake(), turn=1)
            await asyncio.to_thread(receiver.wait_for, 1)  # turn 1 is being sent, and held
            for turn in (2, 3, 4, 5):
                actuator.magoo_on_wake(wake=wake(), turn=turn)
            assert actuator.stats()["waiting"] == 2 and actuator.stats()["dropped"] == 2
            receiver.release()
    assert [r.json["turn"] for r in receiver.requests] == [1, 4, 5]
    assert actuator.stats() == {"delivered": 3, "failed": 0, "dropped": 2, "retries": 0, "waiting": 0}
    overflow = [r.getMessage() for r in caplog.records if "dropping the oldest" in r.getMessage()]
    assert len(overflow) == 1 and receiver.url in overflow[0]


async def test_only_the_chosen_events_are_sent_and_partials_on_request():
    with Receiver() as finals, Receiver() as partials:
        await run_engine({**EXAMPLE, "actuators": [
            webhook(finals.url, events=["transcript"]),
            webhook(partials.url, events=["transcript"], partials=True, method="PUT"),
        ]})
    assert [(b["text"], b["final"]) for b in finals.events("transcript")] == [("what time is it", True)]
    sent = [(b["text"], b["final"]) for b in partials.events("transcript")]
    assert sent[-1] == ("what time is it", True) and len(sent) > 1 and not any(final for _, final in sent[:-1])
    assert {r.method for r in partials.requests} == {"PUT"}


def test_header_secrets_come_from_the_environment_and_are_never_shown():
    plugins = build_plugins(magoo_webhook)
    hook = webhook("http://127.0.0.1:8123/api/webhook/magoo", headers={"Authorization": {"env": "HOOK_TOKEN"}})
    [spec] = make_profile({"actuators": [hook]}, plugins, environ={"HOOK_TOKEN": TOKEN}).actuators
    assert spec.config.headers["Authorization"].get_secret_value() == TOKEN
    assert "hook-secret" not in repr(spec) and "hook-secret" not in str(spec.config)
    with pytest.raises(ProfileError, match="environment variable HOOK_TOKEN is not set"):
        make_profile({"actuators": [hook]}, plugins, environ={})


@pytest.mark.parametrize(
    ("options", "complaint"),
    [
        ({"url": "homeassistant.local:8123/api/webhook/magoo"}, "absolute http:// or https:// URL"),
        ({"url": "ftp://example.com/hook"}, "absolute http:// or https:// URL"),
        ({"events": ["wakeup"]}, "wake"),
        ({"events": []}, "events"),
        ({"retry_backoff": 60}, "retry_backoff"),
    ],
)
def test_a_wrong_option_is_a_profile_error(options, complaint):
    hook = {**webhook("http://127.0.0.1:8123/hook"), **options}
    with pytest.raises(ProfileError, match=complaint):
        make_profile({"actuators": [hook]}, build_plugins(magoo_webhook))


async def test_an_actuator_that_delivers_nothing_is_failing_in_the_status_until_it_delivers_again():
    from types import SimpleNamespace

    from magoo_core.lifecycle import _health

    url = dead_url()
    record, [actuator] = await run_engine(
        {**EXAMPLE, "actuators": [webhook(url, events=TURN_EVENTS, retries=0, timeout=HANG_TIMEOUT)]}
    )
    assert [turn.outcome for turn in record.timelines] == [Outcome.OK]  # a dead receiver costs no turn
    assert actuator.stats()["delivered"] == 0 and not actuator.healthy
    # what the engine's status reads for a running slot holding this actuator
    assert _health(SimpleNamespace(restarting=False, instance=actuator, unrecovered=0)) == "failing"

    with Receiver(default=Answer(200)) as receiver:
        actuator = WebhookActuator(WebhookActuator.Config(url=receiver.url))
        async with actuator:
            actuator.outbox._failing = 3  # failed before; one delivery makes it healthy again
            actuator.magoo_on_wake(wake=wake(), turn=1)
            for _ in range(250):
                if actuator.healthy:
                    break
                await asyncio.sleep(0.02)
        assert actuator.healthy and len(receiver.requests) == 1
