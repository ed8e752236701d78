"""What the loopback Fish server accepts in a ``POST /v1/tts`` body, checked like the real server.

Ranges follow the server's OpenAPI description (protocols.md §2.1): fields that are missing take
the server's defaults, fields it does not know are ignored (the new SDK sends several).
"""

from __future__ import annotations

import json
from typing import Any

from .audio import FORMATS, MP3_RATES, OPUS_RATE, SAMPLE_RATES

__all__ = ["BodyError", "decode_body", "validate"]

LATENCIES = ("normal", "balanced", "low")
MP3_BITRATES = (64, 128, 192)
OPUS_BITRATES = (-1000, 24, 32, 48, 64, 24000, 32000, 48000, 64000)
DEFAULTS: dict[str, Any] = {
    "chunk_length": 200, "format": "mp3", "sample_rate": None, "mp3_bitrate": 128, "opus_bitrate": 32,
    "references": [], "reference_id": None, "normalize": True, "latency": "normal", "prosody": None,
    "top_p": 0.7, "temperature": 0.7,
}


class BodyError(Exception):
    """The body is not acceptable; ``status`` is the HTTP status to answer with (400 or 422)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def decode_body(content_type: str, body: bytes) -> dict[str, Any]:
    """The request body as a dict, from msgpack (what the SDKs send) or JSON.

    :raises BodyError: 400 for another content type or bytes that do not decode to a map.
    """
    kind = content_type.split(";")[0].strip().lower()
    try:
        if kind == "application/msgpack":
            import ormsgpack

            data = ormsgpack.unpackb(body)
        elif kind == "application/json":
            data = json.loads(body)
        else:
            raise BodyError(400, f"Unsupported content type {content_type!r}; send application/msgpack or application/json")
    except BodyError:
        raise
    except Exception as exc:
        raise BodyError(400, f"The body is not valid {kind}: {exc}") from None
    if not isinstance(data, dict):
        raise BodyError(400, f"The body must be a map, not {type(data).__name__}")
    return data


def validate(body: dict[str, Any]) -> dict[str, Any]:
    """``body`` with the server's defaults filled in.

    :raises BodyError: 422 naming the first field that is out of range.
    """
    request = {**DEFAULTS, **body}
    text = request.get("text")
    if not isinstance(text, str) or not text.strip():
        _fail("text", "must be a non-empty string", text)
    _choice(request, "format", FORMATS)
    _choice(request, "latency", LATENCIES)
    _choice(request, "mp3_bitrate", MP3_BITRATES)
    _choice(request, "opus_bitrate", OPUS_BITRATES)
    chunk_length = request["chunk_length"]
    if not _is_int(chunk_length) or not 100 <= chunk_length <= 300:
        _fail("chunk_length", "must be an integer from 100 to 300", chunk_length)
    rate = request["sample_rate"]
    if rate is not None:
        allowed = {"mp3": MP3_RATES, "opus": (OPUS_RATE,)}.get(request["format"], SAMPLE_RATES)
        if not _is_int(rate) or rate not in allowed:
            _fail("sample_rate", f"for {request['format']} must be null or one of {', '.join(map(str, allowed))}", rate)
    reference = request["reference_id"]
    if reference is not None and not isinstance(reference, str) and not (
        isinstance(reference, list) and all(isinstance(r, str) for r in reference)
    ):
        _fail("reference_id", "must be null, a string or a list of strings", reference)
    if not isinstance(request["references"], list) or not all(
        isinstance(r, dict) and isinstance(r.get("audio"), bytes | str) and isinstance(r.get("text"), str)
        for r in request["references"]
    ):
        _fail("references", "must be a list of {audio, text}", "...")
    if not isinstance(request["normalize"], bool):
        _fail("normalize", "must be a boolean", request["normalize"])
    for name in ("top_p", "temperature"):
        if not _is_number(request[name]) or not 0 <= request[name] <= 1:
            _fail(name, "must be a number from 0 to 1", request[name])
    prosody = request["prosody"]
    if prosody is not None:
        if not isinstance(prosody, dict):
            _fail("prosody", "must be null or a map", prosody)
        speed, volume = prosody.get("speed", 1.0), prosody.get("volume", 0.0)
        if not _is_number(speed) or not 0.5 <= speed <= 2.0:
            _fail("prosody.speed", "must be a number from 0.5 to 2.0", speed)
        if not _is_number(volume) or not -20 <= volume <= 20:
            _fail("prosody.volume", "must be a number from -20 to 20 (dB)", volume)
    return request


def _choice(request: dict[str, Any], name: str, allowed: tuple) -> None:
    value = request[name]
    if isinstance(value, bool) or value not in allowed:
        _fail(name, f"must be one of {', '.join(map(str, allowed))}", value)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _fail(name: str, rule: str, value: Any) -> None:
    raise BodyError(422, f"{name} {rule}, got {value!r}")
