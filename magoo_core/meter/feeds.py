"""Where the meter's levels and events come from, and where its keys' commands go.

* :class:`LocalFeed`: an engine run in this process (``magoo meter -p PROFILE``), through its
  :class:`~magoo_core.control.Control`.
* :class:`RemoteFeed`: a running magoo's control API (``magoo meter --url ws://host:port/api/ws``):
  a snapshot on connecting, then event and levels documents; commands ``{"command": "mute"}``
  answered by ``{"type": "result", "ok": ..., "error": ...}``. Needs the ``websockets`` package.

Both run on the event loop and update the :class:`~.board.Board` they are given.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import time
from typing import TYPE_CHECKING, Any

from .board import Board

if TYPE_CHECKING:
    from ..engine import Engine


class LocalFeed:
    """The engine this process runs; :attr:`finished` is set when its run ends."""

    source = "(profile, in this process)"

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.control = engine.control
        self.finished = asyncio.Event()
        self._task: asyncio.Task | None = None

    async def open(self, board: Board) -> None:
        board.name = self.control.name
        subscription = self.control.subscribe()

        async def follow() -> None:
            async for document in subscription:
                board.take_event(document, time.monotonic())

        self._task = asyncio.get_running_loop().create_task(follow(), name="magoo-meter events")

    def poll(self, board: Board, now: float) -> None:
        board.take_levels(self.control.levels(), now)

    async def mute(self, board: Board) -> None:
        self.control.mute(not self.control.muted)
        board.note = "muted: nothing reaches the wake word or speech-to-text" if self.control.muted else "unmuted"

    async def stop(self, board: Board) -> None:
        await self.control.stop()
        board.note = "stopped what was being said"

    async def quit(self) -> None:
        self.engine.request_stop()

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task


class RemoteFeed:
    """A running magoo's WebSocket; :attr:`finished` is set when the connection ends.

    :param url: ``ws://host:port/api/ws`` (or ``wss://``).
    :param token: sent as ``Authorization: Bearer TOKEN`` when given; never shown.
    """

    def __init__(self, url: str, token: str | None = None) -> None:
        self.url = url
        self.source = url
        self.token = token
        self.finished = asyncio.Event()
        self.reason: str | None = None
        self._socket: Any = None
        self._task: asyncio.Task | None = None
        self._ids = itertools.count(1)

    async def open(self, board: Board) -> None:
        """Connect and read the snapshot.

        :raises ConnectionError: with one line saying why (refused, a wrong token, not a magoo).
        """
        from websockets.asyncio.client import connect
        from websockets.exceptions import InvalidStatus, WebSocketException

        headers = {"Authorization": f"Bearer {self.token}"} if self.token else None
        try:
            self._socket = await asyncio.wait_for(connect(self.url, additional_headers=headers, open_timeout=10), 15)
            first = json.loads(await asyncio.wait_for(self._socket.recv(), 10))
        except InvalidStatus as exc:
            status = exc.response.status_code
            hint = ": give the right --token" if status in (401, 403) else ""
            raise ConnectionError(f"{self.url} refused the connection (HTTP {status}){hint}") from None
        except (OSError, TimeoutError, WebSocketException, ValueError) as exc:
            raise ConnectionError(f"cannot reach magoo at {self.url}: {exc or type(exc).__name__}") from None
        if first.get("type") != "snapshot":
            raise ConnectionError(f"{self.url} did not start with a snapshot: is it magoo's /api/ws?")
        board.take_snapshot(first, time.monotonic())
        self._task = asyncio.get_running_loop().create_task(self._read(board), name="magoo-meter websocket")

    async def _read(self, board: Board) -> None:
        from websockets.exceptions import ConnectionClosed

        try:
            async for message in self._socket:
                document = json.loads(message)
                kind, now = document.get("type"), time.monotonic()
                if kind == "levels":
                    board.take_levels(document, now)
                elif kind == "event":
                    board.take_event(document, now)
                elif kind == "snapshot":
                    board.take_snapshot(document, now)
                elif kind == "result" and not document.get("ok", True):
                    board.note = f"refused: {document.get('error')}"
            self.reason = "magoo closed the connection"
        except ConnectionClosed as exc:
            self.reason = f"the connection was lost ({exc.rcvd.code if exc.rcvd else 'no close frame'})"
        except ValueError:
            self.reason = f"{self.url} sent something that is not JSON"
        finally:
            self.finished.set()

    def poll(self, board: Board, now: float) -> None:
        pass  # levels come ten times a second by themselves

    async def _send(self, command: str) -> None:
        await self._socket.send(json.dumps({"command": command, "id": next(self._ids)}))

    async def mute(self, board: Board) -> None:
        await self._send("unmute" if board.muted else "mute")
        board.note = "asked to unmute" if board.muted else "asked to mute"

    async def stop(self, board: Board) -> None:
        await self._send("stop")
        board.note = "asked to stop what is being said"

    async def quit(self) -> None:
        self.finished.set()

    async def close(self) -> None:
        if self._socket is not None:
            with contextlib.suppress(Exception):
                await self._socket.close()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
