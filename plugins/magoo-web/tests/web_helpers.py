"""Helpers for magoo-web's tests: a real engine running with the web actuator, and a WebSocket client.

A module of its own, not conftest.py: several plugins' tests have a conftest.py, and ``from
conftest import ...`` gets whichever was loaded last when they are tested together."""

from __future__ import annotations

import asyncio
import contextlib
import json
import textwrap
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aiohttp

from magoo_core.engine import Engine, RunResult
from magoo_core.testing import TEST_PROFILE, build_plugins, make_profile
import magoo_web
from magoo_web import WebActuator

#: the test profile's microphone, realtime and looping: a wake beep and a command every 3.3 s
LOOPING_MIC = {**TEST_PROFILE["audio_source"], "realtime": True, "loop": True}
TOKEN = "web-token-0123456789abcdefXYZ"


class Running:
    """An engine run in the background (see :func:`running_engine`)."""

    def __init__(self, engine: Engine, task: asyncio.Task, actuator: WebActuator) -> None:
        self.engine = engine
        self.task = task
        self.actuator = actuator

    @property
    def url(self) -> str:
        return self.actuator.url

    def ws_url(self, query: str = "") -> str:
        return self.url.replace("http://", "ws://") + "api/ws" + query

    async def stop(self) -> RunResult:
        self.engine.request_stop()
        return await asyncio.wait_for(self.task, 30)


@contextlib.asynccontextmanager
async def running_engine(
    overrides: dict[str, Any] | None = None, web: dict[str, Any] | None = None, *plugins: object,
    environ: dict[str, str] | None = None,
) -> AsyncIterator[Running]:
    """The engine on the test profile (a realtime looping microphone unless ``overrides`` say
    otherwise) with one ``[[actuators]] web`` on a port from the OS; yields once the page answers."""
    manager = build_plugins(magoo_web, *plugins)
    profile = make_profile(
        {"audio_source": LOOPING_MIC, **(overrides or {}),
         "actuators": [{"backend": "web", "port": 0, **(web or {})}]},
        manager, environ=environ,
    )
    engine = Engine(profile, manager)
    task = asyncio.create_task(engine.run())
    actuator = await _started_actuator(engine, task)
    running = Running(engine, task, actuator)
    try:
        yield running
    finally:
        if not task.done():
            await running.stop()


async def _started_actuator(engine: Engine, task: asyncio.Task, timeout: float = 20.0) -> WebActuator:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if task.done():
            raise AssertionError(f"the engine stopped before the page was up: {task.result()}")
        for slot in engine.actuators or []:
            actuator = slot.instance
            if isinstance(actuator, WebActuator) and actuator.server is not None and actuator.server.control is not None:
                return actuator
        await asyncio.sleep(0.02)  # real time: the engine starts its backends
    raise AssertionError("the web actuator did not start")


class Client:
    """A WebSocket client that keeps every message it got, by type."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self.messages: list[dict[str, Any]] = []
        self.texts: list[str] = []
        self._arrived = asyncio.Event()
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        async for message in self.ws:
            if message.type == aiohttp.WSMsgType.TEXT:
                self.texts.append(message.data)
                self.messages.append(json.loads(message.data))
                self._arrived.set()

    def of(self, kind: str) -> list[dict[str, Any]]:
        return [m for m in self.messages if m.get("type") == kind]

    def events(self, name: str) -> list[dict[str, Any]]:
        return [m for m in self.of("event") if m.get("event") == name]

    async def wait_for(self, found: Callable[[], Any], timeout: float = 15.0) -> Any:
        """Wait until ``found()`` is truthy (checked at each message); returns it."""
        deadline = time.monotonic() + timeout
        while not (value := found()):
            left = deadline - time.monotonic()
            if left <= 0 or self._reader.done():
                raise AssertionError(f"not seen within {timeout} s; got {[m.get('event', m['type']) for m in self.messages][-30:]}")
            self._arrived.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._arrived.wait(), left)
        return value

    async def command(self, ident: Any, **command: Any) -> dict[str, Any]:
        await self.ws.send_str(json.dumps({**command, "id": ident}))
        return await self.result(ident)

    async def result(self, ident: Any, timeout: float = 20.0) -> dict[str, Any]:
        return await self.wait_for(lambda: next((m for m in self.of("result") if m["id"] == ident), None), timeout)

    async def close(self) -> None:
        await self.ws.close()
        with contextlib.suppress(Exception):
            await self._reader


@contextlib.asynccontextmanager
async def connected(url: str, **options: Any) -> AsyncIterator[Client]:
    async with aiohttp.ClientSession() as session:
        ws = await session.ws_connect(url, **options)
        client = Client(ws)
        try:
            yield client
        finally:
            await client.close()


def web_profile(folder: Path, web: str) -> Path:
    """A profile file in ``folder``: the scripted source and STT, and one web actuator whose keys
    are the TOML lines ``web``."""
    profile = folder / "p.toml"
    profile.write_text(textwrap.dedent("""
        [audio_source]
        backend = "scripted"
        segments = [{ seconds = 1.0 }]

        [stt]
        backend = "scripted"

        [[actuators]]
        backend = "web"
    """) + web)
    return profile
