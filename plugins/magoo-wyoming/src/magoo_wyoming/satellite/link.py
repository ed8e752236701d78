"""One connection from Home Assistant: bounded reading, a silence timeout, serialized writing.

What the events mean is the :class:`~magoo_wyoming.satellite.session.Session`'s business; the
link only moves them and says when it is gone.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

from wyoming.event import Event, async_write_event

from .frames import FrameError, read_event

log = logging.getLogger("magoo.wyoming.satellite")

#: seconds a write may take before the peer counts as gone (a full socket buffer that never drains)
WRITE_TIMEOUT = 5.0


class Link:
    """A connected peer. :meth:`serve` reads until the peer leaves, goes silent for
    ``silence_timeout`` s, or sends something malformed; ``why`` then says which.

    :param on_event: called on the loop for each event, in order; awaited before the next read.
    """

    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        peer: str,
        *,
        silence_timeout: float,
        max_frame_bytes: int,
        on_event: Callable[[Link, Event], Awaitable[None]],
    ) -> None:
        self.reader = reader
        self.writer = writer
        self.peer = peer
        self.silence_timeout = silence_timeout
        self.max_frame_bytes = max_frame_bytes
        self._on_event = on_event
        self._write_lock = asyncio.Lock()
        self.closed = False
        self.why = ""
        self.events_in = 0

    async def serve(self) -> str:
        """Read and dispatch events until the link ends; returns why it ended, in a few words."""
        try:
            while not self.closed:
                try:
                    async with asyncio.timeout(self.silence_timeout):
                        event = await read_event(self.reader, self.max_frame_bytes)
                except TimeoutError:
                    self.why = self.why or f"silent for {self.silence_timeout:g} s (no ping)"
                    break
                except FrameError as exc:
                    self.why = self.why or f"sent a malformed event ({exc})"
                    break
                except (ConnectionError, OSError):
                    self.why = self.why or "the connection broke"
                    break
                if event is None:
                    self.why = self.why or "disconnected"
                    break
                self.events_in += 1
                await self._on_event(self, event)
        finally:
            await self.close()
        return self.why or "closed"

    async def send(self, event: Event) -> bool:
        """Write one event; False when the link is (now) closed. Never raises for a broken peer."""
        if self.closed:
            return False
        try:
            async with self._write_lock, asyncio.timeout(WRITE_TIMEOUT):
                await async_write_event(event, self.writer)
            return True
        except (ConnectionError, OSError, TimeoutError, RuntimeError):
            self.why = self.why or "a write failed"
            await self.close()
            return False

    async def close(self, why: str = "") -> None:
        if why and not self.why:
            self.why = why
        if self.closed:
            return
        self.closed = True
        self.reader.feed_eof()
        self.writer.close()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.writer.wait_closed(), 1.0)
