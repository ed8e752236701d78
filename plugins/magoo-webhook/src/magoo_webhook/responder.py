"""The webhook responder: the final transcript goes to a URL, and what comes back is spoken.

This is how a voice assistant hands commands to a home controller (Node-RED, Home Assistant,
a script of your own): the controller acts, and answers with the sentence to say.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import Field

from magoo_core import Backend, BackendConfig, BackendError, Reply, Transcript, hookimpl, require
from magoo_core.fields import Count, Seconds, StrictBool
from magoo_core.backoff import Backoff

from .options import Headers, WebhookUrl

if TYPE_CHECKING:
    import httpx

    from .transport import Attempt

log = logging.getLogger("magoo.webhook")

#: Answers that say the request was not acted on, so sending it again cannot run a command twice.
RETRY_STATUSES = frozenset({429, 502, 503, 504})
#: Client errors that a later try may cure; any other 4xx needs the profile or the receiver fixed.
TRANSIENT_CLIENT_ERRORS = frozenset({408, 425, 429})
#: Content types whose body is said as it is (JSON answers are read for their text_field).
SPOKEN_TEXT = frozenset({"text/plain"})


class WebhookResponder(Backend):
    """POSTs the final transcript as JSON and replies with the text of the answer."""

    name: ClassVar[str] = "webhook"

    class Config(BackendConfig):
        url: WebhookUrl = Field(description="Where to send the transcript: an http:// or https:// URL.")
        headers: Headers = Field(
            default_factory=dict,
            description='HTTP headers sent with every request; values may be secrets, '
            'Authorization = { env = "HA_TOKEN" } (never logged).',
        )
        timeout: Seconds(0.01, 600) = Field(10.0, description="Seconds one attempt may take, connecting and answering included.")
        retries: Count(0, 5) = Field(
            1,
            description="Further attempts when the receiver could not be reached or answered 429, 502, 503 or 504.",
        )
        retry_backoff: Seconds(0, 30, lo_open=True) = Field(0.5, description="Seconds before the first retry, doubled for each next one.")
        text_field: str = Field(
            "text",
            min_length=1,
            description="Field of a JSON answer that holds the text to say; dots reach into nested objects "
            "(response.speech.plain.speech).",
        )
        fields: dict[str, str] = Field(
            default_factory=dict, description="Fixed fields added to every request body (language, agent_id ...)."
        )
        metadata: StrictBool = Field(
            True,
            description="Also send confidence, assistant and turn; turn off for a receiver that refuses unknown fields.",
        )
        max_answer_bytes: Count(1, 10_000_000) = Field(
            65_536,
            description="Bytes of an answer read at most; a longer answer is refused (not spoken, not downloaded whole).",
        )

    def __init__(self, config: Config) -> None:
        super().__init__(config)
        self.config: WebhookResponder.Config = config
        #: The profile's ``[magoo] name``, known from ``magoo_on_startup``.
        self.assistant: str | None = None
        #: The turn of the last final transcript, known from ``magoo_on_transcript``.
        self.turn: int | None = None
        self.client: httpx.AsyncClient | None = None
        #: How a retry waits; tests replace it to record delays without waiting.
        self.sleep: Callable[[float], Awaitable[object]] = asyncio.sleep
        #: Every retry delay used, in order.
        self.retry_delays: list[float] = []
        self.counters = {"requests": 0, "retries": 0, "failures": 0, "silent": 0}

    async def __aenter__(self) -> WebhookResponder:
        """Open the HTTP client; nothing is sent before the first transcript."""
        require("httpx", backend=self.name, install="uv pip install magoo-webhook")
        from .transport import open_client

        self.client = open_client(self.config.headers, self.config.timeout)
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        if self.client is not None:
            client, self.client = self.client, None
            await client.aclose()

    def stats(self) -> dict[str, float]:
        """Requests sent (not counting retries), retries, failed requests, answers with nothing to say."""
        return dict(self.counters)

    # The engine registers every running backend with the plugin manager, so a responder hears
    # events too: these say which assistant is asking, and for which turn.

    @hookimpl
    def magoo_on_startup(self, profile):
        self.assistant = profile.name

    @hookimpl
    def magoo_on_transcript(self, transcript, turn):
        if transcript.final:
            self.turn = turn

    def payload(self, transcript: Transcript) -> dict[str, Any]:
        """The request body: ``text``, then (with ``metadata``) ``confidence``, ``assistant`` and
        ``turn``, then the profile's fixed ``fields``."""
        sent: dict[str, Any] = {"text": transcript.text}
        if self.config.metadata:
            sent.update(confidence=transcript.confidence, assistant=self.assistant, turn=self.turn)
        sent.update(self.config.fields)
        return sent

    async def respond(self, transcript: Transcript) -> Reply | None:
        """Send the transcript; the answer's text is the reply, an empty answer says nothing.

        :raises BackendError: no answer in time, no connection, or an error status; the message
            names the URL and the status, never a header.
        """
        from .transport import attempt, body

        if self.client is None:
            raise BackendError("the webhook responder is not started (use it inside 'async with')", retryable=False)
        cfg = self.config
        content = body(self.payload(transcript))
        backoff = Backoff(cfg.retry_backoff, max(30.0, cfg.retry_backoff))
        self.counters["requests"] += 1
        tries = 0
        while True:
            tries += 1
            result = await attempt(self.client, "POST", cfg.url, content, cfg.timeout, limit=cfg.max_answer_bytes)
            if result.problem is None:
                return self._reply(result)
            if tries > cfg.retries or not _safe_to_repeat(result):
                break
            self.counters["retries"] += 1
            delay = backoff.next()
            self.retry_delays.append(delay)
            log.debug("webhook responder %s: %s; attempt %d in %.1f s", cfg.url, result.problem, tries + 1, delay)
            await self.sleep(delay)
        self.counters["failures"] += 1
        raise _failure(cfg.url, result, tries)

    def _reply(self, result: Attempt) -> Reply | None:
        response = result.response
        if result.oversized:
            raise BackendError(
                f"webhook responder {self.config.url} answered more than {self.config.max_answer_bytes} bytes"
                f" ({_content_type(response) or 'no content type'}): not spoken; answer with the sentence to say,"
                " or raise [responder] max_answer_bytes",
                retryable=False,
            )
        text = self._answer_text(response)
        if text is None or not text.strip():
            self.counters["silent"] += 1
            log.debug("webhook responder %s: HTTP %d with nothing to say", self.config.url, response.status_code)
            return None
        return Reply(text.strip())

    def _answer_text(self, response: httpx.Response) -> str | None:
        url, field = self.config.url, self.config.text_field
        if response.status_code == 204 or not response.content.strip():
            return None
        kind = _content_type(response)
        if kind in SPOKEN_TEXT or (not kind and _looks_like_text(response.content)):
            return response.text
        if not (kind == "application/json" or kind.endswith("+json")):
            raise BackendError(
                f"webhook responder {url} answered {kind or 'bytes that are not text'} (HTTP {response.status_code}),"
                " not text/plain or JSON: magoo does not speak it; answer with text/plain or JSON"
                f' ({{"{field}": "..."}}); a web page here is often a login page or a wrong url',
                retryable=False,
            )
        try:
            data = response.json()
        except ValueError:
            raise BackendError(f"webhook responder {url} answered with invalid JSON (HTTP {response.status_code})") from None
        value = _dig(data, field.split(".")) if isinstance(data, dict) else data
        if value is None or isinstance(value, str):
            return value
        raise BackendError(
            f"webhook responder {url}: the answer's {field!r} is {_kind(value)}, not text; "
            "set [responder] text_field to the field that holds the sentence to say",
            retryable=False,
        )


