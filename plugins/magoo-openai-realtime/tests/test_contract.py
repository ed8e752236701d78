"""The speech-to-text contract every magoo STT backend passes, against the loopback server."""

from __future__ import annotations

import asyncio
import threading

import pytest

from magoo_core import AudioChunk, AudioFormat
from magoo_core.audio import convert, read_wav, silence
from magoo_core.testing.contracts import SpeechToTextContract
from magoo_openai_realtime import RealtimeSpeechToText
from magoo_openai_realtime.loopback import LoopbackRealtimeServer

from realtime_helpers import CLIP, KEY


class TestRealtimeContract(SpeechToTextContract):
    backend_class = RealtimeSpeechToText

    @pytest.fixture(autouse=True)
    def loopback(self):
        """The contract runs its own event loops, so the server gets a loop in a thread."""
        loop = asyncio.new_event_loop()
        thread = threading.Thread(target=loop.run_forever, daemon=True)
        thread.start()
        server = LoopbackRealtimeServer(api_key=KEY, transcripts=["what time is it"])
        asyncio.run_coroutine_threadsafe(server.start(), loop).result(10)
        self.config = {"api_key": KEY, "url": server.url}
        yield server
        asyncio.run_coroutine_threadsafe(server.stop(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()

    def utterance(self, fmt: AudioFormat) -> list[AudioChunk]:
        wav_format, pcm = read_wav(CLIP)
        speech = convert(AudioChunk(pcm, wav_format.sample_rate, wav_format.channels, wav_format.sample_width), fmt)
        return [silence(fmt, 0.3), speech, silence(fmt, 1.0)]

    def test_the_utterance_is_heard(self, loopback) -> None:
        self.test_transcribes_and_ends()
        assert [turn.transcript for turn in loopback.turns] == ["what time is it"]
