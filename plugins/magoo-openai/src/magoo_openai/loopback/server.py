"""A loopback OpenAI-compatible HTTP server: the app, its key check, its scripted faults.

:class:`LoopbackOpenAIServer` is an aiohttp app built from a list of route-adding functions (see
:data:`ROUTES`): each endpoint family lives in a module of its own (``chat`` for
``/v1/chat/completions`` and ``/v1/models``; ``audio`` for ``/v1/audio/transcriptions`` and
``/v1/audio/speech``) and is a function ``add_routes(app, server)``. What is shared lives here: the bearer-key check (its
error never echoes the key sent), the record of requests, and the faults a test scripts for the
next requests (an HTTP status, or a stream that stalls, drops or turns malformed after some
pieces). Runs in the caller's event loop, as an async context manager.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any

from aiohttp import web

from magoo_core.testing.loopback import loopback_parser, serve_until_interrupted

from . import audio, chat
from .errors import api_error
from .audio import AudioLoopback
from .records import FAULT, RECORD, Fault, Recorded

__all__ = ["Fault", "LoopbackOpenAIServer", "ROUTES", "main"]

log = logging.getLogger("magoo.openai.loopback")

#: A function that adds one family of endpoints to the app; it may keep state on the server.
AddRoutes = Callable[[web.Application, "LoopbackOpenAIServer"], None]
#: The endpoint families a server has by default.
ROUTES: tuple[AddRoutes, ...] = (chat.add_routes, audio.add_routes)


class LoopbackOpenAIServer:
    """OpenAI's HTTP API on localhost, scripted; an async context manager.

    :param api_key: the key clients must send (``Authorization: Bearer ...``); None accepts any
        request, like a local server (Ollama, llama.cpp) does.
    :param port: 0 picks a free port; read :attr:`base_url` after :meth:`start`.
    :param tokens_per_second: the pace of streamed text (one delta per token).
    :param routes: the endpoint families (default :data:`ROUTES`).
    :param audio: what the audio endpoints hear and say (default: an :class:`~.audio.AudioLoopback`
        that hears nothing and says a second of silence), kept in :attr:`audio`.
    :param options: given to the route modules (e.g. ``replies=`` for ``chat``), kept in :attr:`options`.
    """

    def __init__(
        self,
        *,
        api_key: str | None = "sk-loopback",
        host: str = "127.0.0.1",
        port: int = 0,
        tokens_per_second: float = 1000.0,
        routes: Sequence[AddRoutes] = ROUTES,
        audio: AudioLoopback | None = None,
        **options: Any,
    ) -> None:
        self.audio = audio if audio is not None else AudioLoopback()
        self.api_key = api_key
        self.host = host
        self.port = port
        self.tokens_per_second = tokens_per_second
        self.options = options
        self.base_url = ""
        self.requests: list[Recorded] = []
        self.flowing = asyncio.Event()
        self.flowing.set()
        self._faults: deque[Fault] = deque()
        self._runner: web.AppRunner | None = None
        self.app = web.Application(middlewares=[self._record_and_check])
        for add in routes:
            add(self.app, self)

    # ---- lifecycle ------------------------------------------------------------------------------

    async def start(self) -> None:
        self._runner = web.AppRunner(self.app, access_log=None, handler_cancellation=True)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.base_url = f"http://{self.host}:{self.port}/v1"

    async def stop(self) -> None:
        self.unstall()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> LoopbackOpenAIServer:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    # ---- scripting ------------------------------------------------------------------------------

    def fail_next(self, *faults: Fault) -> None:
        """The coming requests go wrong, one fault each, in order."""
        self._faults.extend(faults)

    def unstall(self) -> None:
        """Let stalled streams go on."""
        self.flowing.set()

    async def stream_fault(self, request: web.Request, fault: Fault) -> bool:
        """Apply ``fault``'s stream fault now, in a route's streamed answer: ``stall`` sends nothing
        until :meth:`unstall` (or :meth:`stop`), then lets the answer go on; ``drop`` cuts the
        connection. True: the answer ends here. ``malformed`` is the route's to write."""
        if fault.stream == "stall":
            self.flowing.clear()
            await self.flowing.wait()
        elif fault.stream == "drop":
            request.transport.close()  # type: ignore[union-attr]
            return True
        return False

    def seconds_per_token(self) -> float:
        return 1.0 / self.tokens_per_second

    def chat_requests(self) -> list[Any]:
        """The JSON bodies of the chat completion requests, in order."""
        return [r.body for r in self.requests if r.path.endswith("/chat/completions") and r.body is not None]

    # ---- the shared part of every request -------------------------------------------------------

    def _take_fault(self, path: str) -> Fault | None:
        for fault in self._faults:
            if fault.path is None or fault.path == path:
                self._faults.remove(fault)
                return fault
        return None

    @web.middleware
    async def _record_and_check(self, request: web.Request, handler: Callable[..., Any]) -> web.StreamResponse:
        headers = {name.lower(): value for name, value in request.headers.items()}
        record = Recorded(request.path, headers)
        self.requests.append(record)
        request[RECORD] = record
        if self.api_key is not None and headers.get("authorization") != f"Bearer {self.api_key}":
            record.status = 401
            sent = "an invalid API key" if headers.get("authorization", "").startswith("Bearer ") else "no API key"
            return api_error(
                401, f"Incorrect API key provided: you sent {sent}. You can find your API key at"
                " https://platform.openai.com/account/api-keys.", code="invalid_api_key",
            )
        fault = self._take_fault(request.path)
        if fault is not None and fault.status is not None:
            record.status = fault.status
            extra = {"Retry-After": f"{fault.retry_after:g}"} if fault.retry_after is not None else {}
            if fault.status == 429:
                return api_error(429, "Rate limit reached for requests. Please try again later.",
                                 type="requests", code="rate_limit_exceeded", headers=extra)
            if fault.status >= 500:
                return api_error(fault.status, "The server had an error while processing your request. Sorry about that!",
                                 type="server_error", code=None, headers=extra)
            return api_error(fault.status, f"Scripted error {fault.status}.", headers=extra)
        request[FAULT] = fault
        return await handler(request)


# ---- command line -------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> None:
    """``python -m magoo_openai.loopback``: serve until Ctrl-C."""
    parser = loopback_parser(
        "python -m magoo_openai.loopback",
        "A local stand-in for OpenAI's HTTP API: chat completions (streamed, echoing what it is told),"
        " transcriptions and speech (a second of silence).",
        port=8766,
        api_key="sk-loopback",
    )
    parser.add_argument("--tokens-per-second", type=float, default=30.0, help="pace of streamed replies")
    args = parser.parse_args(argv)
    server = LoopbackOpenAIServer(api_key=args.api_key or None, host=args.host, port=args.port,
                                  tokens_per_second=args.tokens_per_second)
    serve_until_interrupted(server, lambda: f"loopback OpenAI API at {server.base_url} (Ctrl-C stops)")
