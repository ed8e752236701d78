"""The hand-over from a sound driver's callback thread to the asyncio loop, for :mod:`magoo_core.capture`.

:meth:`CaptureQueue.put` is the only call here that may come from another thread; everything
else belongs to one task on one loop. Audio is :class:`~magoo_core.types.AudioChunk`.
"""

from __future__ import annotations

import asyncio
from collections import deque

from .types import AudioChunk

__all__ = ["CaptureQueue", "QueueClosed"]


class QueueClosed(Exception):
    """:meth:`CaptureQueue.get` was called on a closed, drained queue."""


class CaptureQueue:
    """Hands captured chunks from a driver's callback thread to the asyncio loop, never blocking.

    Producer side (any one thread, e.g. PortAudio's callback): :meth:`put` appends to a bounded
    deque and returns: no lock, no system call, no loop wake-up, no logging. When full, the
    *oldest* chunk is dropped and counted in :attr:`dropped`.

    Consumer side (one task on one loop): ``await get()`` or ``async for chunk in queue``. An
    empty queue is polled every ``poll_interval`` seconds instead of being woken by the
    producer: waking a loop from another thread is a system call that hands the GIL over
    (``bench/capture.py`` compares both under load: its ``wake-loop-per-chunk`` callback had a
    p99 of 2.4 ms, magoo's whole callback 76–82 µs). The cost
    is at most ``poll_interval`` of added latency and ``1/poll_interval`` loop wake-ups a second
    while idle.

    Counters are single-writer (``_pushed`` by the producer, ``_popped`` by the consumer), so
    no lock is needed.
    """

    def __init__(self, maxsize: int, poll_interval: float = 0.005) -> None:
        if maxsize < 1:
            raise ValueError(f"maxsize must be at least 1, not {maxsize}")
        self.maxsize = maxsize
        self.poll_interval = poll_interval
        self._chunks: deque[AudioChunk] = deque(maxlen=maxsize)
        self._pushed = 0
        self._popped = 0
        self._closed = False
        self._error: BaseException | None = None

    # ---- producer ----

    def put(self, chunk: AudioChunk) -> None:
        """Append ``chunk``, dropping the oldest when full. Any thread; ignored after :meth:`close`."""
        if self._closed:
            return
        self._chunks.append(chunk)
        self._pushed += 1

    def close(self, error: BaseException | None = None) -> None:
        """Stop accepting chunks; the consumer drains what is left, then stops. Any thread.

        :param error: raised by :meth:`get` (and so by ``async for``) once the queue is drained,
            instead of ending the iteration: how a watchdog or a driver's "stream finished"
            callback tells the consumer that the device failed.
        """
        if error is not None and not self._closed:
            self._error = error
        self._closed = True

    # ---- consumer ----

    async def get(self) -> AudioChunk:
        """The oldest chunk, waiting (polling) for one if needed.

        :raises QueueClosed: the queue is closed and empty.
        :raises BaseException: the ``error`` it was closed with, once empty.
        """
        while True:
            if self._chunks:
                chunk = self._chunks.popleft()  # the producer only appends, so this cannot be empty
                self._popped += 1
                return chunk
            if self._closed:
                if self._error is not None:
                    raise self._error
                raise QueueClosed("the capture queue is closed")
            await asyncio.sleep(self.poll_interval)

    def __aiter__(self) -> CaptureQueue:
        return self

    async def __anext__(self) -> AudioChunk:
        try:
            return await self.get()
        except QueueClosed:
            raise StopAsyncIteration from None

    # ---- counters ----

    @property
    def pushed(self) -> int:
        """Chunks handed to :meth:`put` (before close)."""
        return self._pushed

    @property
    def delivered(self) -> int:
        """Chunks returned by :meth:`get`."""
        return self._popped

    @property
    def dropped(self) -> int:
        """Chunks lost because the queue was full (approximate while the producer runs)."""
        return max(0, self._pushed - self._popped - len(self._chunks))

    @property
    def closed(self) -> bool:
        return self._closed

    def __len__(self) -> int:
        return len(self._chunks)
