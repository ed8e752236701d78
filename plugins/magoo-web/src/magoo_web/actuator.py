"""``[[actuators]] backend = "web"``: the control page and API of a running assistant.

The server binds when the actuator starts (``__aenter__``: a port in use is reported then, and
the assistant runs on without the page), gets the run's :class:`~magoo_core.control.Control` and
the profile's secrets in ``magoo_on_startup``, and closes every client and its socket when the
actuator is left. See :mod:`.server` for the routes and :mod:`.guard` for who may use them.
"""

from __future__ import annotations

import logging
import os
from typing import TYPE_CHECKING, ClassVar

from magoo_core import Backend, BackendError, hookimpl, require

from .config import WebConfig, is_local_only

if TYPE_CHECKING:
    from magoo_core.doctor import Check

    from .server import WebServer

log = logging.getLogger("magoo_web")


class WebActuator(Backend):
    """A web page and a WebSocket API that show the assistant live and drive it (listen, stop,
    mute, say, volume); on 127.0.0.1 unless the profile gives another host and a token."""

    name: ClassVar[str] = "web"
    Config = WebConfig
    config: WebConfig

    def __init__(self, config: WebConfig) -> None:
        super().__init__(config)
        self.server: WebServer | None = None

    @property
    def url(self) -> str | None:
        """Where the page is, once listening (the port the system picked, for ``port = 0``)."""
        if self.server is None or self.server.port is None:
            return None
        host = self.config.host
        return f"http://{f'[{host}]' if ':' in host else host}:{self.server.port}/"

    async def __aenter__(self) -> WebActuator:
        """Listen. :raises BackendError: the address cannot be bound (in use, not this machine's)."""
        require("aiohttp", backend=self.name, install="uv pip install magoo-web")
        from .server import WebServer

        server = WebServer(self.config)
        try:
            await server.start()
        except OSError as exc:
            # asyncio words a bind error long-windedly; a name that does not resolve has a negative errno
            reason = os.strerror(exc.errno) if isinstance(exc.errno, int) and exc.errno > 0 else exc.strerror or str(exc)
            raise BackendError(
                f"cannot listen on {self.config.host}:{self.config.port} ({reason}): "
                "give host one of this machine's addresses and a free port"
            ) from None
        self.server = server
        log.info("web: the page is at %s%s", self.url, " (token required)" if self.config.protected else "")
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        if self.server is not None:
            await self.server.stop()

    @hookimpl
    def magoo_on_startup(self, profile, control):
        if self.server is not None:
            self.server.attach(control, profile.secrets)

    def stats(self) -> dict[str, float]:
        """``clients`` connected now, ``connections`` so far, ``refused`` requests, ``commands`` received."""
        return {} if self.server is None else dict(self.server.counters)

    @classmethod
    def doctor(cls, config: WebConfig, section: str) -> list[Check]:
        """``magoo doctor``: where the page listens and what protects it."""
        from magoo_core.doctor import ok, warn

        where = f"http://{config.host}:{config.port}/"
        token = f"a token ({config.token_variable})" if config.token_variable else "a token"
        allow = f", only for {', '.join(config.allow)}" if config.allow else ""
        name = f"{section} web"
        if is_local_only(config.host):
            guard = f", with {token}" if config.protected else " (no token needed)"
            return [ok(name, f"{where}: this machine only{guard}{allow}")]
        found = f"{where}: open to the network, protected by {token}{allow}; plain HTTP"
        if config.allow:
            return [ok(name, found)]
        return [warn(name, found + " to anyone who can reach it",
                     f'set allow = ["192.168.1.0/24"] (your network) in {section}, or listen on 127.0.0.1')]
