"""What every backend of this plugin shares: the endpoint's settings, the SDK client built from them,
the one retry policy, and the one translation of a failure into a readable line.

:class:`EndpointConfig` is ``base_url``, ``api_key``, ``timeout`` and ``retries``; each backend's
config extends it. :func:`open_client` makes the SDK's ``AsyncOpenAI`` (``openai`` is imported
then, never when the plugin loads), with the SDK's own retries off: :func:`call` retries, by
:meth:`Failures.retry_wait`. :class:`Failures` turns whatever the SDK or its HTTP library raised
into a :class:`~magoo_core.errors.BackendError` of one line that names the section, the server and
what to fix. The API key never appears in a message: a rejected key is named by the variable it
came from (``{ env = "OPENAI_API_KEY" }``), and a server's own words are masked before they are
quoted. Runs on the event loop.
"""

from __future__ import annotations

import asyncio
import email.utils
import logging
import math
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, field_validator

from magoo_core.errors import BackendError, require
from magoo_core.fields import Count, Seconds
from magoo_core.logs import printable
from magoo_core.roles import BackendConfig
from magoo_core.secrets import Secrets

T = TypeVar("T")

OPENAI_URL = "https://api.openai.com/v1"
INSTALL = "uv pip install magoo-openai (or: pip install 'openai>=1.60')"
#: sent as the key to a server that wants none (a local server): the SDK refuses to start without one
NO_KEY = "no-key"
#: a 429 or 5xx is retried only when the server asks to wait at most this long (seconds): a voice
#: turn that waits longer is worse than one clear line
MAX_RETRY_WAIT = 2.0
#: the wait before retrying a 5xx or a refused connection that named none (seconds)
DEFAULT_RETRY_WAIT = 0.25
#: characters of a server's own error message quoted in a line, at most
DETAIL_CHARS = 160
#: the SDK's HTTP libraries, which log every request at INFO
HTTP_LOGGERS = ("httpx", "httpx2")
#: how a message names the key when it did not come from a variable
KEY_FALLBACK = "the variable api_key reads (OPENAI_API_KEY in the examples)"


