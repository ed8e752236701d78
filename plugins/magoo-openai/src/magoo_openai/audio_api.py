"""The client of ``[stt] openai`` and ``[tts] openai``, and the one line each failure becomes.

:func:`open_client` makes the SDK's ``AsyncOpenAI`` (``openai`` is imported then, never when the
plugin loads); :func:`call` runs one request with a bounded retry; :func:`failure` turns whatever
the SDK or its HTTP library raised into a :class:`~magoo_core.BackendError` of one readable line
that says what to fix and never holds the key. Runs on the event loop.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar
from urllib.parse import urlsplit

from pydantic import SecretStr

from magoo_core import BackendError, require
from magoo_core.secrets import Secrets

T = TypeVar("T")

OPENAI_URL = "https://api.openai.com/v1"
INSTALL = "uv pip install magoo-openai  (or: pip install 'openai>=1.60')"
#: sent as the key to a server that wants none (a local server): the SDK refuses to start without one
NO_KEY = "no-key"
#: a 429 or 5xx is retried at once only when the server asks to wait at most this long (seconds):
#: a voice turn that waits longer is worse than one clear line
MAX_RETRY_WAIT = 2.0
#: the wait before retrying a 5xx or a refused connection that named none (seconds)
DEFAULT_RETRY_WAIT = 0.25
#: characters of a server's own error message kept in ours
DETAIL_CHARS = 160


def open_client(base_url: str, api_key: SecretStr | None, timeout: float, *, backend: str) -> Any:
    """An ``openai.AsyncOpenAI`` for ``base_url``; the SDK's own retries are off (see :func:`call`).

    :raises MissingDependency: the ``openai`` module is not installed.
    """
    openai = require("openai", backend=backend, install=INSTALL)
    key = api_key.get_secret_value() if api_key is not None else NO_KEY
    return openai.AsyncOpenAI(base_url=base_url, api_key=key, timeout=timeout, max_retries=0)


def host(base_url: str) -> str:
    """``api.openai.com`` for messages: where the requests go, without scheme or path."""
    return urlsplit(base_url).netloc or base_url


class Failures:
    """Turns exceptions of one backend's requests into one-line :class:`BackendError`\\ s.

    :param section: the profile section (``"[stt] openai"``), named in every message.
    :param what: what the request asks for (``"transcription"``, ``"speech"``).
    :param base_url: where the requests go.
    :param api_key: the key (masked out of anything the server said), or None when none is set.
    :param timeout: seconds a request may take, told in the message of a timeout.
    """

    def __init__(self, section: str, what: str, base_url: str, api_key: SecretStr | None, timeout: float) -> None:
        self.section = section
        self.what = what
        self.host = host(base_url)
        self.official = self.host == host(OPENAI_URL)
        self.has_key = api_key is not None
        self.timeout = timeout
        self._mask = Secrets([api_key.get_secret_value()] if api_key is not None else [], mask="***")

    def retry_wait(self, exc: BaseException) -> float | None:
        """Seconds to wait before trying ``exc``'s request again, or None when it must not be
        retried now: a refusal (4xx but 429), a timeout, or a server that asks to wait too long."""
        openai = require("openai", backend="openai", install=INSTALL)
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

        :param received: what already arrived ("4800 bytes", "3 events"), when the answer broke off
            mid-way; "" when nothing did.
        """
        openai = require("openai", backend="openai", install=INSTALL)
        where = f"{self.section}: {self.host}"
        if isinstance(exc, (openai.APITimeoutError, TimeoutError)) or type(exc).__name__.endswith("Timeout"):
            if received:
                return BackendError(f"{where} stalled: nothing more of the {self.what} within {self.timeout:g} s after {received}")
            return BackendError(f"{where} sent no {self.what} within {self.timeout:g} s (timeout): is the server overloaded?")
        if isinstance(exc, openai.APIStatusError):
            return self._status(exc)
        if received:
            return BackendError(f"{where}: the {self.what} broke off after {received} ({self._detail(exc.__cause__ or exc)})")
        if isinstance(exc, openai.APIConnectionError):
            cause = self._detail(exc.__cause__ or exc)
            return BackendError(f"{where} cannot be reached ({cause}): check base_url and the network")
        return BackendError(f"{where}: the {self.what} failed ({self._detail(exc)})")

    def _status(self, exc: Any) -> BackendError:
        status = exc.status_code
        where = f"{self.section}: {self.host}"
        said = self._server_message(exc)
        said = f": {said}" if said else ""
        if status in (401, 403):
            if not self.has_key:
                return BackendError(
                    f"{where} wants an API key (HTTP {status}): add api_key = {{ env = \"OPENAI_API_KEY\" }} to"
                    " the section and set OPENAI_API_KEY in the environment or the profile's .env file",
                    retryable=False,
                )
            return BackendError(
                f"{where} rejected the API key (HTTP {status}): check the variable api_key reads (OPENAI_API_KEY in"
                " the examples), in the environment or the profile's .env file",
                retryable=False,
            )
        if status == 404:
            return BackendError(
                f"{where} has no such model or endpoint (HTTP 404{said}): check model and base_url", retryable=False
            )
        if status == 429:
            wait = retry_after(exc)
            asks = f"; it asks to wait {wait:.0f} s" if wait is not None else ""
            return BackendError(f"{where} is rate limiting (HTTP 429{said}){asks}")
        if status >= 500:
            wait = retry_after(exc)
            asks = f"; it asks to wait {wait:.0f} s" if wait is not None else ""
            return BackendError(f"{where} failed (HTTP {status}{said}){asks}: try again later")
        return BackendError(f"{where} refused the request (HTTP {status}{said}): check the section's options", retryable=False)

    def _server_message(self, exc: Any) -> str:
        body = getattr(exc, "body", None)
        message = body.get("message") if isinstance(body, dict) else None
        if isinstance(body, dict) and isinstance(body.get("error"), dict):
            message = body["error"].get("message")
        return self._detail(message) if isinstance(message, str) else ""

    def _detail(self, value: object) -> str:
        text = " ".join(str(value).split()) or type(value).__name__
        text = self._mask.mask(text)
        return text if len(text) <= DETAIL_CHARS else text[: DETAIL_CHARS - 1] + "…"


def retry_after(exc: Any) -> float | None:
    """The seconds a response's ``Retry-After`` (or ``retry-after-ms``) asks to wait; None without one."""
    response = getattr(exc, "response", None)
    headers = getattr(response, "headers", None)
    if headers is None:
        return None
    for header, divisor in (("retry-after-ms", 1000.0), ("retry-after", 1.0)):
        value = headers.get(header)
        if value is None:
            continue
        try:
            seconds = float(value) / divisor
        except ValueError:
            continue
        if math.isfinite(seconds) and seconds >= 0:
            return seconds
    return None


async def call(request: Callable[[], Awaitable[T]], failures: Failures, retries: int) -> T:
    """``await request()``, tried again up to ``retries`` times when :meth:`Failures.retry_wait`
    allows it (after that wait).

    :raises BackendError: the last failure, as one line.
    """
    for attempt in range(retries + 1):
        try:
            return await request()
        except Exception as exc:
            wait = failures.retry_wait(exc)
            if wait is None or attempt == retries:
                raise failures.error(exc) from None
        await asyncio.sleep(wait)
    raise AssertionError("unreachable")
