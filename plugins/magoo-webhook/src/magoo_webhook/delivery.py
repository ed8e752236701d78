"""The webhook actuator's outbox: a bounded queue of bodies and the one task that sends them.

Event hooks only append to the queue, which never blocks and never waits for the network; the
sender task posts the bodies one at a time, in order, retrying with backoff. When the receiver
is slow or down and the queue is full, the oldest body is dropped. Imports httpx (through
:mod:`.transport`), so the actuator imports this module when it starts.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
from pydantic import SecretStr

from magoo_core.backoff import Backoff

from .transport import Attempt, attempt, body, open_client

log = logging.getLogger("magoo.webhook")

#: Longest wait between two attempts, whatever ``retry_backoff`` is.
BACKOFF_CAP = 30.0
#: Bytes of a receiver's answer read at most (the actuator only needs its status).
ANSWER_BYTES = 65_536
#: Answers after which the same body may be accepted on another attempt (others are final).
RETRY_STATUSES = frozenset({408, 425, 429})


class Outbox:
    """Bodies waiting for delivery to one URL, and the task delivering them.

    :param url: where to send.
    :param method: ``"POST"`` or ``"PUT"``.
    :param headers: sent with every request; never logged.
    :param timeout: seconds one attempt may take, connecting and answering included.
    :param retries: further attempts after a failed one (429, 5xx, timeout, no connection).
    :param retry_backoff: seconds before the first retry, doubled for each next one (jittered).
    :param size: bodies kept waiting at most; one more drops the oldest.
    """

    def __init__(
        self, url: str, *, method: str, headers: dict[str, SecretStr], timeout: float, retries: int,
        retry_backoff: float, size: int,
    ) -> None:
        self.url = url
        self.method = method
        self.headers = headers
        self.timeout = timeout
        self.retries = retries
        self.retry_backoff = retry_backoff
        self.size = size
        #: How a retry waits; tests replace it to record delays without waiting.
        self.sleep: Callable[[float], Awaitable[object]] = asyncio.sleep
        #: Every retry delay used, in order.
        self.retry_delays: list[float] = []
        self.counters = {"delivered": 0, "failed": 0, "dropped": 0, "retries": 0}
        self._waiting: deque[dict[str, Any]] = deque()
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._client: httpx.AsyncClient | None = None
        self._task: asyncio.Task | None = None
        self._sending: dict[str, Any] | None = None
        self._closed = False
        self._failing = 0  # deliveries failed in a row
        self._overflowing = False

    @property
    def failing(self) -> int:
        """Events that failed in a row since the last delivery (0: the last one was delivered)."""
        return self._failing

    @property
    def waiting(self) -> int:
        """Bodies queued and not yet being sent."""
        return len(self._waiting)

    async def start(self) -> None:
        self._client = open_client(self.headers, self.timeout)
        self._task = asyncio.get_running_loop().create_task(self._run(), name=f"magoo-webhook {self.url}")

    def put(self, payload: dict[str, Any]) -> None:
        """Queue ``payload`` for sending; returns at once. A full queue drops its oldest body."""
        if self._closed:
            return
        if len(self._waiting) >= self.size:
            dropped = self._waiting.popleft()
            self.counters["dropped"] += 1
            if not self._overflowing:
                self._overflowing = True
                log.warning(
                    "webhook %s: %d events are waiting (the receiver is slow or down); dropping the oldest "
                    "(%s) and more as needed", self.url, self.size, dropped["event"],
                )
        self._waiting.append(payload)
        self._idle.clear()
        self._wake.set()

    async def close(self, flush: float) -> None:
        """Let the queue drain for up to ``flush`` seconds, then stop sending and close the client.

        Bodies still unsent then are counted as dropped and reported in one warning.
        """
        self._closed = True
        try:
            if self._task is not None:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(flush):
                        await self._idle.wait()
        finally:  # also when the engine's shutdown_timeout cuts the flush short
            await self._stop_sending(flush)
            if self._client is not None:
                client, self._client = self._client, None
                await client.aclose()

    async def _stop_sending(self, flush: float) -> None:
        if self._task is None:
            return
        task, self._task = self._task, None
        unsent = len(self._waiting) + (self._sending is not None)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        if unsent:
            self.counters["dropped"] += unsent
            self._waiting.clear()
            log.warning(
                "webhook %s: %d event(s) not delivered before shutdown (the receiver did not answer within %g s)",
                self.url, unsent, flush,
            )

    async def _run(self) -> None:
        while True:
            if not self._waiting:
                self._overflowing = False
                self._idle.set()
                self._wake.clear()
                await self._wake.wait()
                continue
            self._sending = self._waiting.popleft()
            try:
                await self._deliver(self._sending)
            finally:
                self._sending = None

    async def _deliver(self, payload: dict[str, Any]) -> None:
        assert self._client is not None
        content = body(payload)
        backoff = Backoff(self.retry_backoff, max(BACKOFF_CAP, self.retry_backoff))
        tries = 0
        while True:
            tries += 1
            result = await attempt(self._client, self.method, self.url, content, self.timeout, limit=ANSWER_BYTES)
            if result.problem is None:
                self.counters["delivered"] += 1
                if self._failing:
                    log.info("webhook %s: delivering again after %d failed event(s)", self.url, self._failing)
                    self._failing = 0
                return
            if tries > self.retries or not _worth_retrying(result):
                break
            delay = backoff.next()
            self.counters["retries"] += 1
            self.retry_delays.append(delay)
            log.debug("webhook %s: %s; attempt %d in %.1f s", self.url, result.problem, tries + 1, delay)
            await self.sleep(delay)
        self.counters["failed"] += 1
        self._failing += 1
        log.warning(
            "webhook %s: could not deliver the %s event%s (%s, after %d attempt%s); it is dropped",
            self.url, payload["event"], "" if payload.get("turn") is None else f" of turn {payload['turn']}",
            result.problem, tries, "" if tries == 1 else "s",
        )


def _worth_retrying(result: Attempt) -> bool:
    """A timeout, a lost connection, 5xx, 408, 425, 429: the receiver may take it next time."""
    status = result.status
    return status is None or status >= 500 or status in RETRY_STATUSES
