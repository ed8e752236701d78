"""One backend serving several roles (issue 18 §4): ``[services.NAME]``, validated at load, one
instance for all its roles, restarted once, and each role's backup answering while it is down."""

from __future__ import annotations

from pathlib import Path

import pytest

from magoo_core import Outcome, ProfileError, hookimpl
from magoo_core.testing import build_plugins, make_profile

from probe import LOOPING_SOURCE, run_engine, wake_turns

SERVICE = "stt+responder+tts:scripted-pipeline"


def house(**config) -> dict:
    """A profile whose STT, responder and TTS are one scripted pipeline, ``[services.house]``."""
    return {
        "services": {"house": {"backend": "scripted-pipeline", "transcripts": ["turn on the light"], **config}},
        "stt": {"service": "house"},
        "responder": {"service": "house"},
        "tts": {"service": "house"},
    }


def issues_of(overrides: dict) -> list[str]:
    with pytest.raises(ProfileError) as caught:
        make_profile(overrides, build_plugins())
    return [str(issue) for issue in caught.value.issues]


# ---- the profile -----------------------------------------------------------------------------------


def test_roles_that_name_a_service_share_its_backend_config_and_section():
    profile = make_profile(house(), build_plugins())

    assert set(profile.services) == {"house"}
    for spec in (profile.stt, profile.responder, profile.tts):
        assert (spec.service, spec.backend, spec.section) == ("house", "scripted-pipeline", "[services.house]")
        assert spec.config is profile.services["house"].config
    assert profile.stt.role.value == "stt" and profile.tts.role.value == "tts"
    assert profile.warnings == ()


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"stt": {"service": "hose"}}, "[stt] service: unknown service 'hose'. Did you mean 'house'?"),
        ({"stt": {"service": "house", "backend": "scripted"}}, "[stt] service: give either 'backend' or 'service', not both"),
        ({"player": {"service": "house"}}, "[player] service: service 'house' (scripted-pipeline) does not serve a player"),
        ({"stt": {"service": "house", "transcripts": ["x"]}}, "[stt] transcripts: a section that uses a service takes only"),
        ({"services": {"house": {"backend": "scripted-pipelin"}}}, "unknown service 'scripted-pipelin'. Did you mean 'scripted-pipeline'?"),
        ({"services": {"house": {"backend": "scripted-pipeline", "nope": 1}}}, "[services.house] nope: unknown key"),
        ({"services": {"house": {"backend": "scripted-pipeline", "backup": {"backend": "x"}}}}, "a service has no backup"),
        ({"tts": {"backend": "tone", "backup": {"service": "house"}}}, "[tts.backup] service: a backup cannot use a service"),
    ],
)
def test_a_wrong_service_is_one_clear_line(change, expected):
    issues = issues_of({**house(), **change})
    assert any(expected in issue for issue in issues), issues


def test_a_service_nobody_uses_is_a_warning_not_an_error():
    profile = make_profile({**house(), "stt": {"backend": "scripted"}, "responder": {"backend": "echo"},
                            "tts": {"backend": "tone"}}, build_plugins())
    (warning,) = profile.warnings
    assert "[services.house]: scripted-pipeline: no role uses this service" in str(warning)


def test_a_service_class_must_say_its_roles_and_have_their_methods():
    from magoo_core.roles import Backend, Role
    from magoo_core.plugin_checks import check_service_class

    class NoRoles(Backend):
        name = "no-roles"

    class Half(Backend):
        name = "half"
        roles = frozenset({Role.STT, Role.TTS})

        def transcribe(self, audio):
            return audio

    assert "roles" in check_service_class(NoRoles)
    assert check_service_class(Half) == "is missing synthesize() for the roles it serves"


def test_magoo_backends_and_plugins_list_the_services(magoo):
    listed = magoo("backends")
    assert "[services] scripted-pipeline" in listed.stdout and "stt, responder, tts" in listed.stdout
    assert "services:scripted-pipeline" in magoo("plugins", "--json").stdout


# ---- run time ----------------------------------------------------------------------------------------


async def test_one_instance_serves_every_role_entered_once_left_once_and_shown_once():
    statuses = []
    engine_of: list = []

    class Status:
        @hookimpl
        def magoo_on_turn_end(self, timeline):
            statuses.append(engine_of[0].status())

    engine, probe, result = await run_engine(house(), Status(), turns=1, on_engine=engine_of.append)

    (timeline,) = result.timelines
    assert timeline.outcome is Outcome.OK, timeline.error
    assert [a["reply"].text for a in probe.of("reply")] == ["The house heard: turn on the light"]
    instance = engine.stt.last_instance
    assert instance is engine.responder.last_instance is engine.tts.last_instance
    assert (instance.entered, instance.exited) == (1, 1)
    assert len(engine.player.last_instance.plays) == 1
    health = statuses[0].health
    assert health[SERVICE] == "ok" and not [k for k in health if k.startswith(("stt:", "tts:", "responder:"))]


