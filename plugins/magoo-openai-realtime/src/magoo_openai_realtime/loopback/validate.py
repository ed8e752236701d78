"""Client-event validation for the loopback Realtime server: default sessions, strict GA checks.

Everything here is pure (no I/O). A check that fails raises :class:`ClientEventError`, which the
server turns into an ``error`` event; the session stays open and nothing is changed, because a
``session.update`` is validated whole before it is merged.

Error codes and messages copy the real server's where they are known (seen in real error frames):
``unknown_parameter`` "Unknown parameter: 'session.x'.", ``missing_required_parameter``
"Missing required parameter: 'session.type'.". Where the real text is unknown, the message
follows the same style: ``invalid_value`` "Invalid value: 'x'. Supported values are: ...",
``invalid_type`` "Invalid type for 'p': expected a string, but got an integer instead.".
"""

from __future__ import annotations

import base64
import binascii
import copy
from typing import Any

MAX_APPEND_BYTES = 15 * 2**20

PCM_24K = {"type": "audio/pcm", "rate": 24000}
OUTPUT_FORMATS = ("audio/pcm", "audio/pcmu", "audio/pcma")
TRANSCRIPTION_MODELS = (
    "whisper-1",
    "gpt-4o-transcribe",
    "gpt-4o-mini-transcribe",
    "gpt-4o-transcribe-diarize",
    "gpt-transcribe",
    "gpt-live-transcribe",
    "gpt-realtime-whisper",
)
EAGERNESS = ("low", "medium", "high", "auto")
SEMANTIC_SILENCE_MS = {"low": 1200, "medium": 700, "auto": 700, "high": 300}

_SESSION_KEYS = {
    "realtime": {"type", "model", "output_modalities", "instructions", "audio", "tools", "tool_choice",
                 "max_output_tokens", "tracing", "truncation", "prompt", "include"},
    "transcription": {"type", "audio", "include"},
}
_AUDIO_KEYS = {"realtime": {"input", "output"}, "transcription": {"input"}}
_INPUT_KEYS = {"format", "transcription", "noise_reduction", "turn_detection"}
_OUTPUT_KEYS = {"format", "voice", "speed"}
_TRANSCRIPTION_KEYS = {"model", "language", "prompt", "delay", "keywords", "languages"}
_VAD_KEYS = {
    "server_vad": {"type", "threshold", "prefix_padding_ms", "silence_duration_ms", "idle_timeout_ms",
                   "create_response", "interrupt_response"},
    "semantic_vad": {"type", "eagerness", "create_response", "interrupt_response"},
}
_RESPONSE_KEYS = {"output_modalities", "instructions", "audio", "tools", "tool_choice", "max_output_tokens",
                  "conversation", "metadata", "input", "prompt"}
_CONTENT_TYPES = {"user": "input_text", "system": "input_text", "assistant": "output_text"}


class ClientEventError(Exception):
    """An invalid client event, as the ``error`` object of an ``error`` server event."""

    def __init__(self, code: str, message: str, param: str | None = None, type: str = "invalid_request_error"):
        super().__init__(message)
        self.code = code
        self.message = message
        self.param = param
        self.type = type

    def error_object(self, client_event_id: str | None) -> dict:
        return {"type": self.type, "code": self.code, "message": self.message, "param": self.param,
                "event_id": client_event_id}


def unknown(path: str) -> ClientEventError:
    return ClientEventError("unknown_parameter", f"Unknown parameter: '{path}'.", path)


def missing(path: str) -> ClientEventError:
    return ClientEventError("missing_required_parameter", f"Missing required parameter: '{path}'.", path)


def invalid_value(path: str, value: Any, supported: tuple | list) -> ClientEventError:
    choices = ", ".join(repr(s) for s in supported)
    return ClientEventError("invalid_value", f"Invalid value: {value!r}. Supported values are: {choices}.", path)


# ---- defaults -----------------------------------------------------------------------------------


def default_turn_detection(kind: str) -> dict:
    if kind == "semantic_vad":
        return {"type": "semantic_vad", "eagerness": "auto", "create_response": True, "interrupt_response": True}
    return {"type": "server_vad", "threshold": 0.5, "prefix_padding_ms": 300, "silence_duration_ms": 200,
            "idle_timeout_ms": None, "create_response": True, "interrupt_response": True}


