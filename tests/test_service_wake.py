"""A service that also serves the wake word (Home Assistant detecting it, issue 20): the wake worker
asks the role for its detector at every chunk, so while the service is not available the role's
``[wake.backup]`` hears the wake word (with the other roles' backups answering), and the service
hears it again once it is back; and a service class may check which roles name it."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

import pytest
from pydantic import Field

from magoo_core import Outcome, ProfileError, hookimpl
from magoo_core.default_plugins.fakes import ScriptedSpeechToText
from magoo_core.roles import Role
from magoo_core.testing import build_plugins, make_profile
from magoo_core.types import AudioFormat, WakeEvent

from probe import run_engine, wake_turns


class Ear(ScriptedSpeechToText):
    """Hears the wake word (a loud frame) and the command, as one service; not available while
    ``away_file`` exists."""

    name: ClassVar[str] = "ear"
    roles: ClassVar[frozenset[Role]] = frozenset({Role.WAKE, Role.STT})
    input_format = AudioFormat(16000)
    frame_samples = 1280

    class Config(ScriptedSpeechToText.Config):
        away_file: Path = Field(..., description="While this file exists the service is not available.")
        wakes: bool = Field(True, description="Whether [wake] must name it.")

    @classmethod
    def check_roles(cls, config: Config, roles: frozenset[Role]) -> str | None:
        return "[wake] must name this service" if config.wakes and Role.WAKE not in roles else None

    def __init__(self, config: Config) -> None:
        super().__init__(config)
        self.frames = 0

    @property
    def available(self) -> bool:
        return not self.config.away_file.exists()

    def process(self, chunk) -> WakeEvent | None:
        self.frames += 1
        loud = max(abs(int.from_bytes(chunk.pcm[i:i + 2], "little", signed=True)) for i in range(0, len(chunk.pcm), 64))
        return WakeEvent("ear", 1.0, 1.0, chunk.timestamp) if loud > 12000 else None

    def reset(self) -> None:
        pass


class EarPlugin:
    @hookimpl
    def magoo_register_services(self, register):
        register(Ear)


def profile(away: Path, **ear) -> dict:
    return {
        "services": {"ear": {"backend": "ear", "away_file": str(away), "transcripts": ["heard by the ear"], **ear}},
        "wake": {"service": "ear", "backup": {"backend": "scripted", "level": 0.3, "model": "backup"}},
        "stt": {"service": "ear", "backup": {"backend": "scripted", "transcripts": ["heard by the backup"]}},
        "responder": {"backend": "echo"},
    }


async def test_while_the_service_is_away_the_wake_backup_wakes_and_the_service_wakes_again_once_back(tmp_path: Path):
    away = tmp_path / "away"
    away.touch()

    class ComeBack:
        @hookimpl
        def magoo_on_turn_end(self, timeline):
            away.unlink(missing_ok=True)

    engine, probe, result = await run_engine(
        {**profile(away), "audio_source": wake_turns(2, gap=0.8), "engine": {"restart_backoff": 0.05}},
        EarPlugin(), ComeBack(), turns=2,
    )

    assert [t.outcome for t in result.timelines] == [Outcome.OK, Outcome.OK], result.failures
    assert [a["wake"].model for a in probe.of("wake")] == ["backup", "ear"]
    assert [a["reply"].text for a in probe.of("reply")] == ["You said: heard by the backup", "You said: heard by the ear"]
    assert probe.of("error") == [], "a backup answering is no error"
    assert engine.backends.services["ear"].last_instance.frames > 0


def test_a_service_class_checks_the_roles_that_name_it(tmp_path: Path):
    plugins = build_plugins(EarPlugin())
    broken = profile(tmp_path / "away")
    broken["wake"] = {"backend": "scripted"}
    with pytest.raises(ProfileError) as caught:
        make_profile(broken, plugins)
    assert any("[services.ear]: [wake] must name this service" in str(issue) for issue in caught.value.issues), caught.value.issues
    make_profile(profile(tmp_path / "away"), plugins)  # named by [wake]: no issue
