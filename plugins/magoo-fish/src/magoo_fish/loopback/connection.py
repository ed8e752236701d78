"""One client connection to the loopback Fish server: HTTP/1.1 by ``h11`` over asyncio streams,
request after request (keep-alive), each answered with an error or with streamed audio."""

from __future__ import annotations

import asyncio
import contextlib
import http
import json
import logging
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import h11

from .audio import EncoderMissing, encode, output_rate

if TYPE_CHECKING:
    from .server import LoopbackFishServer

__all__ = ["MESSAGES", "PATH", "Answer", "Connection", "RequestRecord"]

log = logging.getLogger("magoo.fish.loopback")

PATH = "/v1/tts"
#: The JSON ``message`` of each error status (402 and 503 as Fish documents them).
MESSAGES = {
    400: "Bad request", 401: "Invalid API key", 402: "No payment", 403: "Forbidden", 404: "Not found",
    422: "Validation error", 429: "Rate limit exceeded, please slow down", 500: "Internal server error",
    502: "Bad gateway", 503: "high load", 504: "Gateway timeout",
}


@dataclass
class RequestRecord:
    """One HTTP request as the server saw and answered it (times are ``time.monotonic()``).

    :param headers: request headers, names in lower case.
    :param body: the decoded body (msgpack or JSON) as sent, None when it did not decode.
    :param text: the body's ``text``.
    :param first_byte_at: when the first byte of the response body went out.
    :param finished_at: when the response was complete, cut, or abandoned by the client.
    :param bytes_sent: response body bytes sent (audio, or the JSON of an error).
    :param status: the HTTP status answered.
    :param aborted: the client went away before the response was complete.
    :param dropped: the server cut the connection mid-body, as scripted by ``drop_next``.
    """

    method: str
    path: str
    headers: dict[str, str]
    received_at: float
    body: dict[str, Any] | None = None
    text: str | None = None
    first_byte_at: float | None = None
    finished_at: float | None = None
    bytes_sent: int = 0
    status: int | None = None
    aborted: bool = False
    dropped: bool = False


@dataclass
class Answer:
    """How the server answers one request: an error, or audio with the faults due for it."""

    status: int = 200
    message: str = ""
    retry_after: float | None = None
    fields: dict[str, Any] | None = None  # the body with the server's defaults filled in
    first_byte_delay: float = 0.0
    stall: bool = False
    drop_after: int | None = None


class ClientWatch:
    """Reads the socket while a response goes out, to notice a client that hangs up."""

    def __init__(self, reader: asyncio.StreamReader) -> None:
        self.early = bytearray()  # bytes of a next request, if the client sends one early
        self.gone = asyncio.Event()
        self._task = asyncio.ensure_future(self._run(reader))

    async def _run(self, reader: asyncio.StreamReader) -> None:
        with contextlib.suppress(ConnectionError, OSError):
            while data := await reader.read(65536):
                self.early += data
        self.gone.set()

    async def pause(self, seconds: float) -> bool:
        """Sleep up to ``seconds``; False when the client went away meanwhile."""
        if seconds > 0 and not self.gone.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.gone.wait(), seconds)
        return not self.gone.is_set()

    async def stop(self) -> None:
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task


