"""One HTTP attempt, described in one line: shared by the actuator and the responder.

Imports httpx, so only the backends import this module, when they start.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import httpx
from pydantic import SecretStr

USER_AGENT = "magoo-webhook"


@dataclass(frozen=True, slots=True)
class Attempt:
    """How one request went.

    :param response: the answer, whatever its status; None when there was none.
    :param problem: None for a 2xx answer, else one line: ``"HTTP 503"``, ``"no answer within 5 s"``.
    :param reached: False when the request surely never reached the receiver (no connection),
        so sending it again cannot make the receiver act twice.
    """

    response: httpx.Response | None
    problem: str | None
    reached: bool = True
    #: the answer had more than the ``limit`` bytes asked for; ``response`` holds the first ones
    oversized: bool = False

    @property
    def status(self) -> int | None:
        return None if self.response is None else self.response.status_code


def open_client(headers: Mapping[str, SecretStr], timeout: float) -> httpx.AsyncClient:
    """A client that sends ``headers`` (unwrapped here, and nowhere logged) with every request."""
    sent = {"User-Agent": USER_AGENT, "Content-Type": "application/json"}
    sent.update({name: value.get_secret_value() for name, value in headers.items()})
    return httpx.AsyncClient(headers=sent, timeout=httpx.Timeout(timeout), follow_redirects=False)


def body(payload: Mapping[str, Any]) -> bytes:
    """``payload`` as compact UTF-8 JSON; anything not JSON-able is sent as its ``str()``."""
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":"), default=str).encode()


async def attempt(
    client: httpx.AsyncClient, method: str, url: str, content: bytes, timeout: float, *, limit: int = 1 << 20
) -> Attempt:
    """Send one request; never raises for network trouble or an error status.

    ``timeout`` bounds the whole exchange, however slowly the receiver trickles its answer, and
    at most ``limit`` bytes of the answer are read (the rest is not downloaded; ``oversized``
    says so). Redirects are not followed: a 3xx is an answer like any other.
    """
    try:
        async with asyncio.timeout(timeout):
            response = await client.send(client.build_request(method, url, content=content), stream=True)
            try:
                data, oversized = await _read(response, limit)
            finally:
                await response.aclose()
    except httpx.ConnectTimeout:
        return Attempt(None, f"could not connect within {timeout:g} s", reached=False)
    except (TimeoutError, httpx.TimeoutException):
        return Attempt(None, f"no answer within {timeout:g} s")
    except httpx.ConnectError as exc:
        return Attempt(None, f"cannot connect: {_reason(exc)}", reached=False)
    except httpx.TransportError as exc:
        return Attempt(None, f"the connection failed: {_reason(exc)}")
    # the body as read (decoded, cut at limit), in a response of its own
    headers = [(k, v) for k, v in response.headers.multi_items() if k.lower() not in ("content-encoding", "content-length")]
    kept = {k: v for k, v in response.extensions.items() if k in ("reason_phrase", "http_version")}
    response = httpx.Response(response.status_code, headers=headers, content=data, request=response.request, extensions=kept)
    if response.is_success:
        return Attempt(response, None, oversized=oversized)
    return Attempt(response, f"HTTP {response.status_code}{_phrase(response)}", oversized=oversized)


async def _read(response: httpx.Response, limit: int) -> tuple[bytes, bool]:
    """At most ``limit`` bytes of the (decoded) body, and whether there were more."""
    data = bytearray()
    async for piece in response.aiter_bytes():
        data += piece
        if len(data) > limit:
            return bytes(data[:limit]), True
    return bytes(data), False


def _reason(exc: Exception) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _phrase(response: httpx.Response) -> str:
    phrase = response.reason_phrase.strip()
    return f" {phrase}" if phrase else ""
