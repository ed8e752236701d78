"""A loopback OpenAI Realtime server: the GA wire protocol on localhost, with scripted faults.

It lets magoo's Realtime client be tested end to end without the internet, and lets users try a
profile offline (``magoo-realtime-loopback``, then point the profile's ``url`` at it). It speaks
the GA protocol (not the retired beta): ``session.created`` first, strict validation of every
client event, an energy VAD in audio time, and the event sequence of a real turn, with
transcription events on their own task so they interleave with the response. Replies are
scripted (``transcripts``/``replies``), not generated.

Choices where the real server's behaviour is unknown:

- A URL with neither ``model`` nor ``intent=transcription`` gets an ``error``
  (``missing_required_parameter``, param ``model``) and close 3000
  ``invalid_request_error.missing_required_parameter``, the same pattern as a bad key.
- The beta header gets ``beta_api_shape_disabled`` and close 4000 with reason
  ``invalid_request_error.beta_api_shape_disabled``. The key is checked first.
- ``session_expired`` says "60 minutes" for the default length, otherwise the configured length
  ("... maximum duration of 1 second.").
- Transcription events are sent only when the session's ``audio.input.transcription`` is set
  (the default session has it null, as the real one does); ``TurnRecord.transcript`` is set anyway.
- Replies are text, or with ``output_modalities: ["audio"]`` transcript deltas plus audio: a tone
  of ``audio_per_word`` seconds per word, in 100 ms ``response.output_audio.delta`` pieces.
- ``conversation.item.truncate`` is answered for assistant audio items (``conversation.item.truncated``);
  an ``audio_end_ms`` past the audio sent gets the real server's ``invalid_value``.
- The server sends no keepalive pings of its own; it answers the client's (unless stalled).
"""

from __future__ import annotations

import asyncio
import http
import itertools
import json
import logging
import time
from collections import deque
from collections.abc import Callable, Sequence
from urllib.parse import parse_qsl, urlsplit

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.http11 import Request, Response

from magoo_core.testing.loopback import loopback_parser, serve_until_interrupted

from .session import DROP_POINTS, ConnectionRecord, LoopbackSession, TurnRecord

__all__ = ["ConnectionRecord", "LoopbackRealtimeServer", "TurnRecord", "main"]

log = logging.getLogger("magoo.realtime.loopback")

PATH = "/v1/realtime"


