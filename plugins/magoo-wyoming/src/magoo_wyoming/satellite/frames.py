"""Reading Wyoming events with bounds: a peer cannot make the satellite hold more than one event's
worth of memory, whatever it sends.

The wire format (the ``wyoming`` package's ``event.py``): one JSON header line ``{"type", "data"?,
"data_length"?, "payload_length"?}``, then ``data_length`` bytes of JSON merged into ``data``, then
``payload_length`` bytes (PCM). The package's own reader trusts both lengths; this one checks them
against a limit first and turns anything malformed into :class:`FrameError`, which closes the link.
"""

from __future__ import annotations

import asyncio
import json

from wyoming.event import Event

#: the longest header line: the stream reader's buffer limit (``asyncio.start_server(limit=...)``)
HEADER_LIMIT = 64 * 1024


class FrameError(Exception):
    """What the peer sent is not a Wyoming event within the limits; the link is closed."""


async def read_event(reader: asyncio.StreamReader, max_bytes: int) -> Event | None:
    """The next event, or None when the peer closed the connection cleanly (between events).

    Coroutine for the event loop. ``max_bytes`` bounds data plus payload.

    :raises FrameError: a header that is not a JSON object with a string ``type``, a length that
        is not a non-negative integer or is over the limit, extra data that is not a JSON object,
        or a connection that ends in the middle of an event.
    """
    try:
        line = await reader.readline()
    except ValueError:  # asyncio's LimitOverrunError: a header line past HEADER_LIMIT
        raise FrameError(f"a header line longer than {HEADER_LIMIT} bytes") from None
    if not line:
        return None
    if not line.endswith(b"\n"):
        raise FrameError("the connection ended in the middle of a header")
    header = _json_object(line, "header")
    kind = header.get("type")
    if not isinstance(kind, str) or not kind or len(kind) > 100:
        raise FrameError("a header without a string type")
    data = header.get("data") or {}
    if not isinstance(data, dict):
        raise FrameError(f"{kind}: data is not a JSON object")
    data_length = _length(header, "data_length", kind)
    payload_length = _length(header, "payload_length", kind)
    if data_length + payload_length > max_bytes:
        raise FrameError(f"{kind}: {data_length + payload_length} bytes, over the limit of {max_bytes}")
    try:
        if data_length:
            data = {**data, **_json_object(await reader.readexactly(data_length), f"{kind} data")}
        payload = await reader.readexactly(payload_length) if payload_length else None
    except asyncio.IncompleteReadError:
        raise FrameError(f"the connection ended in the middle of a {kind} event") from None
    return Event(type=kind, data=data, payload=payload)


def _json_object(raw: bytes, what: str) -> dict:
    try:
        value = json.loads(raw)
    except (ValueError, RecursionError):
        raise FrameError(f"a {what} that is not JSON") from None
    if not isinstance(value, dict):
        raise FrameError(f"a {what} that is not a JSON object")
    return value


def _length(header: dict, key: str, kind: str) -> int:
    value = header.get(key)
    if value is None:
        return 0
    if type(value) is not int or value < 0:
        raise FrameError(f"{kind}: {key} is not a non-negative integer")
    return value
