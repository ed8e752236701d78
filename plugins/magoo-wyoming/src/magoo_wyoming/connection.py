"""One Wyoming connection, read defensively: :class:`Connection`, :func:`parse_uri`, :func:`read_event`.

Events are written with the ``wyoming`` package (its ``Event`` and ``async_write_event``), but read
here: ``wyoming.event.async_read_event`` trusts the peer (a ``data_length`` of a gigabyte is
allocated, a header without ``type`` raises ``KeyError``, a line that is not JSON reads as the end
of the stream). :func:`read_event` bounds every length, and anything malformed raises
:class:`MalformedFrame` with one line that says what was wrong, so a broken peer is a failure the
caller reports, never a crash or a silent hang.

Shared by the client backends (``magoo_wyoming.clients``); a server (the satellite) reads the
streams it accepts with :func:`read_event` too, started with ``limit=READ_LIMIT``. It only knows
frames, not roles. All coroutines run on the event loop.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import Any

from wyoming.event import Event, async_write_event

from magoo_core import BackendError

#: longest header line (JSON) accepted; real headers are a few hundred bytes
MAX_HEADER = 64 * 1024
#: largest ``data`` block accepted (a piper ``info`` with every voice is about 200 KiB)
MAX_DATA = 4 * 1024 * 1024
#: largest binary payload accepted (an audio chunk is a few KiB)
MAX_PAYLOAD = 4 * 1024 * 1024
#: the ``limit=`` to give ``asyncio.open_connection`` / ``asyncio.start_server`` for a stream that
#: :func:`read_event` reads: a header line longer than ``MAX_HEADER`` then fails fast instead of
#: growing the buffer
READ_LIMIT = MAX_HEADER + 1


class MalformedFrame(Exception):
    """The peer sent bytes that are not a Wyoming event; the message says what was wrong."""


@dataclass(frozen=True, slots=True)
class Address:
    """Where a Wyoming server listens: ``tcp://host:port`` or ``unix:///path``."""

    scheme: str
    host: str = ""
    port: int = 0
    path: str = ""

    def __str__(self) -> str:
        return f"unix://{self.path}" if self.scheme == "unix" else f"tcp://{self.host}:{self.port}"


def parse_uri(uri: str) -> Address:
    """``tcp://host:port`` or ``unix:///path`` as an :class:`Address`.

    :raises ValueError: anything else, with the form expected (for a profile's error message).
    """
    if uri.startswith("unix://") and len(uri) > len("unix://"):
        return Address("unix", path=uri[len("unix://"):])
    if uri.startswith("tcp://"):
        host, sep, port = uri[len("tcp://"):].rpartition(":")
        host = host.strip("[]")
        if sep and host and port.isdigit() and 0 < int(port) < 65536:
            return Address("tcp", host=host, port=int(port))
    raise ValueError(f'must be "tcp://host:port" (for example "tcp://192.168.1.20:10200"), "unix:///path" or "auto", not {uri!r}')


async def read_event(reader: asyncio.StreamReader) -> Event | None:
    """The next event from ``reader``; None at a clean end of the stream (between events).

    :raises MalformedFrame: a header that is not a JSON object with a string ``type``, a length
        that is negative, not an integer or above the limits, extra data that is not a JSON
        object, or a stream that ends inside an event.
    """
    try:
        line = await reader.readuntil(b"\n")
    except asyncio.IncompleteReadError as exc:
        if not exc.partial.strip():
            return None
        raise MalformedFrame("the connection closed inside an event header") from None
    except asyncio.LimitOverrunError:
        raise MalformedFrame(f"an event header longer than {MAX_HEADER} bytes") from None
    try:
        header = json.loads(line)
    except (ValueError, UnicodeDecodeError):
        raise MalformedFrame(f"an event header that is not JSON: {_shown(line)}") from None
    if not isinstance(header, dict) or not isinstance(header.get("type"), str) or not header["type"]:
        raise MalformedFrame(f"an event header without a type: {_shown(line)}")
    data = header.get("data") or {}
    if not isinstance(data, dict):
        raise MalformedFrame(f"a {header['type']} event whose data is not an object")
    data_length = _length(header, "data_length", MAX_DATA)
    payload_length = _length(header, "payload_length", MAX_PAYLOAD)
    try:
        if data_length:
            extra = json.loads(await reader.readexactly(data_length))
            if not isinstance(extra, dict):
                raise MalformedFrame(f"a {header['type']} event whose extra data is not an object")
            data = {**data, **extra}
        payload = await reader.readexactly(payload_length) if payload_length else None
    except asyncio.IncompleteReadError:
        raise MalformedFrame(f"the connection closed inside a {header['type']} event") from None
    except (ValueError, UnicodeDecodeError):
        raise MalformedFrame(f"a {header['type']} event whose extra data is not JSON") from None
    return Event(type=header["type"], data=data, payload=payload)


