"""A reply of the Realtime model handed to the engine while it is still being written.

:class:`ReplyStream` is what a streamed :class:`~magoo_core.Reply` carries: as ``deltas`` (text
pieces) in text mode, as ``audio`` (24 kHz PCM chunks) in audio mode. The backend pushes what the
server sends (:meth:`ReplyStream.push`) and ends it (:meth:`ReplyStream.finish`); the engine reads
it. When the engine stops reading before the end (barge-in, the stop command, shutdown) it calls
:meth:`ReplyStream.aclose`, and the stream tells the backend (``on_cut``), which cancels the
response on the server and, for audio, truncates the assistant's item to what was handed out.

Everything runs on the event loop; pushing never blocks (the queue is unbounded: a reply is at
most a few MB of audio).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

from magoo_core import AudioChunk

from . import protocol

T = TypeVar("T", str, AudioChunk)

_END = object()


class ReplyStream(Generic[T]):
    """One response's text deltas (``str``) or audio (:class:`AudioChunk`), in order.

    :param response_id: the server's response id (for ``response.cancel``).
    :param on_cut: awaited once when the reader closes the stream before it ended.
    Iterate it once; ``aclose()`` after the end is a no-op.
    """

    def __init__(self, response_id: str, on_cut: Callable[[ReplyStream], Awaitable[None]]) -> None:
        self.response_id = response_id
        #: the assistant item the response writes into (for ``conversation.item.truncate``)
        self.item_id: str = ""
        #: milliseconds of audio handed to the reader so far
        self.played_ms = 0.0
        self.ended = False  # the server finished it (or it failed): nothing more comes
        self.closed = False  # the reader let go of it
        self.handed = False  # the Reply carrying it reached the engine (set by the backend as it yields it)
        self.text = ""  # every text delta so far (in audio mode: the transcript)
        self._on_cut = on_cut
        self._queue: asyncio.Queue = asyncio.Queue()

    @property
    def open(self) -> bool:
        """The reader still wants it and the server has not finished it."""
        return not self.ended and not self.closed

    def push(self, piece: T) -> None:
        """Add a text delta or an audio chunk (ignored once ended or closed)."""
        if self.open:
            self._queue.put_nowait(piece)

    def finish(self, error: BaseException | None = None) -> None:
        """Nothing more comes; with ``error`` the reader gets it raised after what came before."""
        if not self.ended:
            self.ended = True
            self._queue.put_nowait(error if error is not None else _END)

    def __aiter__(self) -> ReplyStream[T]:
        return self

    async def __anext__(self) -> T:
        if self.closed:
            raise StopAsyncIteration
        piece = await self._queue.get()
        if piece is _END:
            self.closed = True
            raise StopAsyncIteration
        if isinstance(piece, BaseException):
            self.closed = True
            raise piece
        if isinstance(piece, AudioChunk):
            self.played_ms += piece.duration * 1000
        return piece

    async def aclose(self) -> None:
        """The reader is done: if it did not get all of the reply, the backend cancels what the
        server still writes and truncates an audio reply to what was handed out."""
        if self.closed:
            return
        self.closed = True
        if not self.ended or self._queue.qsize() > 1:  # the reader did not get all of it (the last is the end)
            await self._on_cut(self)


def audio_chunk(pcm: bytes) -> AudioChunk:
    """A piece of the model's voice (24 kHz PCM16 mono) stamped with the time it arrived."""
    fmt = protocol.AUDIO_FORMAT
    return AudioChunk(pcm, fmt.sample_rate, fmt.channels, fmt.sample_width, timestamp=time.monotonic())
