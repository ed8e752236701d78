"""The webhook responder: the transcript out, the answer spoken, failures in one line."""

from __future__ import annotations

import logging

import pytest

from magoo_core import BackendError, Reply, Transcript
from magoo_core.testing import run_profile
import magoo_webhook
from magoo_webhook import WebhookResponder

from webhook_helpers import TOKEN, Answer, Receiver, dead_url, json_answer

QUESTION = Transcript("turn on the kitchen light", confidence=0.93)


def responder(url: str, **options) -> WebhookResponder:
    return WebhookResponder(WebhookResponder.Config(url=url, **options))


async def ask(backend: WebhookResponder, transcript: Transcript = QUESTION) -> Reply | None:
    async with backend:
        async def no_wait(seconds: float) -> None:
            pass

        backend.sleep = no_wait
        return await backend.respond(transcript)


@pytest.mark.parametrize(
    ("answer", "options", "said"),
    [
        (json_answer({"text": "The kitchen light is on."}), {}, "The kitchen light is on."),
        (Answer(200, b"Done, it is on.\n", "text/plain; charset=utf-8"), {}, "Done, it is on."),
        (json_answer("Sure."), {}, "Sure."),
        (json_answer({"say": "Okay."}), {"text_field": "say"}, "Okay."),
        (
            json_answer({"response": {"speech": {"plain": {"speech": "Turned on the light"}}}}),
            {"text_field": "response.speech.plain.speech"},
            "Turned on the light",
        ),
    ],
    ids=["json", "plain-text", "json-string", "own-field", "home-assistant"],
)
async def test_speaks_the_text_of_the_answer(answer, options, said):
    with Receiver(answer) as receiver:
        assert await ask(responder(receiver.url, **options)) == Reply(said)


@pytest.mark.parametrize(
    "answer",
    [Answer(204), Answer(200), json_answer({"ok": True}), json_answer({"text": None}), json_answer({"text": "  "})],
    ids=["204", "empty", "no-field", "null", "blank"],
)
async def test_an_answer_with_nothing_to_say_is_no_reply(answer):
    with Receiver(answer) as receiver:
        backend = responder(receiver.url)
        assert await ask(backend) is None
    assert backend.stats()["silent"] == 1


async def test_sends_the_transcript_with_who_asks_and_the_headers():
    with Receiver(json_answer({"text": "ok"})) as receiver, Receiver(json_answer({"text": "ok"})) as strict:
        backend = responder(receiver.url, headers={"Authorization": TOKEN})
        backend.magoo_on_startup(profile=type("P", (), {"name": "kitchen"})())
        backend.magoo_on_transcript(transcript=QUESTION, turn=3)
        await ask(backend)
        await ask(responder(strict.url, metadata=False, fields={"language": "en"}))
    [request] = receiver.requests
    assert request.json == {"text": "turn on the kitchen light", "confidence": 0.93, "assistant": "kitchen", "turn": 3}
    assert request.headers["Authorization"] == TOKEN and request.headers["Content-Type"] == "application/json"
    assert strict.requests[0].json == {"text": "turn on the kitchen light", "language": "en"}


async def test_an_error_status_names_the_url_and_the_status_and_is_not_sent_twice(caplog):
    caplog.set_level(logging.DEBUG)
    with Receiver(default=Answer(500)) as receiver:
        backend = responder(receiver.url, headers={"Authorization": TOKEN})
        with pytest.raises(BackendError) as raised:
            await ask(backend)
    assert str(raised.value) == f"webhook responder {receiver.url}: HTTP 500 Internal Server Error"
    assert raised.value.retryable
    assert len(receiver.requests) == 1, "after a 500 the command may have run: never sent again"
    assert "hook-secret" not in str(raised.value) and "hook-secret" not in caplog.text


@pytest.mark.parametrize(
    ("status", "words"),
    [(401, "refused the request (HTTP 401 Unauthorized): check the [responder] headers"),
     (404, "answered HTTP 404 Not Found: check the [responder] url"),
     (400, "refused the request body (HTTP 400 Bad Request)")],
)
async def test_a_client_error_says_what_to_fix_and_is_not_retryable(status, words):
    with Receiver(default=Answer(status)) as receiver:
        with pytest.raises(BackendError) as raised:
            await ask(responder(receiver.url))
    assert str(raised.value).startswith(f"webhook responder {receiver.url}") and words in str(raised.value)
    assert not raised.value.retryable


async def test_retries_only_what_was_surely_not_acted_on():
    with Receiver(Answer(503), default=json_answer({"text": "Done."})) as receiver:
        backend = responder(receiver.url, retries=1)
        assert await ask(backend) == Reply("Done.")
    assert len(receiver.requests) == 2 and backend.stats()["retries"] == 1
    url = dead_url()
    with pytest.raises(BackendError, match=rf"webhook responder {url}: cannot connect: .* after 3 attempts"):
        await ask(responder(url, retries=2))


async def test_a_receiver_that_hangs_is_a_timeout_naming_the_url():
    with Receiver(default=Answer(hold=True)) as receiver:
        with pytest.raises(BackendError, match=rf"webhook responder {receiver.url}: no answer within 0.5 s$"):
            await ask(responder(receiver.url, timeout=0.5, retries=3))
    assert len(receiver.requests) == 1, "a timed-out command may have run: never sent again"


async def test_invalid_json_and_a_field_that_is_not_text_are_errors():
    with Receiver(Answer(200, b"{not json"), json_answer({"text": {"plain": "hi"}})) as receiver:
        with pytest.raises(BackendError, match="answered with invalid JSON"):
            await ask(responder(receiver.url))
        with pytest.raises(BackendError, match="the answer's 'text' is an object, not text; set \\[responder\\] text_field"):
            await ask(responder(receiver.url))


async def test_a_run_speaks_what_the_receiver_answers():
    with Receiver(default=json_answer({"text": "It is noon in the kitchen."})) as receiver:
        record = await run_profile(
            {"magoo": {"name": "kitchen"}, "responder": {"backend": "webhook", "url": receiver.url,
                                                         "headers": {"Authorization": {"env": "HOOK_TOKEN"}}}},
            plugins=[magoo_webhook], environ={"HOOK_TOKEN": TOKEN},
        )
    assert record.replies == ["It is noon in the kitchen."]
    assert record.plays and record.audio, "and it was spoken"
    [request] = receiver.requests
    assert request.json == {"text": "what time is it", "confidence": 1.0, "assistant": "kitchen", "turn": 1}
    assert request.headers["Authorization"] == TOKEN
