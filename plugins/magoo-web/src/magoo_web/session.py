"""One WebSocket client: the snapshot on connect, every event, the levels, and its commands.

What goes out, in this order: one ``{"type": "snapshot", ...}`` (:meth:`Control.snapshot`), then
each event as the engine emits it (``{"type": "event", "event": "wake", ...}``, from a
subscription taken *before* the snapshot, so nothing falls between), ``{"type": "levels", ...}``
``levels_per_second`` times a second, and a ``{"type": "result", ...}`` for each command
(:mod:`.commands`). Every message is masked with the profile's secrets on its way out.

A client that reads slowly never slows the engine: its subscription drops the oldest events
(:data:`magoo_core.live.SUBSCRIPTION_SIZE`), and a level update is skipped while a message is
still being written. Everything runs on the event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from typing import TYPE_CHECKING, Any

from magoo_core.control import Control
from magoo_core.secrets import Secrets

from .commands import result, run_command

if TYPE_CHECKING:
    from aiohttp import web

log = logging.getLogger("magoo_web")


class Session:
    """One connected client, from its snapshot until it (or the server) closes.

    :param ws: the prepared WebSocket. :param levels_per_second: how often levels go out.
    :param counters: the server's counters (``commands`` is counted here).
    """

    def __init__(
        self, ws: web.WebSocketResponse, control: Control, secrets: Secrets, levels_per_second: int,
        counters: dict[str, int],
    ) -> None:
        self.ws = ws
        self.control = control
        self.secrets = secrets
        self.interval = 1.0 / levels_per_second
        self.counters = counters
        self._sending = asyncio.Lock()
        self._commands: set[asyncio.Task] = set()

    async def run(self) -> None:
        """Serve the client until it closes; never raises for what the client sends."""
        from aiohttp import WSMsgType

        subscription = self.control.subscribe()
        helpers: list[asyncio.Task] = []
        try:
            await self.send(self.control.snapshot())
            helpers = [asyncio.create_task(self._forward(subscription)), asyncio.create_task(self._levels())]
            async for message in self.ws:
                if message.type == WSMsgType.TEXT:
                    self._start(message.data)
                elif message.type == WSMsgType.BINARY:
                    await self.send(result(None, error="binary message: send commands as JSON text"))
        finally:
            self.control.unsubscribe(subscription)
            for task in helpers:
                task.cancel()
            await asyncio.gather(*helpers, return_exceptions=True)

    def cancel_commands(self) -> None:
        """The server stops: commands still running (a ``say`` waiting for its end) are cancelled."""
        for task in list(self._commands):
            task.cancel()

    async def send(self, document: dict[str, Any]) -> None:
        """Write one message (masked); a client gone meanwhile is not an error."""
        text = json.dumps(self.secrets.mask_data(document), ensure_ascii=False, separators=(",", ":"))
        async with self._sending:
            if self.ws.closed:
                return
            with contextlib.suppress(ConnectionError, RuntimeError):
                await self.ws.send_str(text)

    def _start(self, message: str) -> None:
        # each command in a task of its own: a say waiting for its end must not hold up a stop
        self.counters["commands"] += 1
        task = asyncio.create_task(self._command(message))
        self._commands.add(task)
        task.add_done_callback(self._commands.discard)

    async def _command(self, message: str) -> None:
        await self.send(await run_command(self.control, message))

    async def _forward(self, subscription) -> None:
        async for document in subscription:
            await self.send(document)

    async def _levels(self) -> None:
        while True:
            await asyncio.sleep(self.interval)  # real time: the meter's rate
            if not self._sending.locked():  # still writing the last message: skip, never queue up
                await self.send(self.control.levels())
