"""One request of a reply, fetched by its own task into memory and retried while that is safe.

The backend keeps one :class:`Fetch` ahead of the one being played, so the next piece of a
reply is already arriving while the current one plays and there is no gap between them.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from magoo_core import BackendError
from magoo_core.backoff import Backoff

from .client import MAX_RETRY_AFTER, Failure, FishClient

__all__ = ["RETRY_BASE", "RETRY_CAP", "Fetch"]

log = logging.getLogger("magoo.fish")

#: Seconds before the first retry (doubled each time, jittered), and at most.
RETRY_BASE = 0.5
RETRY_CAP = 4.0

_END = None


class Fetch:
    """The audio of one request, as it arrives.

    A failed attempt is retried (429, 5xx, timeouts, connection trouble; at most ``retries``
    times) as long as none of its audio has been taken by :meth:`get`: what arrived before the
    failure is then thrown away, so nothing is heard twice. A server's ``Retry-After`` of up to
    30 s is the delay; otherwise capped exponential backoff.

    :param client: the open client.
    :param text: what this request speaks.
    :param retries: retries allowed after the first attempt.
    :param sleep: how to wait before a retry (``asyncio.sleep``; tests pass their own).
    :param delays: every retry delay used is appended here.
    """

    def __init__(
        self, client: FishClient, text: str, *, retries: int,
        sleep: Callable[[float], Awaitable[object]], delays: list[float],
    ) -> None:
        self.text = text
        self.taken = False
        self.attempts = 0
        self._client = client
        self._retries = retries
        self._sleep = sleep
        self._delays = delays
        self._queue: asyncio.Queue[bytes | BaseException | None] = asyncio.Queue()
        self.task = asyncio.get_running_loop().create_task(self._run(), name=f"fish request {text[:30]!r}")

    async def get(self) -> bytes | None:
        """The next piece of audio, None at the end.

        :raises BackendError: the request failed for good.
        """
        item = await self._queue.get()
        if isinstance(item, BaseException):
            raise item
        if item is not _END:
            self.taken = True
        return item

    async def cancel(self) -> None:
        """Stop the request (its connection is closed) and wait until it has stopped."""
        self.task.cancel()
        await asyncio.gather(self.task, return_exceptions=True)

    async def _run(self) -> None:
        backoff = Backoff(RETRY_BASE, RETRY_CAP)
        while True:
            self.attempts += 1
            try:
                async for chunk in self._client.attempt(self.text):
                    self._queue.put_nowait(chunk)
                self._queue.put_nowait(_END)
                return
            except Failure as failure:
                delay = self._retry_delay(failure, backoff)
                if delay is None:
                    self._queue.put_nowait(self._client.error(failure, self.attempts))
                    return
                self._discard()
                reason = self._client.error(failure, 1).message
                log.info("%s; retry %d of %d in %.2f s", reason, self.attempts, self._retries, delay)
                self._delays.append(delay)
                await self._sleep(delay)
            except BackendError as exc:
                self._queue.put_nowait(exc)
                return
            except Exception as exc:  # a bug or an SDK surprise: still one readable line for the user
                log.debug("Fish Audio request failed unexpectedly", exc_info=True)
                self._queue.put_nowait(BackendError(f"Fish Audio request failed unexpectedly: {type(exc).__name__}"))
                return

    def _retry_delay(self, failure: Failure, backoff: Backoff) -> float | None:
        """Seconds to wait before retrying, or None when this failure is final."""
        if not failure.retryable or self.taken or self.attempts > self._retries:
            return None
        if failure.retry_after is not None:
            return failure.retry_after if failure.retry_after <= MAX_RETRY_AFTER else None
        return backoff.next()

    def _discard(self) -> None:
        while not self._queue.empty():
            self._queue.get_nowait()
