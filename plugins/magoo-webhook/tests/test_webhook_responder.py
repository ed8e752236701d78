"""The webhook responder: the transcript out, the answer spoken, failures in one line."""

from __future__ import annotations

import logging
import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from magoo_core import BackendError, Reply, Transcript
from magoo_core.testing import run_profile
import magoo_webhook
from magoo_webhook import WebhookResponder

from webhook_helpers import TOKEN, Answer, Receiver, dead_url, json_answer

QUESTION = Transcript("turn on the kitchen light", confidence=0.93)
EXAMPLES = int(os.environ.get("MAGOO_HOSTILE_EXAMPLES", "30"))


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


# ---- answers that are not a sentence: web pages, files, redirects, floods -------------------------


@pytest.mark.parametrize(
    ("answer", "named"),
    [
        (Answer(200, b"<html><body>Please log in</body></html>", "text/html; charset=utf-8"), "answered text/html (HTTP 200)"),
        (Answer(200, b"\x89PNG\r\n\x1a\n\x00\x00", "image/png"), "answered image/png (HTTP 200)"),
        (Answer(200, b"\x00\x01\xff\xfe", "application/octet-stream"), "answered application/octet-stream"),
        (Answer(200, b"\xff\xfe\x00binary", ""), "answered bytes that are not text (HTTP 200)"),
    ],
    ids=["html", "png", "binary", "no-type-binary"],
)
async def test_an_answer_that_is_not_text_or_json_is_refused_in_one_line(answer, named):
    with Receiver(answer) as receiver:
        with pytest.raises(BackendError) as caught:
            await ask(responder(receiver.url))
    message = str(caught.value)
    assert named in message and "not text/plain or JSON: magoo does not speak it" in message
    assert "\n" not in message and "Please log in" not in message and not caught.value.retryable


async def test_an_answer_without_a_content_type_is_spoken_when_it_is_text():
    with Receiver(Answer(200, "It is on. ✓".encode(), "")) as receiver:
        assert await ask(responder(receiver.url)) == Reply("It is on. ✓")


async def test_a_redirect_is_not_followed_and_says_where_it_pointed():
    with Receiver(default=Answer(200, b'{"text": "elsewhere"}')) as elsewhere:
        with Receiver(Answer(307, b"", headers={"Location": elsewhere.url})) as receiver:
            with pytest.raises(BackendError) as caught:
                await ask(responder(receiver.url))
    assert elsewhere.requests == [], "the transcript went nowhere but the url of the profile"
    assert str(caught.value) == (
        f"webhook responder {receiver.url} answered HTTP 307 Temporary Redirect, a redirect to {elsewhere.url};"
        " magoo does not follow redirects (the command would go to another address unseen):"
        " set [responder] url to the address that answers"
    )
    assert not caught.value.retryable


async def test_an_answer_larger_than_max_answer_bytes_is_refused_not_downloaded():
    with Receiver(default=Answer(200, b"word " * 200_000, "text/plain")) as receiver:  # 1 MB
        with pytest.raises(BackendError, match=r"answered more than 1000 bytes \(text/plain\): not spoken"):
            await ask(responder(receiver.url, max_answer_bytes=1000))
        assert await ask(responder(receiver.url, max_answer_bytes=2_000_000)) is not None


def _fuzz_client(status: int, content_type: str | None, content: bytes):
    import httpx

    def answer(request):
        headers = {} if content_type is None else {"Content-Type": content_type}
        return httpx.Response(status, headers=headers, content=content)

    return httpx.AsyncClient(transport=httpx.MockTransport(answer), follow_redirects=False)


CONTENT_TYPES = st.sampled_from(
    [None, "", "text/plain", "text/plain; charset=utf-8", "application/json", "application/ld+json", "text/html",
     "application/xhtml+xml", "application/octet-stream", "image/png", "audio/mpeg", "text/csv", "application/xml"]
)


@settings(max_examples=EXAMPLES, deadline=None, database=None)
@given(
    status=st.sampled_from([200, 201, 202, 203, 204, 206, 301, 302, 303, 307, 308]),
    content_type=CONTENT_TYPES,
    content=st.binary(max_size=300) | st.text(max_size=200).map(str.encode) | st.just(b"<html>hi</html>"),
)
def test_only_text_or_json_is_ever_spoken(status, content_type, content):
    """Whatever a receiver answers, the reply is None, the text of a text/plain or JSON answer
    (or of UTF-8 bytes with no content type), or one line that says why nothing is spoken."""

    async def run():
        backend = responder("http://receiver.invalid/hook", retries=0)
        backend.client = _fuzz_client(status, content_type, content)
        try:
            return await backend.respond(QUESTION)
        finally:
            await backend.client.aclose()

    import asyncio

    kind = (content_type or "").split(";")[0]
    try:
        reply = asyncio.run(run())
    except BackendError as exc:
        assert "\n" not in str(exc)
        return
    assert 200 <= status < 300, "a redirect is never followed nor spoken"
    if reply is not None:
        assert kind in ("text/plain", "application/json", "application/ld+json") or (not kind and b"\x00" not in content)
