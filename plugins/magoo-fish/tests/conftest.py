"""The Fish plugin's fixtures: the loopback server (helpers are in fish_helpers.py)."""

from __future__ import annotations

import pytest

from magoo_fish.loopback import LoopbackFishServer

from fish_helpers import KEY


@pytest.fixture
async def server():
    async with LoopbackFishServer(KEY) as srv:
        yield srv
        assert srv.protocol_errors == [], "magoo's client sent a request the server had to refuse"