class LoopbackRealtimeServer:
    """A Realtime server on localhost; an async context manager running in the caller's loop.

    :param api_key: the only key accepted (``Authorization: Bearer <key>``).
    :param port: 0 picks a free port; read :attr:`url` after :meth:`start`.
    :param transcripts: what each committed turn "said": a sequence used in order across all
        connections (its last entry repeats once it runs out), or a callable given the committed
        PCM. Default ``"utterance <n>"``, n counting turns from 1.
    :param replies: the assistant's reply to a transcript. Default ``"You said: <transcript>"``.
    :param session_length: seconds from ``session.created`` to ``session_expired`` and close 1001.
    :param transcription_delay: seconds from commit to the first transcription event.
    :param delta_interval: seconds between two text deltas (and before the first).
    :param audio_per_word: seconds of the loopback's "voice" per word of an audio reply.
    """

    def __init__(
        self,
        *,
        api_key: str = "sk-loopback",
        host: str = "127.0.0.1",
        port: int = 0,
        transcripts: Sequence[str] | Callable[[bytes], str] | None = None,
        replies: Callable[[str], str] | None = None,
        session_length: float = 3600.0,
        transcription_delay: float = 0.05,
        delta_interval: float = 0.005,
        audio_per_word: float = 0.1,
    ) -> None:
        self.api_key = api_key
        self.host = host
        self.port = port
        self.session_length = session_length
        self.transcription_delay = transcription_delay
        self.delta_interval = delta_interval
        self.audio_per_word = audio_per_word
        self.truncations: list[tuple[str, int]] = []  # (item_id, audio_end_ms) of each truncate
        self.url = ""
        self.connections: list[ConnectionRecord] = []
        self.attempts: list[float] = []
        self.turns: list[TurnRecord] = []
        self.protocol_errors: list[str] = []
        self.flowing = asyncio.Event()  # cleared while stalled; sessions wait on it to send and read
        self.flowing.set()
        self._transcripts = transcripts
        self._replies = replies
        self._turn_numbers = itertools.count(1)
        self._refusals: deque[int] = deque()
        self._drops: deque[int] = deque()
        self._sessions: list[LoopbackSession] = []
        self._unstall_timer: asyncio.TimerHandle | None = None
        self._server: Server | None = None

    # ---- lifecycle ------------------------------------------------------------------------------

    async def start(self) -> None:
        self._server = await serve(
            self._serve_connection, self.host, self.port, process_request=self._process_request,
            max_size=16 * 2**20, ping_interval=None, close_timeout=2, logger=_websocket_logger(),
        )
        self.port = self._server.sockets[0].getsockname()[1]
        self.url = f"ws://{self.host}:{self.port}{PATH}"

    async def stop(self) -> None:
        """Close every connection (1001 going away) and stop listening."""
        self.unstall()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    async def __aenter__(self) -> LoopbackRealtimeServer:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    # ---- scriptable faults ----------------------------------------------------------------------

    def refuse_connections(self, n: int, status: int = 503) -> None:
        """Answer the next ``n`` websocket upgrades with HTTP ``status`` instead."""
        self._refusals.extend([status] * n)

    def drop_next_turn(self, at: str = "committed") -> None:
        """At the next turn's ``at`` point, cut the TCP connection with no close frame.

        The event of that point (``speech_started``, ``committed``, or the first reply delta for
        ``"response"``; in a transcription session the first transcription delta) is delivered
        first. A turn that skips the point (a manual commit has no ``speech_started``) drops at
        its next one. Calls queue up, one per coming turn.
        """
        if at not in DROP_POINTS:
            raise ValueError(f"drop_next_turn(at={at!r}): choose one of {', '.join(DROP_POINTS)}")
        self._drops.append(DROP_POINTS.index(at))

    async def send_error(
        self,
        code: str = "server_error",
        message: str = "The server had an error while processing your request.",
        type: str = "server_error",
    ) -> None:
        """Send an ``error`` event to every open connection; sessions stay open.

        Returns once sent, or at once while stalled (the events go out on unstall).
        """
        for session in self._open_sessions():
            session.emit("error", error={"type": type, "code": code, "message": message, "param": None,
                                         "event_id": None})
        await self._settle([session.outbox.flush() for session in self._open_sessions()])

    def stall(self, seconds: float | None = None) -> None:
        """Hold every server event and stop reading every socket, like a dead link.

        Pings go unanswered too. Lasts ``seconds``, or until :meth:`unstall` when None.
        Connections accepted while stalled start stalled.
        """
        self.flowing.clear()
        for session in self._open_sessions():
            session.pause_reading()
        if self._unstall_timer is not None:
            self._unstall_timer.cancel()
            self._unstall_timer = None
        if seconds is not None:
            self._unstall_timer = asyncio.get_running_loop().call_later(seconds, self.unstall)

    def unstall(self) -> None:
        """Deliver the held events and read again."""
        if self._unstall_timer is not None:
            self._unstall_timer.cancel()
            self._unstall_timer = None
        if self.flowing.is_set():
            return
        self.flowing.set()
        for session in self._open_sessions():
            session.resume_reading()

    async def inject(self, frame: str | dict) -> None:
        """Send ``frame`` to every open connection as is: a dict as JSON (any type, any fields), a
        string verbatim (not even JSON, if you like). Returns once sent (at once while stalled)."""
        text = frame if isinstance(frame, str) else json.dumps(frame)
        for session in self._open_sessions():
            session.outbox.raw(text)
        await self._settle([session.outbox.flush() for session in self._open_sessions()])

    async def expire_all(self) -> None:
        """Send ``session_expired`` and close 1001 on every open connection now.

        Returns once the closes are done, or at once while stalled.
        """
        await self._settle([session.expire() for session in self._open_sessions()])

    # ---- observations ---------------------------------------------------------------------------

    async def wait_for(self, predicate: Callable[[], bool], timeout: float = 10.0) -> None:
        """Poll ``predicate`` until it is true; raise ``TimeoutError`` after ``timeout`` seconds."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not predicate():
            if loop.time() >= deadline:
                raise TimeoutError(f"loopback server: condition still false after {timeout} s")
            await asyncio.sleep(0.005)

    # ---- used by sessions -----------------------------------------------------------------------

    def next_transcript(self, audio: bytes) -> str:
        number = next(self._turn_numbers)
        if self._transcripts is None:
            return f"utterance {number}"
        if callable(self._transcripts):
            return self._transcripts(audio)
        return self._transcripts[min(number, len(self._transcripts)) - 1]

    def reply_for(self, transcript: str) -> str:
        return self._replies(transcript) if self._replies else f"You said: {transcript}"

    def take_drop(self, point: int) -> bool:
        """Whether a scripted drop is due at drop point number ``point``; consumes it if so."""
        if self._drops and point >= self._drops[0]:
            self._drops.popleft()
            return True
        return False

    # ---- internals ------------------------------------------------------------------------------

    def _open_sessions(self) -> list[LoopbackSession]:
        return [session for session in self._sessions if not session.closing]

    async def _settle(self, futures: list[asyncio.Future]) -> None:
        if futures and self.flowing.is_set():
            await asyncio.wait(futures)

    def _process_request(self, connection: ServerConnection, request: Request) -> Response | None:
        self.attempts.append(time.monotonic())
        if urlsplit(request.path).path != PATH:
            return connection.respond(http.HTTPStatus.NOT_FOUND, f"No websocket endpoint at this path; use {PATH}.\n")
        if self._refusals:
            status = http.HTTPStatus(self._refusals.popleft())
            log.info("refusing a connection with HTTP %d, as scripted", status)
            return connection.respond(status, f"{status.value} {status.phrase}\n")
        return None

    async def _serve_connection(self, ws: ServerConnection) -> None:
        url = urlsplit(ws.request.path)
        query = dict(parse_qsl(url.query))
        record = ConnectionRecord(
            path=url.path,
            query=query,
            headers={name.lower(): value for name, value in ws.request.headers.raw_items()},
            session_type="transcription" if query.get("intent") == "transcription" else "realtime",
            opened_at=time.monotonic(),
        )
        self.connections.append(record)
        session = LoopbackSession(self, ws, record, len(self.connections) - 1)
        self._sessions.append(session)
        if not self.flowing.is_set():
            session.pause_reading()
        try:
            await session.run()
        finally:
            self._sessions.remove(session)


class _HideAuthorization(logging.Filter):
    """websockets logs every request header at DEBUG; keep the API key out of the log."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and len(args) == 2 and str(args[0]).lower() == "authorization":
            record.args = (args[0], "Bearer ***")
        return True


