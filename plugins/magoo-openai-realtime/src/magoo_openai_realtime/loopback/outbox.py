"""Ordered sending for one loopback connection: events, then perhaps a close or a cut, never mixed up.

Everything the server sends on a connection goes through one :class:`Outbox`, drained by one
task. That keeps events in the order they were produced, lets the whole server hold them while
stalled (the ``flowing`` event is clear), and puts a close or an abort behind the events that
must still reach the client first.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from websockets.exceptions import ConnectionClosed

from .events import new_id

if TYPE_CHECKING:
    from websockets.asyncio.server import ServerConnection


@dataclass
class _Action:
    kind: str  # "close", "abort" or "flush"
    done: asyncio.Future
    code: int = 1000
    reason: str = ""


class Outbox:
    """Send queue of one websocket; call :meth:`run` as a task, and only from the loop it runs in.

    :param flowing: set while sending is allowed; the server clears it to stall every connection.
    """

    def __init__(self, ws: ServerConnection, flowing: asyncio.Event) -> None:
        self._ws = ws
        self._flowing = flowing
        self._queue: asyncio.Queue[dict | str | _Action] = asyncio.Queue()
        self._actions: list[asyncio.Future] = []

    def emit(self, event_type: str, **fields: Any) -> None:
        """Queue a server event; its ``event_id`` is added here."""
        self._queue.put_nowait({"type": event_type, "event_id": new_id("event"), **fields})

    def raw(self, frame: str) -> None:
        """Queue a frame exactly as given (malformed on purpose, for tests of a client's tolerance)."""
        self._queue.put_nowait(frame)

    def close(self, code: int, reason: str) -> asyncio.Future:
        """Queue a close handshake; nothing queued after it is sent."""
        return self._act(_Action("close", self._future(), code, reason))

    def abort(self) -> asyncio.Future:
        """Queue a TCP cut with no close frame, like a network drop; nothing after it is sent."""
        return self._act(_Action("abort", self._future()))

    def flush(self) -> asyncio.Future:
        """A future that resolves once everything queued so far has been sent."""
        return self._act(_Action("flush", self._future()))

    def resolve_all(self) -> None:
        """Resolve every pending future; call when the connection is gone."""
        for future in self._actions:
            if not future.done():
                future.set_result(None)

    async def run(self) -> None:
        """Send until a close or an abort has been carried out."""
        while True:
            item = await self._queue.get()
            await self._flowing.wait()
            if isinstance(item, dict | str):
                try:
                    await self._ws.send(item if isinstance(item, str) else json.dumps(item))
                except ConnectionClosed:
                    pass
                continue
            try:
                if item.kind == "close":
                    await self._ws.close(item.code, item.reason)
                elif item.kind == "abort":
                    await self._cut()
            finally:
                if not item.done.done():
                    item.done.set_result(None)
            if item.kind != "flush":
                return

    async def _cut(self) -> None:
        # abort() discards unsent bytes: let what is already written leave first, briefly.
        transport = self._ws.transport
        for _ in range(200):
            if transport.is_closing() or not transport.get_write_buffer_size():
                break
            await asyncio.sleep(0.005)
        transport.abort()

    def _future(self) -> asyncio.Future:
        return asyncio.get_running_loop().create_future()

    def _act(self, action: _Action) -> asyncio.Future:
        self._actions.append(action.done)
        self._queue.put_nowait(action)
        return action.done
