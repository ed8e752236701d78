"""The runner that puts the Home Assistant stand-in (:mod:`magoo_wyoming.satellite.loopback`) in
front of magoo's real engine: fakes for the rest, a memory player.

(A module with its own name, not a conftest: this plugin's tests share the folder with others'.)
"""

from __future__ import annotations

import asyncio
import io
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import magoo_wyoming
from magoo_core.engine import Engine, RunResult
from magoo_core.event_recorder import EventRecorder
from magoo_core.plugins import hookimpl
from magoo_core.reporter import ConsoleReporter
from magoo_core.testing import build_plugins, make_profile
from magoo_wyoming.satellite.loopback import ANSWER, HEARD, TTS_RATE, FakeHomeAssistant

__all__ = ["ANSWER", "HEARD", "TTS_RATE", "FakeHomeAssistant", "connect", "run_satellite", "satellite_profile"]


# ---- the engine in front of it ------------------------------------------------------------------


def source(turns: int, *, lead: float = 1.0, gap: float = 1.5, command: float = 0.8) -> dict:
    """A realtime scripted microphone: ``lead`` s of quiet (Home Assistant connects), then
    ``turns`` times a command tone and ``gap`` s of quiet; see :func:`wake_at`."""
    parts: list[dict] = [{"seconds": lead}]
    for _ in range(turns):
        parts += [{"seconds": command, "tone": 440.0, "amplitude": 0.2}, {"seconds": gap}]
    return {"backend": "scripted", "realtime": True, "segments": parts}


def wake_at(turns: int, *, lead: float = 1.0, gap: float = 1.5, command: float = 0.8) -> dict:
    """The scripted wake word, heard as each command of :func:`source` begins."""
    return {"backend": "scripted", "at": [lead + i * (command + gap) for i in range(turns)]}


def satellite_profile(turns: int, *, backup: bool = True, source_options: dict | None = None, **config: Any) -> dict:
    stt: dict[str, Any] = {"service": "house"}
    if backup:
        stt["backup"] = {"backend": "scripted", "transcripts": ["heard by the backup"]}
    return {
        "services": {"house": {"backend": "homeassistant", "host": "127.0.0.1", "port": 0, "zeroconf": False,
                               "wake_words": ["hey magoo"], **config}},
        "stt": stt,
        "responder": {"backend": "echo"},
        "tts": {"backend": "tone"},
        "audio_source": source(turns, **(source_options or {})),
        "wake": wake_at(turns, **(source_options or {})),
        "engine": {"mute_pre": 0.0, "mute_post": 0.05, "reply_timeout": 10.0, "restart_backoff": 0.05, "restart_backoff_max": 0.2},
    }


class Recorder(EventRecorder):
    """Every engine event with its time (monotonic)."""

    def __init__(self) -> None:
        super().__init__()
        self.times: list[float] = []

    def _add(self, event: str, **arguments: Any) -> None:
        super()._add(event, **arguments)
        self.times.append(time.monotonic())

    def of(self, event: str) -> list[dict[str, Any]]:
        return [a for name, a in self.events if name == event]

    def when(self, event: str) -> list[float]:
        return [t for (name, _), t in zip(self.events, self.times, strict=True) if name == event]


@dataclass
class SatelliteRun:
    engine: Engine
    events: Recorder
    result: RunResult
    ha: FakeHomeAssistant | None
    muted_at_end: bool
    story: str  # what `magoo run` would have printed


Script = Callable[[FakeHomeAssistant, Engine], Awaitable[None]]


async def run_satellite(
    profile: dict, script: Script | None, *, turns: int, timeout: float = 60.0, plugins: tuple = (), **ha: Any
) -> SatelliteRun:
    """Run the engine with ``profile``; once it has started, a :class:`FakeHomeAssistant` connects
    to the satellite's port and ``script(ha, engine)`` runs beside the engine (None: Home
    Assistant never comes). Ends after ``turns`` turns."""
    manager = build_plugins(magoo_wyoming, *plugins)
    recorder = Recorder()
    manager.pm.register(recorder, name="recorder")
    engine = Engine(make_profile(profile, manager), manager, max_turns=turns)
    fake: list[FakeHomeAssistant] = []
    tasks: list[asyncio.Task] = []

    class Starter:
        @hookimpl
        def magoo_on_startup(self):
            if script is None:
                return
            port = engine.backends.services["house"].instance.listener.port
            fake.append(FakeHomeAssistant("127.0.0.1", port, **ha))
            tasks.append(asyncio.ensure_future(script(fake[0], engine)))

    manager.pm.register(Starter(), name="starter")
    story = io.StringIO()
    manager.pm.register(ConsoleReporter(story, engine), name="story")
    try:
        result = await asyncio.wait_for(engine.run(), timeout)
    finally:
        for task in tasks:
            if not task.done():
                task.cancel()
        if fake:
            await fake[0].disconnect()
    for task in tasks:
        if task.done() and not task.cancelled() and task.exception() is not None:
            raise task.exception()
    assert not (fake and fake[0].errors), fake[0].errors
    return SatelliteRun(engine, recorder, result, fake[0] if fake else None, engine.muted, story.getvalue())


async def connect(ha: FakeHomeAssistant, engine: Engine) -> None:
    await ha.connect()