class EndpointConfig(BackendConfig):
    """``base_url``, ``api_key``, ``timeout`` and ``retries``: where the server is and how to talk to it.
    A backend may give ``timeout`` and ``retries`` other defaults."""

    base_url: str = Field(
        OPENAI_URL,
        description="The server's OpenAI-compatible API root, up to /v1: OpenAI's, or e.g. http://localhost:11434/v1"
        " (Ollama), http://localhost:8000/v1 (speaches).",
    )
    api_key: SecretStr | None = Field(
        None, description='The API key: api_key = { env = "OPENAI_API_KEY" } (never logged); none for a local server.'
    )
    timeout: Seconds(0.1, 600) = Field(
        15.0, description="Seconds to wait for the answer to start, and for each next piece of it, before the turn gives up."
    )
    retries: Count(0, 5) = Field(
        1, description="Retries of a request refused with 429 or 5xx (only when the server asks to wait at most 2 s) or not connected."
    )
    @field_validator("base_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("must start with http:// or https:// and name a host (for example http://localhost:8000/v1)")
        return value.rstrip("/")

    @property
    def key(self) -> str:
        """The key's value, for the client only ("" when none)."""
        return self.api_key.get_secret_value() if self.api_key is not None else ""

    @property
    def key_name(self) -> str:
        """How a message names the key: its variable when it came from one."""
        return self.variable("api_key") or KEY_FALLBACK

    @property
    def is_openai(self) -> bool:
        """The server is OpenAI's own (not a compatible one)."""
        return urlsplit(self.base_url).hostname == urlsplit(OPENAI_URL).hostname

    @property
    def host(self) -> str:
        """``api.openai.com`` or ``127.0.0.1:8000``: where the requests go, for messages."""
        return urlsplit(self.base_url).netloc


def open_client(config: EndpointConfig, backend: str) -> Any:
    """An ``openai.AsyncOpenAI`` for ``config``, the SDK's own retries off (:func:`call` retries).
    A local server without a key gets a placeholder one. The HTTP library's per-request INFO
    lines are turned down to warnings, unless a level was set. Use it on the event loop only.

    :raises MissingDependency: the ``openai`` module is not installed.
    """
    openai = require("openai", backend=backend, install=INSTALL)
    for name in HTTP_LOGGERS:  # a line per request at INFO; magoo's own lines say what matters
        logger = logging.getLogger(name)
        if logger.level == logging.NOTSET:
            logger.setLevel(logging.WARNING)
    return openai.AsyncOpenAI(base_url=config.base_url, api_key=config.key or NO_KEY, timeout=config.timeout, max_retries=0)


class Failures:
    """Turns the exceptions of one backend's requests into one-line :class:`BackendError`\\ s.

    :param section: the profile section (``"[stt] openai"``), named first in every message.
    :param what: what a request asks for (``"reply"``, ``"transcription"``, ``"speech"``).
    :param config: the endpoint (its host, key, key variable and timeout are told or masked).
    """

    def __init__(self, section: str, what: str, config: EndpointConfig) -> None:
        self.section = section
        self.what = what
        self.config = config
        self.host = config.host
        self._mask = Secrets([config.key] if config.key else [], mask="***")

    def retry_wait(self, exc: BaseException) -> float | None:
        """Seconds to wait before trying ``exc``'s request again, or None when it must not be
        retried now: a refusal (4xx but 429), a timeout, or a server that asks to wait too long."""
        import openai

        if isinstance(exc, openai.APITimeoutError):
            return None
        if isinstance(exc, openai.APIConnectionError):
            return DEFAULT_RETRY_WAIT
        if isinstance(exc, openai.APIStatusError) and (exc.status_code == 429 or exc.status_code >= 500):
            wait = retry_after(exc)
            if wait is None:
                return DEFAULT_RETRY_WAIT
            return wait if wait <= MAX_RETRY_WAIT else None
        return None

    def error(self, exc: BaseException, *, received: str = "") -> BackendError:
        """The one line for ``exc`` (an SDK error, an HTTP library's error, a timeout).

        :param received: what had arrived when the answer broke off ("4800 bytes", "3 events");
            "" when the answer had not started.
        """
        import openai

        where = f"{self.section}: {self.host}"
        if isinstance(exc, (openai.APITimeoutError, TimeoutError)) or type(exc).__name__.endswith("Timeout"):
            if received:
                return BackendError(f"{where} stalled: nothing more of the {self.what} within {self.config.timeout:g} s after {received}")
            return BackendError(f"{where} gave no {self.what} within {self.config.timeout:g} s (timeout): is the server overloaded?")
        if isinstance(exc, openai.APIStatusError):
            return self._status(exc, where)
        if isinstance(exc, ValueError):  # a server-sent event whose data is not JSON
            return BackendError(f"{where} sent a stream that is not valid server-sent JSON events: is base_url an OpenAI-compatible API?")
        if received:
            return BackendError(f"{where}: the {self.what} broke off after {received} ({self._detail(exc.__cause__ or exc)})")
        if isinstance(exc, openai.APIConnectionError):
            cause = self._detail(exc.__cause__ or exc)
            return BackendError(f"{where} cannot be reached ({cause}): is the server running? check base_url")
        return BackendError(f"{where}: the {self.what} failed ({type(exc).__name__}: {self._detail(exc)})")

    def _status(self, exc: Any, where: str) -> BackendError:
        status = exc.status_code
        said = self._server_message(exc)
        said = f": {said}" if said else ""
        if status in (401, 403):
            if not self.config.key:
                return BackendError(
                    f"{where} wants an API key (HTTP {status}): add api_key = {{ env = \"OPENAI_API_KEY\" }} to"
                    f" {self.section} and set OPENAI_API_KEY in the environment or the profile's .env file",
                    retryable=False,
                )
            return BackendError(
                f"{where} rejected the API key (HTTP {status}): check {self.config.key_name},"
                " in the environment or the profile's .env file",
                retryable=False,
            )
        if status == 404:
            return BackendError(f"{where} has no such model or endpoint (HTTP 404{said}): check model and base_url", retryable=False)
        if status == 429 or status >= 500:
            wait = retry_after(exc)
            when = f"try again in {wait:.0f} s" if wait is not None else "try again later"
            trouble = "is rate limiting" if status == 429 else "failed"
            return BackendError(f"{where} {trouble} (HTTP {status}{said}): {when}")
        return BackendError(f"{where} refused the request (HTTP {status}{said}): check the options of {self.section}", retryable=False)

    def _server_message(self, exc: Any) -> str:
        body = getattr(exc, "body", None)
        message = body.get("message") if isinstance(body, dict) else None
        if isinstance(body, dict) and isinstance(body.get("error"), dict):
            message = body["error"].get("message")
        return self._detail(message) if isinstance(message, str) else ""

    def _detail(self, value: object) -> str:
        text = printable(" ".join(str(value).split())) or type(value).__name__
        text = self._mask.mask(text)
        return text if len(text) <= DETAIL_CHARS else text[: DETAIL_CHARS - 1] + "…"


def retry_after(exc: Any) -> float | None:
    """The seconds a response's ``retry-after-ms`` or ``Retry-After`` (seconds, or an HTTP date)
    asks to wait; None without one."""
    headers = getattr(getattr(exc, "response", None), "headers", None)
    if headers is None:
        return None
    for header, divisor in (("retry-after-ms", 1000.0), ("retry-after", 1.0)):
        value = headers.get(header)
        if value is None:
            continue
        try:
            seconds = float(value) / divisor
        except ValueError:
            seconds = _seconds_until(value) if header == "retry-after" else math.nan
        if math.isfinite(seconds) and seconds >= 0:
            return seconds
    return None


def _seconds_until(http_date: str) -> float:
    try:
        return max(0.0, email.utils.parsedate_to_datetime(http_date).timestamp() - time.time())
    except (TypeError, ValueError):
        return math.nan


async def call(request: Callable[[], Awaitable[T]], failures: Failures, retries: int) -> T:
    """``await request()``, tried again up to ``retries`` times when :meth:`Failures.retry_wait`
    allows it (after that wait). A :class:`BackendError` that ``request`` raises goes up as it is.

    :raises BackendError: the last failure, as one line.
    """
    for attempt in range(retries + 1):
        try:
            return await request()
        except BackendError:
            raise
        except Exception as exc:
            wait = failures.retry_wait(exc)
            if wait is None or attempt == retries:
                raise failures.error(exc) from None
        await asyncio.sleep(wait)
    raise AssertionError("unreachable")


async def bounded(request: Awaitable[T], seconds: float) -> T:
    """``await request`` for at most ``seconds`` (the SDK's own timeout bounds each read only)."""
    async with asyncio.timeout(seconds):
        return await request
