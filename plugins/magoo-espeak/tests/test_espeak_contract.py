"""The text-to-speech contract every magoo TTS backend passes, with the real espeak-ng."""

from __future__ import annotations

from magoo_core.testing.contracts import TextToSpeechContract
from magoo_espeak import EspeakTextToSpeech


class TestEspeakContract(TextToSpeechContract):
    backend_class = EspeakTextToSpeech