def default_session(session_type: str, session_id: str, expires_at: int, model: str | None) -> dict:
    """The session a fresh connection starts with, shaped like the real ``session.created``."""
    audio_input = {"format": dict(PCM_24K), "transcription": None, "noise_reduction": None,
                   "turn_detection": default_turn_detection("server_vad")}
    if session_type == "transcription":
        return {"type": "transcription", "object": "realtime.transcription_session", "id": session_id,
                "expires_at": expires_at, "audio": {"input": audio_input}, "include": None}
    return {
        "type": "realtime", "object": "realtime.session", "id": session_id, "model": model or "gpt-realtime",
        "output_modalities": ["audio"],
        "instructions": "Your knowledge cutoff is 2023-10. You are a helpful, witty, and friendly AI.",
        "tools": [], "tool_choice": "auto", "max_output_tokens": "inf", "tracing": None, "truncation": "auto",
        "prompt": None, "expires_at": expires_at,
        "audio": {"input": audio_input,
                  "output": {"format": dict(PCM_24K), "voice": "alloy", "speed": 1.0}},
        "include": None,
    }


def silence_duration_ms(turn_detection: dict) -> int:
    if turn_detection["type"] == "semantic_vad":
        return SEMANTIC_SILENCE_MS[turn_detection.get("eagerness", "auto")]
    return int(turn_detection.get("silence_duration_ms", 200))


# ---- session.update -----------------------------------------------------------------------------


def merged_session(current: dict, update: Any, session_type: str) -> dict:
    """Validate the ``session`` of a ``session.update`` and return ``current`` with it merged in.

    ``current`` is not modified. Dicts merge key by key, anything else (including null) replaces.
    A ``turn_detection`` of a new ``type`` replaces the old one whole, on top of that type's defaults.

    :param session_type: the connection's session type, from its URL.
    :raises ClientEventError: the first problem found.
    """
    if not isinstance(update, dict):
        raise missing("session") if update is None else _wrong_type("session", update, "object")
    if "type" not in update:
        raise missing("session.type")
    if update["type"] not in ("realtime", "transcription"):
        raise invalid_value("session.type", update["type"], ("realtime", "transcription"))
    if update["type"] != session_type:
        raise ClientEventError(
            "invalid_value",
            f"Passing a {update['type']} session update event to a {session_type} session is not allowed."
            + (" Connect with ?intent=transcription for a transcription session." if session_type == "realtime" else ""),
            "session.type",
        )
    _only(update, _SESSION_KEYS[session_type], "session")
    for key in ("model", "instructions"):
        if key in update:
            _require(update[key], "string", f"session.{key}")
    if "output_modalities" in update and update["output_modalities"] not in (["text"], ["audio"]):
        raise ClientEventError(
            "invalid_value",
            f"Invalid value: {update['output_modalities']!r}. Supported values are: ['text'], ['audio'].",
            "session.output_modalities",
        )
    if "include" in update and update["include"] is not None:
        _require(update["include"], "array", "session.include")
        for entry in update["include"]:
            if entry != "item.input_audio_transcription.logprobs":
                raise invalid_value("session.include", entry, ("item.input_audio_transcription.logprobs",))

    merged = copy.deepcopy(current)
    _deep_merge(merged, update)
    if "audio" in update:
        audio = update["audio"]
        _require(audio, "object", "session.audio")
        _only(audio, _AUDIO_KEYS[session_type], "session.audio")
        if "output" in audio:
            _check_output(audio["output"])
            if "format" in audio["output"]:
                merged["audio"]["output"]["format"] = _format(audio["output"]["format"], "session.audio.output.format")
            for key in ("voice", "speed"):
                if key in audio["output"]:
                    merged["audio"]["output"][key] = audio["output"][key]
        if "input" in audio:
            _check_input(audio["input"])
            merged_input = merged["audio"]["input"]
            if "format" in audio["input"]:
                merged_input["format"] = _format(audio["input"]["format"], "session.audio.input.format")
            if "turn_detection" in audio["input"]:
                merged_input["turn_detection"] = _turn_detection(
                    audio["input"]["turn_detection"], current["audio"]["input"]["turn_detection"]
                )
    return merged


