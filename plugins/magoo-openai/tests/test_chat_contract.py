"""The responder contract every magoo responder passes, against the loopback server."""

from __future__ import annotations

import asyncio
import threading

import pytest

from magoo_core.testing.contracts import ResponderContract
from magoo_openai import ChatResponder
from magoo_openai.loopback import LoopbackOpenAIServer

from chat_helpers import KEY


class TestChatResponderContract(ResponderContract):
    backend_class = ChatResponder

    @pytest.fixture(autouse=True)
    def loopback(self):
        """The contract runs its own event loops, so the server gets a loop in a thread."""
        loop = asyncio.new_event_loop()
        thread = threading.Thread(target=loop.run_forever, daemon=True)
        thread.start()
        server = LoopbackOpenAIServer(api_key=KEY, replies=["It is noon. Anything else?"])
        asyncio.run_coroutine_threadsafe(server.start(), loop).result(10)
        self.config = {"api_key": KEY, "base_url": server.base_url}
        yield server
        asyncio.run_coroutine_threadsafe(server.stop(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()

    def test_the_stream_was_asked_for(self, loopback) -> None:
        self.test_answers()
        assert loopback.chat_requests()[0]["messages"][-1] == {"role": "user", "content": self.question}
