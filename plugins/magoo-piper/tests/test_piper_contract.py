"""The text-to-speech contract every magoo TTS backend passes, with the real piper-tts and voice."""

from __future__ import annotations

from magoo_core.testing.contracts import TextToSpeechContract
from magoo_piper import PiperTextToSpeech


class TestPiperContract(TextToSpeechContract):
    backend_class = PiperTextToSpeech
