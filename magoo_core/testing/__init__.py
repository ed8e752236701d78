"""The plugin-author kit: fakes, a plugin manager without entry points, and a one-call turn runner.

Typical use in a plugin's tests::

    from magoo_core.testing import run_turn
    import magoo_hello

    def test_greets():
        run = run_turn({"responder": {"backend": "hello"}}, plugins=[magoo_hello])
        assert run.replies == ["Hello! You said: what time is it"]

Every role missing from the profile dict is filled from :data:`TEST_PROFILE` (fake devices),
so a test names only the backend it is about. The role contract suites are in
:mod:`magoo_core.testing.contracts`; the pytest fixtures in :mod:`magoo_core.testing.pytest_plugin`.
"""

from __future__ import annotations

import asyncio
import copy
import tempfile
from collections.abc import AsyncIterator, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from ..engine import Engine, RunResult
from ..event_recorder import EventRecorder
from ..plugins import Plugins, create_plugin_manager, hookimpl
from ..profile import Profile, parse_profile
from ..roles import Backend, BackendConfig, PlaybackProgress
from ..types import AudioChunk, AudioFormat, BackendFailure, EncodedAudio, TurnTimeline

__all__ = [
    "TEST_PROFILE",
    "EventRecorder",
    "MemoryPlayer",
    "RunRecord",
    "build_plugins",
    "make_profile",
    "run_profile",
    "run_turn",
]

#: Fake devices that make one full turn: silence, a tone loud enough to be the "wake word",
#: a pause, a tone the scripted STT hears as the command, then silence so the utterance ends.
TEST_PROFILE: dict[str, Any] = {
    "engine": {"mute_pre": 0.0, "mute_post": 0.0, "heartbeat_interval": 60.0},
    "audio_source": {
        "backend": "scripted",
        "realtime": False,
        "segments": [
            {"seconds": 0.4},
            {"seconds": 0.4, "tone": 660.0, "amplitude": 0.5},
            {"seconds": 0.3},
            {"seconds": 1.0, "tone": 440.0, "amplitude": 0.3},
            {"seconds": 1.2},
        ],
    },
    "wake": {"backend": "scripted", "level": 0.2},
    "stt": {"backend": "scripted", "transcripts": ["what time is it"]},
    "responder": {"backend": "echo"},
    "tts": {"backend": "tone"},
    "player": {"backend": "memory"},
}


class MemoryPlayer(Backend):
    """Keeps everything it is asked to play in memory (``plays``), reporting progress like a speaker."""

    name: ClassVar[str] = "memory"

    class Config(BackendConfig):
        pass

    def __init__(self, config: Config) -> None:
        super().__init__(config)
        self.plays: list[list[AudioChunk | EncodedAudio]] = []
        self.expected: list[AudioFormat | str] = []  # what the engine said the TTS yields
        self._stop = asyncio.Event()

    async def expect(self, output: AudioFormat | str) -> None:
        self.expected.append(output)

    async def play(self, audio: AsyncIterator[AudioChunk | EncodedAudio], progress: PlaybackProgress) -> None:
        from ..audio import rms_level

        self._stop.clear()
        pieces: list[AudioChunk | EncodedAudio] = []
        self.plays.append(pieces)
        async for piece in audio:
            if self._stop.is_set():
                break
            if not pieces:
                progress.started()
            pieces.append(piece)
            if isinstance(piece, AudioChunk):
                progress.played(rms_level(piece), piece.duration)

    async def stop(self) -> None:
        self._stop.set()


class _KitPlugin:
    """Registers the kit's own backends (the memory player)."""

    @staticmethod
    @hookimpl
    def magoo_register_players(register):
        register(MemoryPlayer)


def build_plugins(*plugins: object, builtins: bool = True, entry_points: bool = False) -> Plugins:
    """A plugin manager with the built-ins, the kit's memory player and ``plugins`` — no entry points.

    :param plugins: plugin objects to register (your plugin module, a class, an instance).
    """
    return create_plugin_manager(entry_points=entry_points, builtins=builtins, extra=[_KitPlugin, *plugins])


def make_profile(
    overrides: Mapping[str, Any], plugins: Plugins, *, base_dir: Path | None = None, environ: Mapping[str, str] | None = None
) -> Profile:
    """A profile from a dict: each role section given replaces the test profile's; others stay fake.

    Give a role the value ``None`` to leave it out (e.g. ``{"wake": None}`` for continuous mode).
    ``engine`` is merged key by key.
    """
    data = copy.deepcopy(TEST_PROFILE)
    for section, value in overrides.items():
        if value is None:
            data.pop(section, None)
        elif section == "engine":
            data["engine"] = {**data.get("engine", {}), **value}
        else:
            data[section] = copy.deepcopy(value)
    return parse_profile(data, plugins, base_dir=base_dir or Path.cwd(), source="<test profile>", environ=environ or {})


@dataclass
class RunRecord:
    """What a run produced: every event in order, the timelines, failures and played audio."""

    events: list[tuple[str, dict[str, Any]]]
    result: RunResult
    plays: list[list[AudioChunk | EncodedAudio]] = field(default_factory=list)

    @property
    def names(self) -> list[str]:
        """Event names in order, without the frequent speak_chunk and heartbeat."""
        return [name for name, _ in self.events if name not in ("speak_chunk", "heartbeat")]

    def of(self, event: str) -> list[dict[str, Any]]:
        return [kwargs for name, kwargs in self.events if name == event]

    @property
    def transcripts(self) -> list[str]:
        return [k["transcript"].text for k in self.of("transcript") if k["transcript"].final]

    @property
    def replies(self) -> list[str]:
        return [k["reply"].text for k in self.of("reply") if k["reply"].final]

    @property
    def timelines(self) -> list[TurnTimeline]:
        return self.result.timelines

    @property
    def failures(self) -> list[BackendFailure]:
        return self.result.failures

    @property
    def audio(self) -> list[AudioChunk]:
        """PCM chunks played, over all turns."""
        return [piece for play in self.plays for piece in play if isinstance(piece, AudioChunk)]


async def run_profile(
    overrides: Mapping[str, Any],
    *,
    plugins: Iterable[object] = (),
    turns: int | None = 1,
    timeout: float = 60.0,
    base_dir: Path | None = None,
    environ: Mapping[str, str] | None = None,
) -> RunRecord:
    """Run the engine on a test profile until ``turns`` turns are done or the source ends.

    :raises TimeoutError: the run did not finish within ``timeout`` seconds (a hang is a bug).
    """
    manager = build_plugins(*plugins)
    recorder = EventRecorder()
    manager.pm.register(recorder, name="magoo.testing.recorder")
    with tempfile.TemporaryDirectory() as scratch:
        profile = make_profile(overrides, manager, base_dir=base_dir or Path(scratch), environ=environ)
        engine = Engine(profile, manager, max_turns=turns)
        async with asyncio.timeout(timeout):
            result = await engine.run()
    return RunRecord(recorder.events, result, _memory_plays(engine))


def _memory_plays(engine: Engine) -> list[list[AudioChunk | EncodedAudio]]:
    player = engine.player.last_instance if engine.player is not None else None
    return player.plays if isinstance(player, MemoryPlayer) else []


def run_turn(overrides: Mapping[str, Any], **kwargs: Any) -> RunRecord:
    """Synchronous :func:`run_profile` for one turn (call it from a plain, non-async test)."""
    return asyncio.run(run_profile(overrides, **kwargs))
