"""The connection settings every backend of this plugin shares, the SDK client built from them,
and the one translation of the SDK's errors into :class:`~magoo_core.errors.BackendError` lines.

The ``openai`` SDK is imported only when a client is built or an error is translated (never when
the plugin loads). The API key never appears in a message: a rejected key is named by the
variable it came from (``{ env = "OPENAI_API_KEY" }``), and a server's own error text is
masked before it is quoted.
"""

from __future__ import annotations

import email.utils
import logging
import time
from typing import Any
from urllib.parse import urlsplit

from pydantic import Field, PrivateAttr, SecretStr, model_validator

from magoo_core.errors import BackendError, require
from magoo_core.fields import Count, Seconds
from magoo_core.logs import printable
from magoo_core.roles import BackendConfig

OPENAI_URL = "https://api.openai.com/v1"
INSTALL = "uv pip install magoo-openai (or: pip install openai)"
#: characters of a server's own error message quoted in a line, at most
QUOTE_CHARS = 200
#: the SDK's HTTP libraries, which log every request at INFO
HTTP_LOGGERS = ("httpx", "httpx2")


class EndpointConfig(BackendConfig):
    """``base_url``, ``api_key``, ``timeout`` and ``max_retries``: where the server is and how to talk to it."""

    base_url: str = Field(
        OPENAI_URL,
        description="The server's OpenAI-compatible API root: OpenAI's, or e.g. http://localhost:11434/v1"
        " (Ollama), http://localhost:8080/v1 (llama.cpp).",
    )
    api_key: SecretStr | None = Field(
        None, description='The API key: api_key = { env = "OPENAI_API_KEY" } (never logged); none for a local server.'
    )
    timeout: Seconds(0.1, 600) = Field(
        30.0, description="Seconds a request may take to answer, and a stream may stay silent, before the turn gives up."
    )
    max_retries: Count(0, 5) = Field(
        0, description="Retries of a request that failed with 429 or 5xx, by the SDK (each waits; 0: fail the turn at once)."
    )
    _key_variable: str = PrivateAttr("")

    @model_validator(mode="wrap")
    @classmethod
    def _remember_key_variable(cls, data: Any, handler: Any) -> Any:
        config = handler(data)
        key = data.get("api_key") if isinstance(data, dict) else None
        config._key_variable = getattr(key, "variable", "") or getattr(data, "_key_variable", "")
        return config

    @model_validator(mode="after")
    def _url(self) -> EndpointConfig:
        parts = urlsplit(self.base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"base_url must be an http:// or https:// address, like {OPENAI_URL}")
        return self

    @property
    def key(self) -> str:
        """The key's value, for the client only ("" when none)."""
        return self.api_key.get_secret_value() if self.api_key is not None else ""

    @property
    def key_name(self) -> str:
        """How a message names the key: its variable when it came from one."""
        return self._key_variable or "the api_key"

    @property
    def is_openai(self) -> bool:
        """The server is OpenAI's own (not a compatible one)."""
        return urlsplit(self.base_url).hostname == urlsplit(OPENAI_URL).hostname

    @property
    def host(self) -> str:
        parts = urlsplit(self.base_url)
        return f"{parts.hostname}:{parts.port}" if parts.port else str(parts.hostname)


def make_client(config: EndpointConfig, backend: str) -> Any:
    """An ``openai.AsyncOpenAI`` for ``config`` (a local server without a key gets a placeholder
    one: the SDK insists on a key, the server ignores it). Use it on the event loop only.
    The HTTP library's per-request INFO lines are turned down to warnings, unless a level was set."""
    openai = require("openai", backend=backend, install=INSTALL)
    for name in HTTP_LOGGERS:  # a line per request at INFO; magoo's own lines say what matters
        logger = logging.getLogger(name)
        if logger.level == logging.NOTSET:
            logger.setLevel(logging.WARNING)
    return openai.AsyncOpenAI(
        base_url=config.base_url,
        api_key=config.key or "no-key",
        timeout=config.timeout,
        max_retries=config.max_retries,
    )


def backend_error(exc: BaseException, config: EndpointConfig, *, what: str = "request", midway: bool = False) -> BackendError:
    """One line saying what went wrong with a request to ``config``'s server and what to do.

    :param what: what was asked, for the message ("reply").
    :param midway: the server had started to answer (a stream that broke, not a server out of reach).
    """
    import openai

    host, key = config.host, config.key
    if isinstance(exc, (openai.AuthenticationError, openai.PermissionDeniedError)):
        if not key:
            fix = 'it needs a key: set api_key = { env = "OPENAI_API_KEY" } and the variable'
        else:
            fix = f"check {config.key_name} (in the environment or the profile's .env file)"
        return BackendError(f"{host} rejected the API key (HTTP {exc.status_code}): {fix}", retryable=False)
    if isinstance(exc, openai.RateLimitError):
        wait = retry_after(exc.response.headers)
        when = f"try again in {wait:.0f} s" if wait is not None else "try again later"
        return BackendError(f"{host} is rate limiting (HTTP 429): {when}; {quote(exc, key)}", restart=False)
    if isinstance(exc, openai.NotFoundError):
        return BackendError(f"{host} has no such model or path (HTTP 404): check model and base_url; {quote(exc, key)}", retryable=False)
    if isinstance(exc, openai.APIStatusError):
        retryable = exc.status_code >= 500
        fix = "the server failed; the next turn tries again" if retryable else "check the [responder] settings"
        return BackendError(f"{host} answered HTTP {exc.status_code}: {quote(exc, key)}; {fix}", retryable=retryable, restart=False)
    if isinstance(exc, (openai.APITimeoutError, TimeoutError)):
        return BackendError(f"{host} gave no {what} within {config.timeout:g} s (timeout); the next turn tries again", restart=False)
    if isinstance(exc, openai.APIConnectionError) and midway:
        return BackendError(f"the connection to {host} broke in the middle of the {what} ({_cause(exc)}); the next turn tries again", restart=False)
    if isinstance(exc, openai.APIConnectionError):
        return BackendError(f"cannot reach {host} ({_cause(exc)}): is the server running? check base_url", restart=False)
    if isinstance(exc, ValueError):  # sse.json() on a line that is not JSON
        return BackendError(f"{host} sent a stream that is not valid server-sent JSON events: is base_url an OpenAI-compatible API?", restart=False)
    return BackendError(f"{what} from {host} failed: {type(exc).__name__}: {mask(str(exc), key)}", restart=False)


def retry_after(headers: Any) -> float | None:
    """Seconds to wait from a ``Retry-After`` (seconds or an HTTP date) or ``retry-after-ms`` header."""
    try:
        if headers.get("retry-after-ms"):
            return float(headers["retry-after-ms"]) / 1000
        value = headers.get("retry-after")
        if not value:
            return None
        try:
            return max(0.0, float(value))
        except ValueError:
            return max(0.0, email.utils.parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError):
        return None


def quote(exc: Any, key: str) -> str:
    """The server's own message, short, one line, the key masked."""
    body = getattr(exc, "body", None)
    message = body.get("message") if isinstance(body, dict) else None
    if not isinstance(message, str) or not message:
        message = getattr(exc, "message", "") or str(exc)
    message = printable(mask(message, key))
    return message if len(message) <= QUOTE_CHARS else message[: QUOTE_CHARS - 1] + "…"


def mask(text: str, key: str) -> str:
    return text.replace(key, "****") if key and len(key) >= 4 else text


def _cause(exc: BaseException) -> str:
    cause = exc.__cause__ or exc.__context__
    return printable(str(cause)) or type(cause).__name__ if cause is not None else "connection failed"
