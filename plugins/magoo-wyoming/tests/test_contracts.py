"""The role contracts every magoo backend passes, for the Wyoming clients, against the scripted server."""

from __future__ import annotations

import asyncio
import threading

import pytest

from magoo_core import AudioChunk
from magoo_core.testing.contracts import ResponderContract, SpeechToTextContract, WakeDetectorContract
from magoo_wyoming.clients.responder import WyomingResponder
from magoo_wyoming.clients.stt import WyomingSpeechToText
from magoo_wyoming.clients.wake import WyomingWakeDetector

from clients_helpers import QUESTION, pcm, quiet
from wyoming_servers import ScriptedServer


@pytest.fixture
def server_uri():
    """The contracts run their own event loops, so the server gets a loop in a thread."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    server = ScriptedServer()
    asyncio.run_coroutine_threadsafe(server.__aenter__(), loop).result(10)
    yield server.uri
    asyncio.run_coroutine_threadsafe(server.__aexit__(None, None, None), loop).result(10)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(10)
    loop.close()


class TestSpeechToTextContract(SpeechToTextContract):
    backend_class = WyomingSpeechToText

    @pytest.fixture(autouse=True)
    def server(self, server_uri):
        self.config = {"uri": server_uri}

    def utterance(self, fmt):
        return [AudioChunk(quiet(0.3) + pcm(QUESTION) + quiet(1.0), 16000)]


class TestResponderContract(ResponderContract):
    backend_class = WyomingResponder

    @pytest.fixture(autouse=True)
    def server(self, server_uri):
        self.config = {"uri": server_uri}


class TestWakeDetectorContract(WakeDetectorContract):
    backend_class = WyomingWakeDetector

    @pytest.fixture(autouse=True)
    def server(self, server_uri):
        self.config = {"uri": server_uri, "names": ["ok_nabu"]}