def _check_input(audio_input: Any) -> None:
    path = "session.audio.input"
    _require(audio_input, "object", path)
    _only(audio_input, _INPUT_KEYS, path)
    transcription = audio_input.get("transcription")
    if transcription is not None:
        _require(transcription, "object", f"{path}.transcription")
        _only(transcription, _TRANSCRIPTION_KEYS, f"{path}.transcription")
        if "model" in transcription and transcription["model"] not in TRANSCRIPTION_MODELS:
            raise invalid_value(f"{path}.transcription.model", transcription["model"], TRANSCRIPTION_MODELS)
        for key in ("language", "prompt"):
            if key in transcription:
                _require(transcription[key], "string", f"{path}.transcription.{key}")
    noise = audio_input.get("noise_reduction")
    if noise is not None:
        _require(noise, "object", f"{path}.noise_reduction")
        _only(noise, {"type"}, f"{path}.noise_reduction")
        if noise.get("type") not in ("near_field", "far_field"):
            raise invalid_value(f"{path}.noise_reduction.type", noise.get("type"), ("near_field", "far_field"))


def _turn_detection(vad: Any, current: dict | None) -> dict | None:
    """The turn_detection a session ends up with after an update that sets it to ``vad``."""
    path = "session.audio.input.turn_detection"
    if vad is None:
        return None
    _require(vad, "object", path)
    kind = vad.get("type", current["type"] if current else None)
    if kind is None:
        raise missing(f"{path}.type")
    if kind not in _VAD_KEYS:
        raise invalid_value(f"{path}.type", kind, tuple(_VAD_KEYS))
    _only(vad, _VAD_KEYS[kind], path)
    if kind == "semantic_vad" and "eagerness" in vad and vad["eagerness"] not in EAGERNESS:
        raise invalid_value(f"{path}.eagerness", vad["eagerness"], EAGERNESS)
    if "threshold" in vad:
        _require(vad["threshold"], "number", f"{path}.threshold")
        if not 0 <= vad["threshold"] <= 1:
            raise ClientEventError("invalid_value",
                                   f"Invalid '{path}.threshold': expected a value from 0 to 1, got {vad['threshold']}.",
                                   f"{path}.threshold")
    for key in ("prefix_padding_ms", "silence_duration_ms", "idle_timeout_ms"):
        if key in vad and not (key == "idle_timeout_ms" and vad[key] is None):
            _require(vad[key], "integer", f"{path}.{key}")
            if vad[key] < 0:
                raise ClientEventError("invalid_value",
                                       f"Invalid '{path}.{key}': expected a value >= 0, got {vad[key]}.", f"{path}.{key}")
    for key in ("create_response", "interrupt_response"):
        if key in vad:
            _require(vad[key], "boolean", f"{path}.{key}")
    base = current if current is not None and current["type"] == kind else default_turn_detection(kind)
    return {**base, **vad, "type": kind}


def _check_output(output: Any) -> None:
    path = "session.audio.output"
    _require(output, "object", path)
    _only(output, _OUTPUT_KEYS, path)
    if "voice" in output:
        _require(output["voice"], "string", f"{path}.voice")
    if "speed" in output:
        _require(output["speed"], "number", f"{path}.speed")


def _format(fmt: Any, path: str) -> dict:
    """An audio format, validated, with the rate filled in; input takes only PCM16 at 24 kHz."""
    _require(fmt, "object", path)
    _only(fmt, {"type", "rate"}, path)
    types = ("audio/pcm",) if ".input." in path else OUTPUT_FORMATS
    if fmt.get("type") not in types:
        raise invalid_value(f"{path}.type", fmt.get("type"), types)
    if fmt["type"] != "audio/pcm":
        return {"type": fmt["type"]}
    if fmt.get("rate", 24000) != 24000:
        raise invalid_value(f"{path}.rate", fmt.get("rate"), (24000,))
    return dict(PCM_24K)


# ---- other client events ------------------------------------------------------------------------


def decode_append(event: dict) -> bytes:
    """The PCM carried by an ``input_audio_buffer.append``; raises for missing, non-base64 or odd audio."""
    if "audio" not in event:
        raise missing("audio")
    audio = event["audio"]
    _require(audio, "string", "audio")
    try:
        pcm = base64.b64decode(audio, validate=True)
    except (binascii.Error, ValueError):
        raise ClientEventError("invalid_value", "Invalid 'audio': audio is not valid base64.", "audio") from None
    if len(pcm) % 2:
        raise ClientEventError(
            "invalid_value", f"Invalid 'audio': {len(pcm)} bytes is not a whole number of 16-bit samples.", "audio"
        )
    if len(pcm) > MAX_APPEND_BYTES:
        raise ClientEventError(
            "invalid_value", f"Invalid 'audio': {len(pcm)} bytes is more than the 15 MiB allowed per event.", "audio"
        )
    return pcm


