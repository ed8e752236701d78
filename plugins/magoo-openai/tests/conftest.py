"""The plugin's test fixtures: a loopback OpenAI server per test, and a responder on it."""

from __future__ import annotations

import pytest

from magoo_openai.loopback import LoopbackOpenAIServer

from chat_helpers import KEY


@pytest.fixture
async def server():
    async with LoopbackOpenAIServer(api_key=KEY) as srv:
        yield srv