class Connection:
    """Serves one TCP connection until the client closes it or an answer ends it."""

    def __init__(self, server: LoopbackFishServer, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.server = server
        self.reader = reader
        self.writer = writer
        self.conn = h11.Connection(h11.SERVER)

    async def serve(self) -> None:
        conn = self.conn
        try:
            while (received := await self._receive()) is not None:
                if not await self._answer(*received):
                    return
                if conn.our_state is not h11.DONE or conn.their_state is not h11.DONE:
                    return  # Connection: close, or a body left unread
                conn.start_next_cycle()
        except (ConnectionError, OSError, asyncio.CancelledError):
            pass
        finally:
            self.writer.close()

    async def _receive(self) -> tuple[h11.Request, bytes] | None:
        request, body = None, bytearray()
        while True:
            try:
                event = self.conn.next_event()
            except h11.RemoteProtocolError as exc:
                self.server.protocol_errors.append(f"malformed HTTP: {exc}")
                with contextlib.suppress(h11.LocalProtocolError):
                    self._write_json(400, {"status": 400, "message": str(exc), "reason": None})
                return None
            if event is h11.NEED_DATA:
                self.conn.receive_data(await self.reader.read(65536))
            elif isinstance(event, h11.Request):
                request = event
            elif isinstance(event, h11.Data):
                body += event.data
            elif isinstance(event, h11.EndOfMessage):
                return request, bytes(body)
            elif isinstance(event, h11.ConnectionClosed):
                return None

    async def _answer(self, request: h11.Request, body: bytes) -> bool:
        """Answer one request; False when the connection must close."""
        headers = {name.decode("latin-1").lower(): value.decode("latin-1") for name, value in request.headers}
        record = RequestRecord(request.method.decode(), request.target.decode("latin-1"), headers, time.monotonic())
        self.server.requests.append(record)
        answer = self.server.answer_for(record, body)
        if answer.status != 200:
            self._error(record, answer.status, answer.message, answer.retry_after)
            return True
        fields = answer.fields
        try:
            audio = await encode(record.text, fields["format"], fields["sample_rate"], fields["mp3_bitrate"],
                                 fields["opus_bitrate"])
        except EncoderMissing as exc:
            self._error(record, 400, f"{exc}; the loopback server cannot send {fields['format']}", None)
            return True
        watch = ClientWatch(self.reader)
        try:
            keep = await self._stream(watch, record, answer, audio.data, audio.duration, audio.content_type)
        except (ConnectionError, OSError):  # the client hung up while a chunk was going out
            keep = self._abandoned(record)
        finally:
            record.finished_at = record.finished_at or time.monotonic()
            await watch.stop()
            log.info(
                "POST %s 200 model=%s format=%s rate=%s: %d bytes%s: %r", PATH, headers.get("model"),
                fields["format"], output_rate(fields["format"], fields["sample_rate"]), record.bytes_sent,
                " (client left)" if record.aborted else " (dropped)" if record.dropped else "", _short(record.text),
            )
        if keep and watch.early:
            self.conn.receive_data(bytes(watch.early))
        return keep and not watch.gone.is_set()

    def _error(self, record: RequestRecord, status: int, message: str, retry_after: float | None) -> None:
        extra = [("retry-after", f"{retry_after:g}")] if retry_after is not None else []
        record.first_byte_at = time.monotonic()
        record.bytes_sent = self._write_json(status, {"status": status, "message": message, "reason": None}, extra)
        record.status = status
        record.finished_at = time.monotonic()
        log.info("%s %s %d: %s", record.method, record.path, status, message)

    def _write_json(self, status: int, payload: dict, extra: list[tuple[str, str]] | None = None) -> int:
        data = json.dumps(payload).encode()
        headers = [("content-type", "application/json"), ("content-length", str(len(data))), *(extra or [])]
        self.writer.write(self.conn.send(h11.Response(status_code=status, headers=headers, reason=_phrase(status))))
        self.writer.write(self.conn.send(h11.Data(data=data)))
        self.writer.write(self.conn.send(h11.EndOfMessage()))
        return len(data)

    async def _stream(
        self, watch: ClientWatch, record: RequestRecord, answer: Answer, data: bytes, duration: float,
        content_type: str,
    ) -> bool:
        """Send the audio in chunks, applying the faults of ``answer``; False when the connection ends."""
        server = self.server
        record.status = 200
        head = h11.Response(status_code=200, reason=b"OK",
                            headers=[("content-type", content_type), ("transfer-encoding", "chunked")])
        if answer.stall:
            self.writer.write(self.conn.send(head))
            await self.writer.drain()
            await watch.gone.wait()
            return self._abandoned(record)
        if not await watch.pause(record.received_at + answer.first_byte_delay - time.monotonic()):
            return self._abandoned(record)
        self.writer.write(self.conn.send(head))
        started = time.monotonic()
        for offset in range(0, max(len(data), 1), server.chunk_bytes):
            piece = data[offset : offset + server.chunk_bytes]
            waits = []
            if offset and server.realtime_factor:
                waits.append(started + offset / len(data) * duration / server.realtime_factor - time.monotonic())
            if offset and server.chunk_delay:
                waits.append(server.chunk_delay)
            for wait in waits:
                if not await watch.pause(wait):
                    break
            if watch.gone.is_set():
                return self._abandoned(record)
            if answer.drop_after is not None and offset + len(piece) >= answer.drop_after:
                await self._send(record, piece[: answer.drop_after - offset])
                record.dropped = True
                record.finished_at = time.monotonic()
                self.writer.close()  # FIN after the bytes already written; no terminating chunk
                return False
            await self._send(record, piece)
        self.writer.write(self.conn.send(h11.EndOfMessage()))
        record.finished_at = time.monotonic()  # before the client can possibly have read the end
        await self.writer.drain()
        return True

    @staticmethod
    def _abandoned(record: RequestRecord) -> bool:
        record.aborted = True
        record.finished_at = time.monotonic()
        return False

    async def _send(self, record: RequestRecord, piece: bytes) -> None:
        if not piece:
            return
        if record.first_byte_at is None:
            record.first_byte_at = time.monotonic()
        self.writer.write(self.conn.send(h11.Data(data=piece)))
        record.bytes_sent += len(piece)
        await self.writer.drain()


def _phrase(status: int) -> bytes:
    with contextlib.suppress(ValueError):
        return http.HTTPStatus(status).phrase.encode()
    return b""


def _short(text: str | None, limit: int = 60) -> str:
    text = text or ""
    return text if len(text) <= limit else text[: limit - 1] + "…"