def _length(header: dict[str, Any], key: str, limit: int) -> int:
    value = header.get(key)
    if value is None:
        return 0
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= limit:
        raise MalformedFrame(f"a {header['type']} event with {key} {str(value)[:20]} (0..{limit} accepted)")
    return value


def _shown(line: bytes) -> str:
    text = line[:60].decode("utf-8", "replace").strip()
    return repr(text + ("..." if len(line) > 60 else ""))


class Connection:
    """One open connection to a Wyoming server.

    Use ``async with await Connection.open(address, timeout)``. ``send`` and ``receive`` raise
    :class:`~magoo_core.BackendError` with one line naming the server and what happened
    (refused, closed, silent, malformed), without the backend's section: the engine puts that in
    front of every failure it reports.
    """

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, address: Address) -> None:
        self.reader = reader
        self.writer = writer
        self.address = address

    @classmethod
    async def open(cls, address: Address, timeout: float) -> Connection:
        """Connect within ``timeout`` seconds.

        :raises BackendError: refused, unreachable or too slow (one line naming the address).
        """
        try:
            async with asyncio.timeout(timeout):
                if address.scheme == "unix":
                    reader, writer = await asyncio.open_unix_connection(address.path, limit=READ_LIMIT)
                else:
                    reader, writer = await asyncio.open_connection(address.host, address.port, limit=READ_LIMIT)
        except TimeoutError:
            raise BackendError(f"no answer from {address} within {timeout:g} s; is the server running and reachable?") from None
        except OSError as exc:
            reason = exc.strerror or type(exc).__name__
            raise BackendError(f"cannot connect to {address} ({reason}); is the server running there?") from None
        return cls(reader, writer, address)

    async def __aenter__(self) -> Connection:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def send(self, *events: Event) -> None:
        """Write ``events`` in order and wait until they are handed to the socket.

        :raises BackendError: the connection is closed or broken.
        """
        try:
            for event in events:
                await async_write_event(event, self.writer)
        except (OSError, RuntimeError) as exc:  # RuntimeError: writing after the transport closed
            raise BackendError(f"the connection to {self.address} broke while sending ({type(exc).__name__})") from None

    async def receive(self, timeout: float | None, waiting_for: str) -> Event:
        """The next event, within ``timeout`` seconds (None: no limit).

        :param waiting_for: what the caller waits for, for the error ("the transcript").
        :raises BackendError: the server closed the connection, stayed silent for ``timeout``, or
            sent a malformed frame.
        """
        try:
            async with asyncio.timeout(timeout):
                event = await read_event(self.reader)
        except TimeoutError:
            raise BackendError(f"{self.address} sent nothing for {timeout:g} s while magoo waited for {waiting_for}") from None
        except MalformedFrame as exc:
            raise BackendError(f"{self.address} sent {exc} while magoo waited for {waiting_for}") from None
        except OSError as exc:
            raise BackendError(f"the connection to {self.address} broke ({exc.strerror or type(exc).__name__}) while magoo waited for {waiting_for}") from None
        if event is None:
            raise BackendError(f"{self.address} closed the connection while magoo waited for {waiting_for}")
        if event.type == "error":
            text = str(event.data.get("text", "")).strip()[:200] or "no reason given"
            raise BackendError(f"{self.address} answered with an error: {text}")
        return event

    async def close(self) -> None:
        """Close the socket (never raises)."""
        self.writer.close()
        try:
            async with asyncio.timeout(1.0):
                await self.writer.wait_closed()
        except (OSError, TimeoutError, RuntimeError):
            pass
