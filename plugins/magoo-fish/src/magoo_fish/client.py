"""One Fish Audio TTS request through the legacy SDK, with timeouts and failures sorted by cause.

Why the legacy package ``fish_audio_sdk`` and not the new ``fishaudio``: ``session.tts.awaitable``
sends with ``stream=True`` and yields the body as it arrives, while ``fishaudio``'s ``tts.stream``
downloads the whole body before yielding its first chunk, which would make the first sound wait
for the whole sentence to be synthesized.

Imported when the backend starts (it imports httpx and the SDK), never when the plugin loads.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import email.utils
import errno
import json
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import httpx
from fish_audio_sdk import HttpCodeErr, Prosody, Session, TTSRequest

from magoo_core import BackendError
from magoo_core.secrets import Secrets

if TYPE_CHECKING:
    from . import FishTextToSpeech

__all__ = ["MAX_RETRY_AFTER", "Failure", "FishClient"]

log = logging.getLogger("magoo.fish")

#: How much of an error body is read for its message.
ERROR_BODY_LIMIT = 4096
#: A Retry-After longer than this (seconds) is not waited for: the reply would come too late.
MAX_RETRY_AFTER = 30.0


@dataclass
class _Exchange:
    """What the response hook saw of the HTTP exchange of one attempt."""

    response: httpx.Response | None = None
    status: int | None = None
    message: str | None = None
    retry_after: float | None = None


# Each attempt runs in its own task (see pipeline.Fetch), so a context variable tells the
# response hook, which the SDK's client calls, which attempt a response belongs to.
_exchange: contextvars.ContextVar[_Exchange | None] = contextvars.ContextVar("magoo_fish_exchange", default=None)


class Failure(Exception):
    """Why one attempt failed, sorted for the retry decision.

    :param kind: ``"http"``, ``"timeout"``, ``"connect"`` or ``"broken"`` (the connection failed
        after the request went out).
    :param retryable: another attempt could succeed (429, 5xx, timeouts, connection trouble).
    :param received: audio bytes this attempt had received before it failed.
    """

    def __init__(
        self, kind: str, detail: str, *, retryable: bool, received: int = 0,
        status: int | None = None, retry_after: float | None = None,
    ) -> None:
        super().__init__(detail)
        self.kind = kind
        self.detail = detail
        self.retryable = retryable
        self.received = received
        self.status = status
        self.retry_after = retry_after


class FishClient:
    """The SDK session of one backend, opened in ``__aenter__`` and closed in ``__aexit__``."""

    def __init__(self, config: FishTextToSpeech.Config) -> None:
        self.config = config
        self.base_url = config.base_url.rstrip("/")
        self._key = config.api_key.get_secret_value()
        self._session: Session | None = None

    async def open(self) -> None:
        self._session = Session(self._key, base_url=self.base_url)
        # The SDK builds its own httpx client; the hook is how the error body and Retry-After,
        # which HttpCodeErr drops, reach us, and how the streamed response can be closed.
        self._session._async_client.event_hooks["response"].append(_on_response)

    async def close(self) -> None:
        if self._session is not None:
            session, self._session = self._session, None
            await session.__aexit__(None, None, None)
            session.__exit__(None, None, None)

    def request(self, text: str) -> TTSRequest:
        """The body of the request that speaks ``text``, built and validated by the SDK."""
        cfg = self.config
        prosody = None if (cfg.speed, cfg.volume) == (1.0, 0.0) else Prosody(speed=cfg.speed, volume=cfg.volume)
        request = TTSRequest(
            text=text, chunk_length=cfg.chunk_length, format="mp3" if cfg.format == "opus" else cfg.format,
            sample_rate=cfg.sample_rate, mp3_bitrate=cfg.mp3_bitrate, opus_bitrate=cfg.opus_bitrate,
            reference_id=cfg.voice_id, normalize=cfg.normalize, latency=cfg.latency, prosody=prosody,
            top_p=cfg.top_p, temperature=cfg.temperature,
        )
        if cfg.format == "opus":
            # The legacy TTSRequest types format as wav|pcm|mp3 although the server also speaks
            # opus; model_copy(update=...) skips validation, and model_dump sends the value as is.
            request = request.model_copy(update={"format": "opus"})
        return request

    async def attempt(self, text: str) -> AsyncIterator[bytes]:
        """Send one request and yield its audio as it arrives.

        :raises Failure: the attempt failed; nothing is retried here.
        """
        if self._session is None:
            raise BackendError("the fish backend is not started (use it inside 'async with')", retryable=False)
        exchange = _Exchange()
        _exchange.set(exchange)
        cfg = self.config
        stream = self._session.tts.awaitable(self.request(text), backend=cfg.model)
        received = 0
        started = time.monotonic()
        try:
            while True:
                wait = cfg.first_byte_timeout if received == 0 else cfg.read_timeout
                try:
                    async with asyncio.timeout(wait):
                        chunk = await anext(stream)
                except StopAsyncIteration:
                    break
                if received == 0:
                    log.debug("first audio of %d-char request after %.0f ms", len(text), 1000 * (time.monotonic() - started))
                received += len(chunk)
                yield chunk
        except TimeoutError:
            raise Failure("timeout", f"{wait:g}", retryable=True, received=received) from None
        except Failure:
            raise
        except Exception as exc:
            if exchange.status is not None and not 200 <= exchange.status < 300:
                raise _http_failure(exchange) from None
            if isinstance(exc, HttpCodeErr):  # no hook result (cannot happen with our session)
                raise _http_failure(_Exchange(status=exc.status, message=exc.message)) from None
            if isinstance(exc, httpx.ConnectError):
                raise Failure("connect", _connect_reason(exc), retryable=True) from None
            if isinstance(exc, httpx.TransportError):
                raise Failure("broken", _describe(exc), retryable=True, received=received) from None
            raise
        finally:
            with contextlib.suppress(Exception):
                await stream.aclose()
            if exchange.response is not None:
                with contextlib.suppress(Exception):
                    await exchange.response.aclose()
            _exchange.set(None)

    def error(self, failure: Failure, attempts: int) -> BackendError:
        """The one line the user reads for ``failure``, after ``attempts`` attempts; never the key."""
        after = f" after {attempts} attempts" if attempts > 1 else ""
        detail = Secrets([self._key], mask="***").mask(failure.detail)  # also as bytes: b'Bearer ...'
        if failure.kind == "timeout":
            if failure.received:
                return BackendError(f"Fish Audio's stream stalled: no audio for {detail} s after {failure.received} bytes")
            return BackendError(f"Fish Audio sent no audio within {detail} s{after}")
        if failure.kind == "connect":
            return BackendError(f"cannot reach Fish Audio at {self.base_url}: {detail}{after}")
        if failure.kind == "broken":
            if failure.received:
                return BackendError(f"Fish Audio's stream broke off after {failure.received} bytes ({detail})")
            return BackendError(f"Fish Audio closed the connection before sending audio ({detail}){after}")
        status = failure.status
        said = f"HTTP {status}: {detail}" if detail else f"HTTP {status}"
        if status in (401, 403):
            return BackendError(
                f"Fish Audio rejected the API key (HTTP {status}): check FISH_API_KEY (the [tts] api_key)",
                retryable=False,
            )
        if status == 402:
            return BackendError(
                "no credit left on the Fish Audio account (HTTP 402): top it up at https://fish.audio", retryable=False
            )
        if status == 404:
            cfg = self.config
            what = f"voice {cfg.voice_id!r} or model {cfg.model!r}" if cfg.voice_id else f"model {cfg.model!r}"
            return BackendError(f"Fish Audio has no {what} ({said}): check voice_id and model in [tts]", retryable=False)
        if status == 429:
            wait = f"; it asks to wait {failure.retry_after:.0f} s" if (failure.retry_after or 0) > MAX_RETRY_AFTER else ""
            return BackendError(f"Fish Audio is rate limiting ({said}){after}{wait}")
        if status >= 500:
            wait = f"; it asks to wait {failure.retry_after:.0f} s" if (failure.retry_after or 0) > MAX_RETRY_AFTER else ""
            return BackendError(f"Fish Audio is overloaded ({said}){after}{wait}")
        if status in (400, 422):
            return BackendError(f"Fish Audio refused the request ({said}): check the [tts] options", retryable=False)
        return BackendError(f"Fish Audio answered {said}", retryable=False)


async def _on_response(response: httpx.Response) -> None:
    """httpx response hook: remember the response; read an error's body and close it."""
    exchange = _exchange.get()
    if exchange is None:
        return
    exchange.response = response
    exchange.status = response.status_code
    if response.is_success:
        return
    exchange.retry_after = _retry_after(response.headers.get("retry-after"))
    body = bytearray()
    with contextlib.suppress(Exception):
        # aiter_bytes leaves the body "not read", so the SDK still raises HttpCodeErr(status, phrase)
        async for piece in response.aiter_bytes():
            body += piece
            if len(body) >= ERROR_BODY_LIMIT:
                break
    with contextlib.suppress(Exception):
        await response.aclose()
    exchange.message = _error_message(bytes(body[:ERROR_BODY_LIMIT]), response.reason_phrase)


