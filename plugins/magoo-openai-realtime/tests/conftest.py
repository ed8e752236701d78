"""The Realtime plugin's test fixture: a loopback server per test."""

from __future__ import annotations

import pytest

from magoo_openai_realtime.loopback import LoopbackRealtimeServer

from realtime_helpers import KEY, REPLY


@pytest.fixture
async def server():
    async with LoopbackRealtimeServer(api_key=KEY, transcripts=["what time is it"], replies=lambda text: REPLY) as srv:
        yield srv
