"""The OpenAI Realtime GA wire format: the client events magoo sends and the errors it understands.

Pure functions, no I/O. Field names follow the GA API (``session.type``, ``audio.input.*``,
``output_modalities``); the retired beta shape (``OpenAI-Beta: realtime=v1``) is never sent.
"""

from __future__ import annotations

import base64
import re
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from magoo_core import AudioFormat, BackendError
from magoo_core.secrets import Secrets

#: The only PCM format the GA API takes: 16-bit little-endian mono at 24 kHz.
AUDIO_FORMAT = AudioFormat(24000)
BYTES_PER_MS = AUDIO_FORMAT.sample_rate * AUDIO_FORMAT.frame_bytes // 1000

#: Close codes after which reconnecting with the same settings cannot help.
FATAL_CLOSE_CODES = {
    3000: "OpenAI rejected the API key",
    4000: "OpenAI no longer accepts the beta Realtime interface",
}
#: Error codes that only mean "nothing to do" (a cancel that raced the end of a response...).
HARMLESS_ERRORS = {"response_cancel_not_active", "input_audio_buffer_commit_empty"}
#: Error codes the connection handles itself (it reconnects or stops); turns do not see them.
CONNECTION_ERRORS = {"invalid_api_key", "session_expired", "beta_api_shape_disabled"}

_SECRET_LIKE = re.compile(r"\b(?:sk|rk|ek)-[A-Za-z0-9_\-*.]{3,}")


def session_url(url: str, *, mode: str, model: str) -> str:
    """The websocket URL: ``?model=...`` for a conversation, ``?intent=transcription`` (no model)
    for transcription only; other query parameters of ``url`` are kept."""
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query) if k not in ("model", "intent")]
    query.append(("intent", "transcription") if mode == "transcription" else ("model", model))
    return urlunsplit(parts._replace(query=urlencode(query)))


def session_update(config: Any) -> dict[str, Any]:
    """The ``session.update`` event for a backend ``Config`` (see the plugin's README for fields)."""
    audio_input: dict[str, Any] = {
        "format": {"type": "audio/pcm", "rate": AUDIO_FORMAT.sample_rate},
        "noise_reduction": None if config.noise_reduction == "off" else {"type": config.noise_reduction},
        "turn_detection": turn_detection(config),
    }
    if config.transcription_model:
        transcription: dict[str, Any] = {"model": config.transcription_model}
        if config.language:
            transcription["language"] = config.language
        if config.transcription_prompt:
            transcription["prompt"] = config.transcription_prompt
        audio_input["transcription"] = transcription
    if config.mode == "transcription":
        session: dict[str, Any] = {"type": "transcription", "audio": {"input": audio_input}}
    else:
        audio: dict[str, Any] = {"input": audio_input}
        if config.output == "audio":
            audio["output"] = {"format": {"type": "audio/pcm", "rate": AUDIO_FORMAT.sample_rate}, "voice": config.voice}
        session = {
            "type": "realtime",
            "model": config.model,
            "output_modalities": [config.output],
            "instructions": config.instructions,
            "max_output_tokens": config.max_output_tokens,
            "audio": audio,
        }
    return {"type": "session.update", "session": session}


def turn_detection(config: Any) -> dict[str, Any]:
    """Server VAD settings: ``server_vad`` with its levels, or ``semantic_vad`` with ``eagerness``.

    Responses are created by the server when it commits a turn, and a user who starts talking
    again interrupts the response in progress.
    """
    if config.turn_detection == "semantic_vad":
        detection: dict[str, Any] = {"type": "semantic_vad", "eagerness": config.eagerness}
    else:
        detection = {
            "type": "server_vad",
            "threshold": config.threshold,
            "prefix_padding_ms": config.prefix_padding_ms,
            "silence_duration_ms": config.silence_duration_ms,
        }
    if config.mode == "conversation":
        detection.update(create_response=True, interrupt_response=True)
    return detection


