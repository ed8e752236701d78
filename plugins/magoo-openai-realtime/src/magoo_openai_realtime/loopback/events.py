"""What the loopback server's events carry, shaped like the real GA frames; no I/O, no state.

Items carry ``"object": "realtime.item"`` and deltas an ``"obfuscation"`` key, as the real server's
do, so clients are tested against keys they must ignore.
"""

from __future__ import annotations

import math
import random
import re
import string

import numpy as np

_BASE62 = string.ascii_letters + string.digits
_rng = random.Random()


def new_id(prefix: str) -> str:
    """An id like the real server's: ``event_``/``item_``/``resp_``/``conv_``/``sess_`` + 21 base62."""
    return prefix + "_" + "".join(_rng.choices(_BASE62, k=21))


def obfuscation() -> str:
    """Filler of random length, like the key real deltas carry to hide token sizes."""
    return "".join(_rng.choices(_BASE62, k=_rng.randint(4, 16)))


def text_pieces(text: str) -> list[str]:
    """``text`` as word-sized deltas that join back to it exactly (each word with its leading spaces)."""
    pieces = re.findall(r"\s*\S+", text)
    tail = text[len("".join(pieces)) :]
    return pieces + [tail] if tail else pieces


def word_audio(number: int, seconds: float, piece_ms: int = 100) -> list[bytes]:
    """The loopback's "voice" for one word: a tone (a different pitch each word) of ``seconds``,
    24 kHz PCM16 mono, cut into ``piece_ms`` deltas as the real server sends audio in pieces."""
    rate = 24000
    frames = int(rate * seconds)
    t = np.arange(frames) / rate
    tone = 0.3 * np.sin(2 * math.pi * (200 + 40 * (number % 5)) * t)
    pcm = (tone * 32767).astype("<i2").tobytes()
    step = rate * piece_ms // 1000 * 2
    return [pcm[i : i + step] for i in range(0, len(pcm), step)]


def user_audio_item(item_id: str) -> dict:
    return message_item(item_id, "user", "completed", [{"type": "input_audio", "transcript": None}])


def message_item(item_id: str, role: str, status: str, content: list[dict]) -> dict:
    return {"id": item_id, "type": "message", "object": "realtime.item", "status": status, "role": role,
            "content": content}


def content_part(modality: str, text: str) -> dict:
    """The ``part`` of ``response.content_part.*``."""
    return {"type": "audio", "transcript": text} if modality == "audio" else {"type": "text", "text": text}


def assistant_content(modality: str, text: str) -> dict:
    """One entry of an assistant item's ``content``."""
    return {"type": "output_audio", "transcript": text} if modality == "audio" else {"type": "output_text", "text": text}


def response_object(response_id: str, conversation_id: str, modality: str, status: str,
                    status_details: dict | None, output: list[dict], usage: dict | None) -> dict:
    return {
        "object": "realtime.response", "id": response_id, "status": status, "status_details": status_details,
        "output": output, "conversation_id": conversation_id, "output_modalities": [modality],
        "max_output_tokens": "inf",
        "audio": {"output": {"format": {"type": "audio/pcm", "rate": 24000}, "voice": "alloy"}},
        "usage": usage, "metadata": None,
    }


def response_usage(prompt: str, output: str) -> dict:
    """Plausible token counts (a fixed instruction cost plus about 4 characters a token)."""
    text_in, text_out = 120 + len(prompt) // 4, max(1, len(output) // 4)
    return {
        "total_tokens": text_in + text_out, "input_tokens": text_in, "output_tokens": text_out,
        "input_token_details": {"text_tokens": text_in, "audio_tokens": 0, "image_tokens": 0, "cached_tokens": 0,
                                "cached_tokens_details": {"text_tokens": 0, "audio_tokens": 0, "image_tokens": 0}},
        "output_token_details": {"text_tokens": text_out, "audio_tokens": 0},
    }


def transcription_usage(model: str, seconds: float, words: int) -> dict:
    """Duration usage for whisper-1, token usage for the gpt-4o-* transcribers."""
    if model == "whisper-1":
        return {"type": "duration", "seconds": round(seconds, 3)}
    audio_tokens, text_tokens = max(1, int(seconds * 10)), max(1, words)
    return {"type": "tokens", "input_tokens": audio_tokens, "output_tokens": text_tokens,
            "total_tokens": audio_tokens + text_tokens,
            "input_token_details": {"audio_tokens": audio_tokens, "text_tokens": 0}}


def rate_limits(tokens_used: int) -> list[dict]:
    return [{"name": "requests", "limit": 5000, "remaining": 4999, "reset_seconds": 0.012},
            {"name": "tokens", "limit": 40000, "remaining": 40000 - tokens_used, "reset_seconds": 0.3}]


def masked_key(key: str) -> str:
    """A key as OpenAI echoes it in errors: only the first 3 and the last 4 characters visible."""
    if len(key) <= 8:
        return "*" * len(key)
    return key[:3] + "*" * (len(key) - 7) + key[-4:]


def expiry_message(session_length: float) -> str:
    """The ``session_expired`` message; the real one says 60 minutes, the loopback's length may differ."""
    if session_length >= 60 and session_length % 60 == 0:
        minutes = int(session_length // 60)
        duration = f"{minutes} minute" + ("s" if minutes != 1 else "")
    else:
        duration = f"{session_length:g} second" + ("s" if session_length != 1 else "")
    return f"Your session hit the maximum duration of {duration}."
