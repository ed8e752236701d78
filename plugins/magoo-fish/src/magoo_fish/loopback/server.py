"""A loopback Fish Audio server: ``POST /v1/tts`` on localhost, real audio, scripted faults.

It lets magoo's Fish client be tested end to end without the internet, and lets users try a
profile offline (``magoo-fish-loopback``, then point the profile's ``base_url`` at it). HTTP/1.1
with keep-alive, spoken by ``h11`` over ``asyncio`` streams. espeak-ng speaks the text and lame
or opusenc encode it (see :mod:`.audio`), so the audio really decodes; it is streamed
with chunked transfer encoding, paced like a real synthesizer when ``realtime_factor`` is set.

Choices where the real server's behaviour is unknown:

- A missing ``model`` header is answered 400 (the real server may fall back to its default model).
- Bodies that are out of range get 422, undecodable ones 400; both are also recorded in
  :attr:`LoopbackFishServer.protocol_errors`, since magoo's client should never send them.
- Opus needs ``opusenc``; without it the answer is 400 with a message that says so.
- The ``/v1/tts/live`` websocket is not served (magoo speaks final replies over HTTP).
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable

from magoo_core.testing.loopback import loopback_parser, serve_until_interrupted

from .connection import MESSAGES, PATH, Answer, Connection, RequestRecord
from .validate import BodyError, decode_body, validate

__all__ = ["LoopbackFishServer", "RequestRecord", "main"]

log = logging.getLogger("magoo.fish.loopback")


class LoopbackFishServer:
    """A Fish Audio TTS server on localhost; an async context manager running in the caller's loop.

    :param api_key: the only key accepted (``Authorization: Bearer <key>``).
    :param first_byte_delay: seconds from a request to its first audio byte (at least the time
        espeak-ng and the encoder take, the first time a text is asked for).
    :param realtime_factor: pace the audio at this many times real time (3.0: a 3 s reply
        streams over 1 s); None sends it as fast as the socket takes it.
    :param chunk_bytes: size of each chunk of the response body.
    :param host: address to listen on.
    :param port: 0 picks a free port; read :attr:`base_url` after :meth:`start`.
    """

    def __init__(
        self,
        api_key: str = "fish-loopback",
        *,
        first_byte_delay: float = 0.0,
        realtime_factor: float | None = None,
        chunk_bytes: int = 4096,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        if chunk_bytes < 1:
            raise ValueError(f"chunk_bytes must be positive, not {chunk_bytes}")
        self.api_key = api_key
        self.first_byte_delay = first_byte_delay
        self.realtime_factor = realtime_factor
        self.chunk_bytes = chunk_bytes
        self.host = host
        self.port = port
        self.base_url = ""
        self.requests: list[RequestRecord] = []
        self.protocol_errors: list[str] = []
        self._failures: deque[Answer] = deque()
        self._drops: deque[int] = deque()
        self._delays: deque[float] = deque()
        self._stalls = 0
        self._chunk_delay: float | None = None
        self._server: asyncio.Server | None = None
        self._connections: set[asyncio.Task] = set()

    # ---- lifecycle ------------------------------------------------------------------------------

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve_connection, self.host, self.port)
        self.port = self._server.sockets[0].getsockname()[1]
        self.base_url = f"http://{self.host}:{self.port}"

    async def stop(self) -> None:
        """Stop listening and cut every open connection."""
        if self._server is not None:
            self._server.close()
            self._server = None
        for task in list(self._connections):
            task.cancel()
        if self._connections:
            await asyncio.wait(list(self._connections))

    async def __aenter__(self) -> LoopbackFishServer:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    # ---- scriptable faults (each used up by the next valid request(s)) ------------------------

    def fail_next(self, status: int, times: int = 1, message: str | None = None, retry_after: float | None = None) -> None:
        """Answer the next ``times`` requests with HTTP ``status`` and the JSON error body
        ``{"status", "message", "reason"}`` (a realistic message unless ``message`` is given),
        with a ``Retry-After`` header when ``retry_after`` is set."""
        answer = Answer(status, message or MESSAGES.get(status, "Error"), retry_after)
        self._failures.extend(answer for _ in range(times))

    def drop_next(self, after_bytes: int) -> None:
        """Cut the next response's connection after ``after_bytes`` bytes of audio, without the
        terminating chunk."""
        self._drops.append(after_bytes)

    def delay_next(self, first_byte: float) -> None:
        """Hold the next response ``first_byte`` seconds before its first byte."""
        self._delays.append(first_byte)

    def slow_chunks(self, delay: float | None) -> None:
        """Sleep ``delay`` seconds between two chunks of every response from now on; None resets."""
        self._chunk_delay = delay

    def stall_next(self) -> None:
        """Send the next response's headers, then nothing until the client gives up."""
        self._stalls += 1

    # ---- observations ---------------------------------------------------------------------------

    async def wait_for(self, predicate: Callable[[], bool], timeout: float = 10.0) -> None:
        """Poll ``predicate`` until it is true; raise ``TimeoutError`` after ``timeout`` seconds."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not predicate():
            if loop.time() >= deadline:
                raise TimeoutError(f"loopback server: condition still false after {timeout} s")
            await asyncio.sleep(0.005)

    # ---- used by connections --------------------------------------------------------------------

    @property
    def chunk_delay(self) -> float | None:
        """The pause between two chunks set by :meth:`slow_chunks`."""
        return self._chunk_delay

    def answer_for(self, record: RequestRecord, body: bytes) -> Answer:
        """Check a request like the real server and decide its answer, using up the faults due.

        Faults apply only to requests that would otherwise succeed. Fills in ``record.body`` and
        ``record.text``.
        """
        headers = record.headers
        if record.path.split("?")[0] != PATH or record.method != "POST":
            return self._protocol_error(404, f"{record.method} {record.path}: only POST {PATH} is served")
        if headers.get("authorization") != f"Bearer {self.api_key}":
            return Answer(401, MESSAGES[401])
        try:
            record.body = decode_body(headers.get("content-type", ""), body)
            record.text = record.body.get("text") if isinstance(record.body.get("text"), str) else None
            if "model" not in headers:
                raise BodyError(400, "Missing model header (s1, s2-pro, ...)")
            fields = validate(record.body)
        except BodyError as exc:
            return self._protocol_error(exc.status, exc.message)
        if self._failures:
            return self._failures.popleft()
        stall = self._stalls > 0
        self._stalls -= stall
        return Answer(
            fields=fields,
            first_byte_delay=self._delays.popleft() if self._delays else self.first_byte_delay,
            stall=stall,
            drop_after=self._drops.popleft() if self._drops and not stall else None,
        )

    def _protocol_error(self, status: int, message: str) -> Answer:
        self.protocol_errors.append(f"HTTP {status}: {message}")
        log.warning("loopback Fish server: answering HTTP %d: %s", status, message)
        return Answer(status, message)

    async def _serve_connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        self._connections.add(task)
        try:
            await Connection(self, reader, writer).serve()
        finally:
            self._connections.discard(task)


# ---- command line -------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> None:
    """``magoo-fish-loopback``: serve until Ctrl-C, logging each request."""
    parser = loopback_parser(
        "magoo-fish-loopback",
        "A local stand-in for the Fish Audio TTS API (POST /v1/tts) that speaks with espeak-ng. "
        "Point a profile's base_url at it to try magoo offline.",
        port=8766,
        api_key="fish-loopback",
    )
    parser.add_argument("--first-byte-delay", type=float, default=0.0, metavar="S",
                        help="seconds before the first audio byte of each request")
    parser.add_argument("--realtime-factor", type=float, default=None, metavar="F",
                        help="stream audio F times faster than real time (default: as fast as possible)")
    parser.add_argument("--chunk-bytes", type=int, default=4096, help="bytes per chunk of a response")
    args = parser.parse_args(argv)
    server = LoopbackFishServer(
        args.api_key, first_byte_delay=args.first_byte_delay, realtime_factor=args.realtime_factor,
        chunk_bytes=args.chunk_bytes, host=args.host, port=args.port,
    )
    serve_until_interrupted(
        server, lambda: f"loopback Fish Audio server at {server.base_url} (POST /v1/tts; Ctrl-C stops)"
    )


if __name__ == "__main__":
    main()