def append(pcm: bytes) -> dict[str, Any]:
    """``input_audio_buffer.append`` with 24 kHz PCM16 mono (never acknowledged by the server)."""
    return {"type": "input_audio_buffer.append", "audio": base64.b64encode(pcm).decode("ascii")}


def context_item(role: str, text: str) -> dict[str, Any]:
    """A past exchange replayed into a new session: user ``input_text`` or assistant ``output_text``."""
    kind = "input_text" if role == "user" else "output_text"
    return {
        "type": "conversation.item.create",
        "item": {"type": "message", "role": role, "content": [{"type": kind, "text": text}]},
    }


COMMIT = {"type": "input_audio_buffer.commit"}
CLEAR = {"type": "input_audio_buffer.clear"}
CREATE_RESPONSE = {"type": "response.create"}


def cancel(response_id: str | None) -> dict[str, Any]:
    event: dict[str, Any] = {"type": "response.cancel"}
    if response_id:
        event["response_id"] = response_id
    return event


def truncate(item_id: str, audio_end_ms: int) -> dict[str, Any]:
    """``conversation.item.truncate``: the assistant's audio item was heard only up to
    ``audio_end_ms``, so the server forgets the rest of it (and its transcript)."""
    return {"type": "conversation.item.truncate", "item_id": item_id, "content_index": 0, "audio_end_ms": audio_end_ms}


def redact(text: str, secret: str) -> str:
    """``text`` without the key in any encoding (:class:`~magoo_core.secrets.Secrets`), without any
    part of it the server quoted, and without anything shaped like an OpenAI key (``sk-...``)."""
    if secret:
        text = Secrets([secret], mask="***").mask(text)
    return _SECRET_LIKE.sub("sk-***", text)


def auth_error(message: str, *, retryable: bool = False) -> BackendError:
    """The error of a rejected key (HTTP 401/403, ``invalid_api_key``, close 3000): :func:`is_auth_error`."""
    error = BackendError(message, retryable=retryable)
    error.auth = True  # type: ignore[attr-defined]
    return error


def is_auth_error(error: BaseException) -> bool:
    """Whether ``error`` says the server rejected the key."""
    return getattr(error, "auth", False) is True


def error_fields(event: dict[str, Any]) -> tuple[str, str, str | None]:
    """``(code, message, param)`` of an ``error`` event, tolerant of missing fields."""
    error = event.get("error")
    if not isinstance(error, dict):
        return "unknown", "the server reported an error without details", None
    code = error.get("code") or error.get("type") or "unknown"
    message = error.get("message") or "no message"
    param = error.get("param")
    return str(code), str(message), param if isinstance(param, str) else None


def is_request_error(event: dict[str, Any]) -> bool:
    """An ``invalid_request_error`` about what the client sent (not the session cap)."""
    error = event.get("error")
    if not isinstance(error, dict):
        return False
    return error.get("type") == "invalid_request_error" and error.get("code") not in CONNECTION_ERRORS


def error_to_backend_error(event: dict[str, Any], secret: str) -> BackendError:
    """A server ``error`` event as the one readable line a user sees."""
    code, message, param = error_fields(event)
    if code == "invalid_api_key":
        return auth_error(
            "OpenAI rejected the API key (invalid_api_key): check the key in api_key (for example "
            "OPENAI_API_KEY in the environment or the profile's .env file)",
            retryable=False,
        )
    where = f" (parameter {param})" if param else ""
    return BackendError(f"OpenAI Realtime error {code}{where}: {redact(message, secret)}")


def close_to_backend_error(code: int | None, reason: str, secret: str) -> BackendError | None:
    """A close code after which reconnecting cannot help, as a fatal error; else None."""
    if code == 3000:
        return auth_error(
            "OpenAI rejected the API key (close 3000): check the key in api_key (for example "
            "OPENAI_API_KEY in the environment or the profile's .env file)",
            retryable=False,
        )
    if code in FATAL_CLOSE_CODES:
        detail = f": {redact(reason, secret)}" if reason else ""
        return BackendError(f"{FATAL_CLOSE_CODES[code]} (close {code}){detail}", retryable=False)
    return None