def _error_message(body: bytes, phrase: str) -> str:
    try:
        data: Any = json.loads(body)
    except ValueError:
        text = body.decode("utf-8", "replace").strip()
        return text.splitlines()[0][:200] if text else phrase
    if isinstance(data, dict):
        for key in ("message", "detail", "error"):
            if data.get(key):
                return str(data[key])[:200]
    return phrase


def _retry_after(value: str | None) -> float | None:
    """Seconds from a ``Retry-After`` header: a number, or an HTTP date."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    with contextlib.suppress(TypeError, ValueError, IndexError):
        when = email.utils.parsedate_to_datetime(value)
        return max(0.0, when.timestamp() - time.time())
    return None


def _http_failure(exchange: _Exchange) -> Failure:
    status = exchange.status or 0
    retryable = status == 429 or status >= 500
    return Failure("http", exchange.message or "", retryable=retryable, status=status, retry_after=exchange.retry_after)


def _connect_reason(exc: BaseException) -> str:
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ConnectionRefusedError) or getattr(seen, "errno", None) == errno.ECONNREFUSED:
            return "connection refused"
        if "refused" in str(seen).lower():
            return "connection refused"
        seen = seen.__cause__ or seen.__context__
    return _describe(exc)


def _describe(exc: BaseException) -> str:
    return str(exc) or type(exc).__name__
