"""Sound that Home Assistant sends (a reply, an announcement), queued from the link's reader and
played by magoo's speaker: ``audio-start``, ``audio-chunk``..., ``audio-stop`` as an async
iterator of magoo :class:`~magoo_core.types.AudioChunk`."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator

from magoo_core.errors import BackendError
from magoo_core.types import AudioChunk

log = logging.getLogger("magoo.wyoming.satellite")

#: chunks held at once (2048 bytes each from Home Assistant: ~3 min at 22050 Hz); past it a peer
#: that sends faster than the speaker plays loses the rest of that sound, never memory
MAX_QUEUED_CHUNKS = 4096
_END = object()


class IncomingSound:
    """One sound arriving from Home Assistant. The link's reader calls :meth:`add` and
    :meth:`end` (or :meth:`fail`); the speaker iterates :meth:`chunks`. Event-loop only.

    ``started``: the speaker asked for the first chunk (so a ``played`` is owed once it ends).
    ``closed``: the speaker let go of it (it ended, or was stopped part-way).
    """

    def __init__(self) -> None:
        self._queue: asyncio.Queue = asyncio.Queue(MAX_QUEUED_CHUNKS + 2)
        self.started = False
        self.closed = False
        self.ended = False
        self.dropped = 0
        self.seconds = 0.0
        self._news = asyncio.Event()  # a chunk, the end or a failure arrived

    def add(self, pcm: bytes, rate: int, width: int, channels: int) -> None:
        if self.ended or not pcm:
            return
        if self._queue.qsize() >= MAX_QUEUED_CHUNKS:
            if not self.dropped:
                log.warning("Home Assistant sends sound faster than it can be played; the rest of this one is dropped")
            self.dropped += 1
            return
        chunk = AudioChunk(pcm, rate, channels, width, timestamp=time.monotonic())
        self.seconds += chunk.duration
        self._queue.put_nowait(chunk)
        self._news.set()

    def end(self) -> None:
        if not self.ended:
            self.ended = True
            self._queue.put_nowait(_END)
            self._news.set()

    def fail(self, message: str) -> None:
        """The sound will not arrive in full (the link was lost, Home Assistant said error)."""
        if not self.ended:
            self.ended = True
            self._queue.put_nowait(BackendError(message, restart=False))
            self._news.set()

    async def has_audio(self) -> bool:
        """Waits for the first chunk or the end: False for a sound that ended (or failed) empty."""
        await self._news.wait()
        return self.seconds > 0

    async def chunks(self) -> AsyncIterator[AudioChunk]:
        """The sound's chunks as they arrive; ends at ``audio-stop``.

        :raises BackendError: the link was lost or Home Assistant reported an error mid-sound.
        """
        self.started = True
        try:
            while True:
                item = await self._queue.get()
                if item is _END:
                    return
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            self.closed = True
