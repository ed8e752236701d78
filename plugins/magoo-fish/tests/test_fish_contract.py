"""The text-to-speech contract every magoo TTS backend passes, against the loopback server."""

from __future__ import annotations

import asyncio
import threading

import pytest

from magoo_core.testing.contracts import TextToSpeechContract
from magoo_fish import FishTextToSpeech
from magoo_fish.loopback import LoopbackFishServer

from fish_helpers import KEY


class TestFishContract(TextToSpeechContract):
    backend_class = FishTextToSpeech

    @pytest.fixture(autouse=True)
    def loopback(self):
        """The contract runs its own event loops, so the server gets a loop in a thread."""
        loop = asyncio.new_event_loop()
        thread = threading.Thread(target=loop.run_forever, daemon=True)
        thread.start()
        server = LoopbackFishServer(KEY)
        asyncio.run_coroutine_threadsafe(server.start(), loop).result(10)
        self.config = {"api_key": KEY, "base_url": server.base_url}
        yield server
        asyncio.run_coroutine_threadsafe(server.stop(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()

    def test_the_sentence_was_spoken_by_the_server(self, loopback) -> None:
        self.test_synthesizes_audio()
        assert [r.text for r in loopback.requests] == [self.sentence]
        assert loopback.protocol_errors == []