def check_response_create(event: dict) -> dict:
    """The ``response`` options of a ``response.create`` (``{}`` when absent), validated."""
    options = event.get("response") or {}
    _require(options, "object", "response")
    _only(options, _RESPONSE_KEYS, "response")
    if "output_modalities" in options and options["output_modalities"] not in (["text"], ["audio"]):
        raise ClientEventError(
            "invalid_value",
            f"Invalid value: {options['output_modalities']!r}. Supported values are: ['text'], ['audio'].",
            "response.output_modalities",
        )
    if "instructions" in options:
        _require(options["instructions"], "string", "response.instructions")
    return options


def check_truncate(event: dict) -> tuple[str, int]:
    """``(item_id, audio_end_ms)`` of a ``conversation.item.truncate``, validated for shape
    (whether the item exists and is long enough is the session's to check)."""
    for key in event:
        if key not in {"type", "event_id", "item_id", "content_index", "audio_end_ms"}:
            raise unknown(key)
    for key in ("item_id", "content_index", "audio_end_ms"):
        if key not in event:
            raise missing(key)
    _require(event["item_id"], "string", "item_id")
    _require(event["content_index"], "integer", "content_index")
    _require(event["audio_end_ms"], "integer", "audio_end_ms")
    if event["audio_end_ms"] < 0:
        raise ClientEventError("invalid_value", "Invalid 'audio_end_ms': must be at least 0.", "audio_end_ms")
    return event["item_id"], event["audio_end_ms"]


def check_item(event: dict, item_id: str) -> dict:
    """The item of a ``conversation.item.create``, completed as the server echoes it.

    The loopback takes only text messages: user/system ``input_text`` and assistant ``output_text``.
    """
    if "item" not in event:
        raise missing("item")
    item = event["item"]
    _require(item, "object", "item")
    _only(item, {"id", "type", "object", "status", "role", "content"}, "item")
    if item.get("type", "message") != "message":
        raise invalid_value("item.type", item.get("type"), ("message",))
    role = item.get("role")
    if role not in _CONTENT_TYPES:
        raise invalid_value("item.role", role, tuple(_CONTENT_TYPES))
    content = item.get("content")
    _require(content, "array", "item.content")
    for index, part in enumerate(content):
        path = f"item.content[{index}]"
        _require(part, "object", path)
        if part.get("type") != _CONTENT_TYPES[role]:
            raise invalid_value(f"{path}.type", part.get("type"), (_CONTENT_TYPES[role],))
        _only(part, {"type", "text"}, path)
        _require(part.get("text"), "string", f"{path}.text")
    return {"id": item.get("id") or item_id, "type": "message", "status": "completed", "role": role,
            "content": copy.deepcopy(content)}


# ---- helpers ------------------------------------------------------------------------------------


def _only(obj: dict, allowed: set[str], path: str) -> None:
    for key in obj:
        if key not in allowed:
            raise unknown(f"{path}.{key}")


_TYPE_CHECKS = {
    "string": lambda v: isinstance(v, str),
    "boolean": lambda v: isinstance(v, bool),
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "number": lambda v: isinstance(v, int | float) and not isinstance(v, bool),
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
}
_ARTICLES = {"string": "a string", "boolean": "a boolean", "integer": "an integer", "number": "a decimal",
             "object": "an object", "array": "an array"}


def _require(value: Any, expected: str, path: str) -> None:
    if not _TYPE_CHECKS[expected](value):
        raise _wrong_type(path, value, expected)


def _wrong_type(path: str, value: Any, expected: str) -> ClientEventError:
    got = "null" if value is None else next(
        (_ARTICLES[name] for name in ("boolean", "integer", "number", "string", "object", "array")
         if _TYPE_CHECKS[name](value)), type(value).__name__)
    return ClientEventError(
        "invalid_type", f"Invalid type for '{path}': expected {_ARTICLES[expected]}, but got {got} instead.", path
    )


def _deep_merge(target: dict, update: dict) -> None:
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(target.get(key), dict):
            _deep_merge(target[key], value)
        else:
            target[key] = copy.deepcopy(value)
