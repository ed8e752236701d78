"""The one aiohttp server: the page, ``GET /api/status``, ``GET /api/ws``; every request guarded.

Routes (docs/control.md has the protocol):

* ``GET /`` (and ``/app.js``, ``/style.css``): the page, from this package's ``static/`` folder (no
  build step, nothing from a CDN). ``GET /?token=TOKEN`` sets the page's cookie and redirects to
  ``/``, so the token leaves the address bar and the history.
* ``GET /api/status``: :meth:`Control.status` as JSON.
* ``GET /api/ws``: the WebSocket (:mod:`.session`), after the Origin check.

Every request first passes :class:`~magoo_web.guard.Guard` (401/403 with no detail). Every
response carries headers that keep the page out of frames of other sites and keep it from
loading anything from elsewhere. No access log: a ``?token=`` must not be written anywhere.
Runs in the engine's event loop; imports aiohttp (the actuator imports this module when it starts).
"""

from __future__ import annotations

import asyncio
import logging
import time
from importlib import resources

from aiohttp import web

from magoo_core.control import Control
from magoo_core.secrets import Secrets

from .config import WebConfig
from .guard import COOKIE, Guard, Refusal
from .session import Session

log = logging.getLogger("magoo_web")

#: the page's files: URL path → (file in static/, content type)
STATIC = {
    "/": ("index.html", "text/html; charset=utf-8"),
    "/app.js": ("app.js", "text/javascript; charset=utf-8"),
    "/style.css": ("style.css", "text/css; charset=utf-8"),
}
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; connect-src 'self'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}
#: the largest message a client may send (a say of MAX_SAY characters fits many times over)
MAX_MESSAGE = 64 * 1024
#: seconds between WebSocket pings: a client gone without a word is noticed
HEARTBEAT = 20.0
#: seconds a client has to answer the server's close before the connection is dropped (shutdown waits this long at most)
CLOSE_TIMEOUT = 2.0
#: a refusal is logged once per client and reason in this many seconds
LOG_EVERY = 60.0


class WebServer:
    """The server of one ``[[actuators]] web``: :meth:`start` binds, :meth:`attach` gives it the
    run's control (until then the API answers 503), :meth:`stop` closes every client and the socket."""

    def __init__(self, config: WebConfig) -> None:
        self.config = config
        self.guard = Guard(config.token.get_secret_value() if config.token else None, config.allow)
        self.control: Control | None = None
        self.secrets = Secrets()
        self.port: int | None = None
        #: ``clients`` connected now, ``connections`` so far, ``refused`` requests, ``commands`` received
        self.counters = {"clients": 0, "connections": 0, "refused": 0, "commands": 0}
        self._sessions: set[Session] = set()
        self._runner: web.AppRunner | None = None
        self._files = {path: (resources.files(__package__).joinpath("static", name).read_bytes(), kind)
                       for path, (name, kind) in STATIC.items()}
        self._logged: dict[tuple[str, str], float] = {}

    def attach(self, control: Control, secrets: Secrets) -> None:
        self.control = control
        self.secrets = secrets

    async def start(self) -> None:
        """Bind and serve. :raises OSError: the address cannot be bound."""
        app = web.Application(middlewares=[self._guarded], client_max_size=MAX_MESSAGE)
        app.router.add_get("/api/status", self._status)
        app.router.add_get("/api/ws", self._websocket)
        for path in STATIC:
            app.router.add_get(path, self._static)
        app.on_response_prepare.append(_security_headers)
        runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=1.0)
        await runner.setup()
        site = web.TCPSite(runner, self.config.host, self.config.port)
        try:
            await site.start()
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner
        self.port = runner.addresses[0][1]

    async def stop(self) -> None:
        """Close every client (code 1001, "going away") and stop listening."""
        for session in self._sessions:
            session.cancel_commands()
        await asyncio.gather(*(session.ws.close(code=1001, message=b"magoo is stopping") for session in list(self._sessions)))
        if self._runner is not None:
            runner, self._runner = self._runner, None
            await runner.cleanup()

    # ---- requests --------------------------------------------------------------------------------

    @web.middleware
    async def _guarded(self, request: web.Request, handler) -> web.StreamResponse:
        try:
            via = self.guard.check(
                request.remote, request.headers.get("Host"), bearer=request.headers.get("Authorization"),
                query=request.query.get("token"), cookie=request.cookies.get(COOKIE),
            )
        except Refusal as refusal:
            self._refused(request, refusal.reason)
            raise (web.HTTPUnauthorized if refusal.status == 401 else web.HTTPForbidden)() from None
        if via == "query" and request.path == "/" and request.method == "GET":
            found = web.HTTPSeeOther("/")  # the token leaves the address bar; the cookie carries on
            found.set_cookie(COOKIE, self.guard.cookie_value, httponly=True, samesite="Strict", path="/")
            raise found
        return await handler(request)

    async def _static(self, request: web.Request) -> web.Response:
        body, kind = self._files[request.path]
        return web.Response(body=body, headers={"Content-Type": kind})

    async def _status(self, request: web.Request) -> web.Response:
        control = self._control()
        return web.json_response(self.secrets.mask_data(control.status()))

    async def _websocket(self, request: web.Request) -> web.StreamResponse:
        if not self.guard.origin_allowed(request.headers.get("Origin"), request.headers.get("Host")):
            self._refused(request, "a page of another site (Origin) tried to open the WebSocket")
            raise web.HTTPForbidden()
        control = self._control()
        ws = web.WebSocketResponse(timeout=CLOSE_TIMEOUT, heartbeat=HEARTBEAT, max_msg_size=MAX_MESSAGE)
        await ws.prepare(request)
        session = Session(ws, control, self.secrets, self.config.levels_per_second, self.counters)
        self._sessions.add(session)
        self.counters["clients"] += 1
        self.counters["connections"] += 1
        try:
            await session.run()
        finally:
            self._sessions.discard(session)
            self.counters["clients"] -= 1
        return ws

    def _control(self) -> Control:
        if self.control is None:
            raise web.HTTPServiceUnavailable(text="magoo is starting")
        return self.control

    def _refused(self, request: web.Request, reason: str) -> None:
        self.counters["refused"] += 1
        peer = request.remote or "?"
        now = time.monotonic()
        if len(self._logged) > 1000:  # many clients refused: forget, rather than grow
            self._logged.clear()
        if now - self._logged.get((peer, reason), -LOG_EVERY) >= LOG_EVERY:
            self._logged[(peer, reason)] = now
            log.warning("web: refused %s %s from %s: %s", request.method, request.path, peer, reason)


async def _security_headers(request: web.Request, response: web.StreamResponse) -> None:
    if response.headers.get("Upgrade", "").lower() != "websocket":
        for name, value in SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