def _websocket_logger() -> logging.Logger:
    logger = logging.getLogger("magoo.realtime.loopback.websocket")
    if not any(isinstance(f, _HideAuthorization) for f in logger.filters):
        logger.addFilter(_HideAuthorization())
    return logger


# ---- command line -------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> None:
    """``magoo-realtime-loopback``: serve until Ctrl-C, logging each turn."""
    parser = loopback_parser(
        "magoo-realtime-loopback",
        "A local stand-in for the OpenAI Realtime API (GA protocol) that echoes what it hears. "
        "Point a profile's url at it to try magoo offline.",
        port=8765,
        api_key="sk-loopback",
    )
    parser.add_argument("--session-length", type=float, default=3600.0, help="seconds before session_expired")
    parser.add_argument("--transcript", action="append", dest="transcripts", metavar="TEXT",
                        help="what the turns said, in order (repeat the option; the last one repeats)")
    args = parser.parse_args(argv)
    server = LoopbackRealtimeServer(api_key=args.api_key, host=args.host, port=args.port,
                                    transcripts=args.transcripts, session_length=args.session_length)
    serve_until_interrupted(
        server, lambda: f"loopback OpenAI Realtime server at {server.url}?model=gpt-realtime (Ctrl-C stops)"
    )


if __name__ == "__main__":
    main()