async def test_a_failure_of_any_role_restarts_the_one_instance_and_every_role_waits_for_it(tmp_path: Path):
    down = tmp_path / "down"
    first: list = []

    class Outage:
        """The house goes down once everything started, and comes back when the first turn is over."""

        @hookimpl
        def magoo_on_startup(self):
            first.append(engine_of[0].stt.instance)
            down.touch()

        @hookimpl
        def magoo_on_turn_end(self, timeline):
            down.unlink(missing_ok=True)

    engine_of: list = []
    outage = Outage()
    engine, probe, result = await run_engine(
        {**house(down_file=str(down)), "audio_source": LOOPING_SOURCE, "engine": {"max_failures": 1, "restart_backoff": 0.05}},
        outage, turns=2, on_engine=engine_of.append,
    )

    assert [t.outcome for t in result.timelines] == [Outcome.ERROR, Outcome.OK]
    (failure,) = [a["failure"] for a in probe.of("error")]
    assert (failure.role, failure.backend) == ("responder", "scripted-pipeline")
    assert failure.message == "[services.house] scripted-pipeline: connection lost (the scripted pipeline is down)"
    service = engine.backends.services["house"]
    assert service.restarts >= 1 and engine.status().counters["restarts"] == service.restarts
    (old,) = first
    assert (old.entered, old.exited) == (1, 1), "the one instance was left once, for all its roles"
    new = service.last_instance
    assert new is not old and engine.stt.last_instance is engine.tts.last_instance is new
    assert new.entered == 1 and new.utterances == 1, "the new instance heard the second turn"
    assert [a["reply"].text for a in probe.of("reply")] == ["The house heard: turn on the light"]


async def test_while_the_service_is_down_each_roles_backup_answers_and_the_service_takes_over_when_back(tmp_path: Path):
    down = tmp_path / "down"
    down.write_text("the house is unreachable")

    class BringBack:
        """The house comes back after the first turn."""

        @hookimpl
        def magoo_on_turn_end(self, timeline):
            down.unlink(missing_ok=True)

    profile = house(down_file=str(down))  # the house is reached in real time (a realtime microphone)
    profile["stt"]["backup"] = {"backend": "scripted", "transcripts": ["heard by the backup"]}
    profile["responder"]["backup"] = {"backend": "echo"}
    profile["tts"]["backup"] = {"backend": "tone"}
    engine, probe, result = await run_engine(
        {**profile, "audio_source": wake_turns(3, gap=1.0), "engine": {"restart_backoff": 0.05, "restart_backoff_max": 0.1}},
        BringBack(), turns=3,
    )

    assert result.fatal is None
    assert [t.outcome for t in result.timelines] == [Outcome.OK] * 3
    replies = [a["reply"].text for a in probe.of("reply")]
    assert replies[0] == "You said: heard by the backup", "the backups answered while the house was down"
    assert replies[-1] == "The house heard: turn on the light", "the house answers again once it is back"
    assert engine.stt.spec.section == "[services.house]"
    assert engine.backends.services["house"].last_instance.entered == 1
    assert probe.of("error") == [], "a backup answering is no error"


async def test_without_backups_a_service_that_cannot_start_stops_the_run(tmp_path: Path):
    down = tmp_path / "down"
    down.touch()
    engine, probe, result = await run_engine(house(down_file=str(down)), turns=1)
    assert result.fatal.startswith("could not start [services.house] scripted-pipeline: connection refused")


async def test_a_service_that_replies_in_audio_plays_it_through_the_speaker():
    overrides = house(replies=True, reply_as="audio", reply_template="It is done.")
    overrides.pop("responder")
    engine, probe, result = await run_engine(overrides, turns=1)

    (timeline,) = result.timelines
    assert timeline.outcome is Outcome.OK, timeline.error
    assert [a["text"] for a in probe.of("speak_start")] == ["It is done."]
    assert all(probe.muted_during("speak_chunk"))
    assert not engine.muted


def test_magoo_check_shows_which_service_serves_each_role_and_warns_of_an_unused_one(magoo, tmp_path: Path):
    profile = tmp_path / "house.toml"
    profile.write_text(
        '[audio_source]\nbackend = "silence"\n'
        '[services.house]\nbackend = "scripted-pipeline"\n'
        '[services.spare]\nbackend = "scripted-pipeline"\n'
        '[stt]\nservice = "house"\n[stt.backup]\nbackend = "scripted"\n'
        '[responder]\nservice = "house"\n'
    )
    result = magoo("check", profile, env={"COLUMNS": "200"})

    assert result.returncode == 0, result.stderr
    assert "[stt] → [services.house]" in result.stdout and "[stt.backup]" in result.stdout
    assert "[services.spare]: scripted-pipeline: no role uses this service" in result.stderr
    assert "warning: " in result.stderr


def test_the_doctor_checks_a_service_once_whatever_the_roles_it_serves():
    from magoo_core.doctor.context import Context

    profile = make_profile(house(), build_plugins())
    context = Context(plugins=build_plugins(), profile=profile)
    assert [spec.section for spec in context.specs()].count("[services.house]") == 1


async def test_in_continuous_mode_the_backups_stream_gives_way_to_the_service_between_turns(tmp_path: Path):
    down = tmp_path / "down"
    down.touch()

    class BringBack:
        @hookimpl
        def magoo_on_turn_end(self, timeline):
            down.unlink(missing_ok=True)

    command = {"seconds": 0.6, "tone": 440.0, "amplitude": 0.3}
    source = {"backend": "scripted", "realtime": True,
              "segments": [{"seconds": 0.3}, command, {"seconds": 1.5}, command, {"seconds": 1.5}, command, {"seconds": 1.2}]}
    profile = house(down_file=str(down))
    profile["stt"]["backup"] = {"backend": "scripted", "transcripts": ["heard by the backup"]}
    profile["responder"]["backup"] = {"backend": "echo"}
    profile["tts"]["backup"] = {"backend": "tone"}
    engine, probe, result = await run_engine(
        {**profile, "wake": None, "audio_source": source, "engine": {"restart_backoff": 0.05, "restart_backoff_max": 0.1}},
        BringBack(),
    )

    replies = [a["reply"].text for a in probe.of("reply")]
    assert replies[0] == "You said: heard by the backup"
    assert replies[-1] == "The house heard: turn on the light", replies
    assert all(t.outcome is Outcome.OK for t in result.timelines), [(t.outcome, t.error) for t in result.timelines]
    assert probe.of("error") == [], "handing the stream back is no failure"
