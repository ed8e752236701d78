"""The satellite's TCP listener: Home Assistant connects to it (magoo is the server).

Each accepted peer is checked against the allow-list first (others are closed before a byte is
read), then handed to the :class:`~magoo_wyoming.satellite.session.Session` as a :class:`Link`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from .config import SatelliteConfig
from .frames import HEADER_LIMIT
from .link import Link
from .peers import AllowList
from .session import Session

log = logging.getLogger("magoo.wyoming.satellite")


class Listener:
    """Listens on the profile's ``host``/``port`` while entered; event-loop only.

    ``port`` after :meth:`start` is the real one (the profile may say 0 in tests: one the OS picks).
    """

    def __init__(self, config: SatelliteConfig, session: Session) -> None:
        self.config = config
        self.session = session
        self.allow = AllowList(config.allow)
        self.port = config.port
        self._server: asyncio.AbstractServer | None = None
        self._serving: set[asyncio.Task] = set()

    async def start(self) -> None:
        """:raises OSError: the address cannot be bound (in use, not this machine's)."""
        self._server = await asyncio.start_server(self._accepted, self.config.host, self.config.port, limit=HEADER_LIMIT)
        self.port = self._server.sockets[0].getsockname()[1]
        log.info("Home Assistant satellite listening on %s:%d%s", self.config.host, self.port,
                 f" for {', '.join(self.config.allow)}" if self.config.allow else "")

    async def _accepted(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = (writer.get_extra_info("peername") or ("?",))[0]
        if not self.allow.allows(peer):
            self.allow.refused(peer)
            writer.close()
            return
        link = Link(reader, writer, peer, silence_timeout=self.config.silence_timeout,
                    max_frame_bytes=self.config.max_frame_bytes, on_event=self.session.on_event)
        task = asyncio.current_task()
        self._serving.add(task)
        try:
            await self.session.serve(link)
        finally:
            self._serving.discard(task)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
        await self.session.close()
        for task in list(self._serving):
            task.cancel()
        for task in list(self._serving):
            with contextlib.suppress(BaseException):
                await task
        if self._server is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 2.0)
            self._server = None
