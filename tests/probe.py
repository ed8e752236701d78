"""Helpers for tests that run the real engine: a probe of events and mute state, scripted sources."""

from __future__ import annotations

import asyncio

from typing import ClassVar

from magoo_core import Backend, BackendConfig, BackendError
from magoo_core.engine import Engine
from magoo_core.event_recorder import EventRecorder
from magoo_core.testing import TEST_PROFILE, build_plugins, make_profile


class Probe(EventRecorder):
    """Records every event together with whether the microphone was muted at that moment."""

    def __init__(self, engine: Engine, *, stop_on: str | None = None) -> None:
        super().__init__()
        self.engine = engine
        self.stop_on = stop_on
        self.muted_at: list[tuple[str, bool]] = []

    def _add(self, event, **arguments):
        super()._add(event, **arguments)
        self.muted_at.append((event, self.engine.muted))
        if event == self.stop_on:
            self.engine.request_stop()

    def names(self) -> list[str]:
        return [name for name, _ in self.events if name not in ("speak_chunk", "heartbeat")]

    def of(self, event: str) -> list[dict]:
        return [args for name, args in self.events if name == event]

    def muted_during(self, event: str) -> list[bool]:
        return [muted for name, muted in self.muted_at if name == event]


async def run_engine(overrides, *plugins, turns=None, stop_on=None, timeout=60.0, on_engine=None, **engine_options):
    """Run the engine on the test profile with ``overrides``; ``on_engine(engine)`` before it runs."""
    manager = build_plugins(*plugins)
    profile = make_profile(overrides, manager)
    engine = Engine(profile, manager, max_turns=turns, **engine_options)
    if on_engine is not None:
        on_engine(engine)
    probe = Probe(engine, stop_on=stop_on)
    manager.pm.register(probe, name="probe")
    result = await asyncio.wait_for(engine.run(), timeout)
    return engine, probe, result


def in_order(names: list[str], expected: list[str]) -> bool:
    """True when ``expected`` appears in ``names`` in this order (other events may come between)."""
    it = iter(names)
    return all(any(name == want for name in it) for want in expected)


LOOPING_SOURCE = {**TEST_PROFILE["audio_source"], "loop": True}


def segments(*parts: tuple[float, float | None]) -> dict:
    """A realtime scripted source from (seconds, tone Hz or None) parts; loud tones (660 Hz) are wakes."""
    return {
        "backend": "scripted",
        "realtime": True,
        "segments": [
            {"seconds": s} if hz is None else {"seconds": s, "tone": hz, "amplitude": 0.5 if hz == 660 else 0.3}
            for s, hz in parts
        ],
    }


def wake_turns(count: int, *, gap: float, lead: float = 0.3, tail: float = 0.0) -> dict:
    """A realtime scripted microphone: ``lead`` s of quiet, then ``count`` times a loud wake beep and
    a command tone, each followed by ``gap`` s, then ``tail`` s of quiet."""
    parts: list[dict] = [{"seconds": lead}]
    for _ in range(count):
        parts += [
            {"seconds": 0.4, "tone": 660.0, "amplitude": 0.5},
            {"seconds": 0.2},
            {"seconds": 0.6, "tone": 440.0, "amplitude": 0.3},
            {"seconds": gap},
        ]
    if tail:
        parts.append({"seconds": tail})
    return {"backend": "scripted", "realtime": True, "segments": parts}


class SoundlessPlayer(Backend):
    """A player on a machine with no sound output: it cannot start."""

    name: ClassVar[str] = "soundless"

    class Config(BackendConfig):
        pass

    async def __aenter__(self):
        raise BackendError("cannot open the audio output: check [player] audio_device")

    async def play(self, audio, progress):
        raise AssertionError("never started, never plays")

    async def stop(self):
        pass
