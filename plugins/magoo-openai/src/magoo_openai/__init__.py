"""magoo-openai: a responder, speech-to-text and text-to-speech for OpenAI and every
OpenAI-compatible server, through the official ``openai`` SDK with ``base_url``.

Importing this module imports no SDK: each backend imports ``openai`` when it starts.
"""

from __future__ import annotations

from magoo_core import hookimpl

from .chat import ChatResponder

__all__ = ["ChatResponder"]


# ---- [responder] openai ---------------------------------------------------------------------------


@hookimpl
def magoo_register_responders(register):
    register(ChatResponder)


# ---- [stt] openai and [tts] openai (stt.py, tts.py): the SDK is imported when they start ----


@hookimpl
def magoo_register_stt(register):
    from .stt import OpenAISpeechToText

    register(OpenAISpeechToText)


@hookimpl
def magoo_register_tts(register):
    from .tts import OpenAITextToSpeech

    register(OpenAITextToSpeech)