def _content_type(response: httpx.Response) -> str:
    return response.headers.get("content-type", "").split(";")[0].strip().lower()


def _looks_like_text(content: bytes) -> bool:
    """An answer without a content type is spoken only when it is UTF-8 text (no NUL bytes)."""
    if b"\x00" in content:
        return False
    try:
        content.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _dig(data: Any, path: list[str]) -> Any:
    for key in path:
        if not isinstance(data, dict):
            return None
        data = data.get(key)
    return data


def _kind(value: Any) -> str:
    return {dict: "an object", list: "a list", bool: "true or false"}.get(type(value), "a number")


def _safe_to_repeat(result: Attempt) -> bool:
    """Only when the receiver surely did not act: no connection, or a status that says it did not.

    A timeout or a 500 may come after the command was carried out; sending it again could
    switch a light twice.
    """
    return not result.reached or result.status in RETRY_STATUSES


def _failure(url: str, result: Attempt, tries: int) -> BackendError:
    status = result.status
    after = f" after {tries} attempts" if tries > 1 else ""
    if status is not None and 300 <= status < 400:
        location = result.response.headers.get("location") if result.response is not None else None
        return BackendError(
            f"webhook responder {url} answered {result.problem}, a redirect to {location or 'nowhere given'};"
            " magoo does not follow redirects (the command would go to another address unseen):"
            " set [responder] url to the address that answers",
            retryable=False,
        )
    if status in (401, 403):
        return BackendError(
            f"webhook responder {url} refused the request ({result.problem}): check the [responder] headers",
            retryable=False,
        )
    if status in (404, 405):
        return BackendError(f"webhook responder {url} answered {result.problem}: check the [responder] url", retryable=False)
    if status is not None and status < 500 and status not in TRANSIENT_CLIENT_ERRORS:
        return BackendError(
            f"webhook responder {url} refused the request body ({result.problem}): check [responder] fields, "
            "or set metadata = false for a receiver that refuses unknown fields",
            retryable=False,
        )
    return BackendError(f"webhook responder {url}: {result.problem}{after}")
