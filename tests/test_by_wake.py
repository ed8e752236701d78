"""Per wake word settings: ``[responder.by_wake.LABEL]`` and ``[tts.by_wake.LABEL]`` give the turns a
wake word starts their own responder and voice, each its own backend instance (issue 18 §3)."""

from __future__ import annotations

from typing import ClassVar

import pytest

from magoo_core import Backend, BackendConfig, BackendError, Outcome, ProfileError
from magoo_core.plugins import hookimpl
from magoo_core.profile import load_profile
from magoo_core.roles import Role
from magoo_core.testing import build_plugins, make_profile

from probe import run_engine

WAKE = {"seconds": 0.4, "tone": 660.0, "amplitude": 0.5}  # the scripted detector wakes at RMS 0.2
COMMAND = {"seconds": 1.0, "tone": 440.0, "amplitude": 0.1}  # speech the scripted STT hears, no wake word

#: two wake words: the scripted detector labels its detections in turn, "jarvis" then "alexa"
TWO_WAKE_WORDS = {
    "wake": {"backend": "scripted", "level": 0.2, "labels": ["jarvis", "alexa"]},
    "responder": {"backend": "echo", "template": "house: {text}", "by_wake": {"alexa": {"template": "pirate: {text}"}}},
    "tts": {"backend": "tone", "by_wake": {"alexa": {"sample_rate": 16000}}},
}


def wake_turns(count: int, *, realtime: bool = False) -> dict:
    """A scripted microphone, read in lock-step with the turns like a file unless ``realtime``:
    ``count`` times a wake word, a command and quiet."""
    parts = [{"seconds": 0.4}]
    for _ in range(count):
        parts += [WAKE, {"seconds": 0.3}, COMMAND, {"seconds": 1.2}]
    return {"backend": "scripted", "realtime": realtime, "segments": parts}


def slot_of(engine, key: str):
    (slot,) = [slot for slot in engine.backends.slots() if slot.key == key]
    return slot


async def test_two_wake_words_get_two_responders_and_two_voices():
    engine, probe, result = await run_engine({**TWO_WAKE_WORDS, "audio_source": wake_turns(3)}, turns=3)

    assert [t.outcome for t in result.timelines] == [Outcome.OK] * 3
    assert [a["wake"].label for a in probe.of("wake")] == ["jarvis", "alexa", "jarvis"]
    assert [a["reply"].text for a in probe.of("reply")] == ["house: what time is it", "pirate: what time is it", "house: what time is it"]
    assert [t.character for t in result.timelines] == ["jarvis", "alexa", "jarvis"]
    # each is its own instance: the house answered twice, the pirate once, each in its own voice
    assert slot_of(engine, "responder:echo").last_instance.calls == 2
    assert slot_of(engine, "responder:echo@alexa").last_instance.calls == 1
    assert slot_of(engine, "tts:tone").last_instance.calls == 2
    assert slot_of(engine, "tts:tone@alexa").last_instance.calls == 1
    plays = engine.player.last_instance.plays
    assert [play[0].sample_rate for play in plays] == [22050, 16000, 22050]
    assert set(engine.backends.health()) >= {"responder:echo", "responder:echo@alexa", "tts:tone", "tts:tone@alexa"}


async def test_a_follow_up_keeps_the_character_of_the_turn_it_follows():
    audio = {
        "backend": "scripted",
        "realtime": True,  # the follow-up window is a time after the reply
        "segments": [{"seconds": 0.3}, WAKE, {"seconds": 0.2}, {**COMMAND, "seconds": 0.6}, {"seconds": 2.0},
                     {**COMMAND, "seconds": 0.6}, {"seconds": 2.5}],
    }
    profile = {
        **TWO_WAKE_WORDS,
        "wake": {"backend": "scripted", "level": 0.2, "labels": ["alexa"]},
        "audio_source": audio,
        "stt": {"backend": "scripted", "transcripts": ["what time is it", "and tomorrow"]},
        "engine": {"follow_up": 3.0},
    }
    engine, probe, result = await run_engine(profile, turns=2)

    assert [t.outcome for t in result.timelines] == [Outcome.OK, Outcome.OK]
    assert [t.follow_up for t in result.timelines] == [False, True]
    assert [a["reply"].text for a in probe.of("reply")] == ["pirate: what time is it", "pirate: and tomorrow"]
    assert [t.character for t in result.timelines] == ["alexa", "alexa"]
    assert [play[0].sample_rate for play in engine.player.last_instance.plays] == [16000, 16000]
    assert slot_of(engine, "responder:echo").last_instance.calls == 0


async def test_continuous_mode_and_announcements_use_the_sections_own_backends():
    profile = {**TWO_WAKE_WORDS, "wake": None}
    engine, probe, result = await run_engine(profile, turns=1)

    assert [a["reply"].text for a in probe.of("reply")] == ["house: what time is it"]
    assert result.timelines[0].character is None
    assert slot_of(engine, "responder:echo@alexa").last_instance.calls == 0
    assert engine.backends.for_turn(Role.TTS, None) is engine.tts


async def test_a_failing_by_wake_backend_is_restarted_alone():
    profile = {
        **TWO_WAKE_WORDS,
        # in real time: the restart (after 10 ms) is over long before the third turn (seconds later) ends the run
        "audio_source": wake_turns(3, realtime=True),
        "responder": {
            "backend": "echo", "template": "house: {text}",
            "by_wake": {"alexa": {"template": "pirate: {text}", "fail": [1]}},
        },
        "engine": {"max_failures": 1, "restart_backoff": 0.01},
    }
    engine, probe, result = await run_engine(profile, turns=3)

    assert [t.outcome for t in result.timelines] == [Outcome.OK, Outcome.ERROR, Outcome.OK]
    (failure,) = [a["failure"] for a in probe.of("error")]
    assert failure.message.startswith("[responder.by_wake.alexa] echo: scripted failure")
    assert slot_of(engine, "responder:echo@alexa").restarts == 1
    assert slot_of(engine, "responder:echo").restarts == 0
    assert [a["reply"].text for a in probe.of("reply")] == ["house: what time is it", "house: what time is it"]


async def test_the_sections_backup_takes_over_for_a_by_wake_backend_that_cannot_start():
    profile = {
        **TWO_WAKE_WORDS,
        "audio_source": wake_turns(2),
        "responder": {
            "backend": "echo", "template": "house: {text}",
            "backup": {"backend": "echo", "template": "backup: {text}"},
            "by_wake": {"alexa": {"backend": "broken"}},
        },
    }
    engine, probe, result = await run_engine(profile, BrokenPlugin, turns=2)

    assert [a["reply"].text for a in probe.of("reply")] == ["house: what time is it", "backup: what time is it"]
    assert slot_of(engine, "responder:echo@alexa").replaced.startswith("[responder.by_wake.alexa] broken:")


class BrokenResponder(Backend):
    """A responder whose model server cannot be reached: it cannot start."""

    name: ClassVar[str] = "broken"

    class Config(BackendConfig):
        pass

    async def __aenter__(self):
        raise BackendError("cannot reach the model server")

    async def respond(self, transcript):
        raise AssertionError("never started, never responds")


class BrokenPlugin:
    @staticmethod
    @hookimpl
    def magoo_register_responders(register):
        register(BrokenResponder)


# ---- the profile ----------------------------------------------------------------------------------


def problems(overrides: dict) -> list[str]:
    with pytest.raises(ProfileError) as caught:
        make_profile(overrides, build_plugins())
    return [str(issue).removeprefix("<test profile>: ") for issue in caught.value.issues]


def test_a_by_wake_table_overrides_the_sections_keys_and_may_name_another_backend():
    profile = make_profile(
        {**TWO_WAKE_WORDS, "responder": {
            "backend": "echo", "template": "house: {text}", "stream": True,
            "by_wake": {"alexa": {"template": "pirate: {text}"}, "jarvis": {"backend": "local"}},
        }},
        build_plugins(),
    )
    alexa, jarvis = profile.responder.by_wake["alexa"], profile.responder.by_wake["jarvis"]
    assert (alexa.section, alexa.backend, alexa.wake_label) == ("[responder.by_wake.alexa]", "echo", "alexa")
    assert (alexa.config.template, alexa.config.stream) == ("pirate: {text}", True), "the section's keys, overridden"
    assert jarvis.backend == "local", "another backend takes none of the section's keys"
    assert profile.tts.by_wake["alexa"].config.sample_rate == 16000


def test_by_wake_problems_point_at_the_table_and_the_backends_config():
    found = problems({
        **TWO_WAKE_WORDS,
        "responder": {
            "backend": "echo", "template": "{nope}",
            "by_wake": {"alexa": {"templat": "x"}, "jarvis": {"backend": "tone"}, "bob": "pirate"},
        },
        "stt": {"backend": "scripted", "by_wake": {"alexa": {}}},
    })
    assert any(p.startswith("[responder.by_wake.alexa] templat: unknown key. Did you mean 'template'?") for p in found), found
    assert any(p.startswith("[responder.by_wake.jarvis] backend: unknown responder backend 'tone'") for p in found), found
    assert any(p.startswith("[responder.by_wake.bob]: must be a table") for p in found), found
    assert any(p.startswith("[stt] by_wake: [stt] cannot have by_wake tables") for p in found), found
    # the section's own bad template is reported once, at the section, not again for the alexa table
    assert sum(p.startswith("[responder] template: names an unknown field {nope}") for p in found) == 1, found
    assert not any(p.startswith("[responder.by_wake.alexa] template") for p in found), found


def test_a_label_no_wake_word_has_is_an_error_and_no_wake_section_a_warning():
    found = problems({**TWO_WAKE_WORDS, "tts": {"backend": "tone", "by_wake": {"alexia": {"frequency": 880}}}})
    assert found == [
        "[tts.by_wake.alexia]: no wake word of [wake] scripted is called 'alexia'. Did you mean 'alexa'?"
        " Its labels: alexa, jarvis (a model's `label` in [wake] names it)"
    ]
    profile = make_profile({**TWO_WAKE_WORDS, "wake": None}, build_plugins())
    assert [str(w) for w in profile.warnings] == [
        "<test profile>: [responder.by_wake.alexa]: the profile has no [wake], so no turn is started by a wake word"
        ' and this table is never used. Add [wake] with backend = "...", or remove the table',
        "<test profile>: [tts.by_wake.alexa]: the profile has no [wake], so no turn is started by a wake word"
        ' and this table is never used. Add [wake] with backend = "...", or remove the table',
    ]


def test_a_by_wake_table_takes_no_backup_and_a_backup_no_by_wake():
    found = problems({**TWO_WAKE_WORDS, "responder": {
        "backend": "echo",
        "backup": {"backend": "echo", "by_wake": {"alexa": {}}},
        "by_wake": {"alexa": {"backup": {"backend": "echo"}}},
    }})
    assert any(p.startswith("[responder.backup] by_wake: a backup cannot have by_wake tables") for p in found), found
    assert any(p.startswith("[responder.by_wake.alexa] backup: a by_wake table cannot have a backup") for p in found), found


PROFILE_TEXT = """\
[audio_source]
backend = "silence"

[wake]
backend = "scripted"
labels = ["jarvis", "alexa", "hey you"]

[stt]
backend = "scripted"

[responder]
backend = "echo"
template = "house: {text}"

[responder.by_wake.alexa]
template = "pirate: {text}"
stream = "yes"

[tts]
backend = "tone"
by_wake."hey you" = { frequency = -1 }

[player]
backend = "wav"
path = "reply.wav"
"""


def test_issues_name_the_line_of_the_by_wake_table_and_its_key(tmp_path):
    path = tmp_path / "two.toml"
    path.write_text(PROFILE_TEXT)
    with pytest.raises(ProfileError) as caught:
        load_profile(path, build_plugins())
    lines = PROFILE_TEXT.splitlines()
    found = [(issue.section, issue.key, lines[issue.line - 1]) for issue in caught.value.issues]
    assert found == [
        ("[responder.by_wake.alexa]", "stream", 'stream = "yes"'),
        ('[tts.by_wake."hey you"]', "frequency", 'by_wake."hey you" = { frequency = -1 }'),
    ]


def test_magoo_check_lists_the_by_wake_tables_and_warns_of_one_never_used(magoo, tmp_path):
    text = PROFILE_TEXT.replace('stream = "yes"', "stream = true").replace("frequency = -1", "frequency = 880")
    good, unused = tmp_path / "good.toml", tmp_path / "unused.toml"
    good.write_text(text)
    unused.write_text(text.replace('[wake]\nbackend = "scripted"\nlabels = ["jarvis", "alexa", "hey you"]\n', ""))

    checked, warned = magoo("check", good), magoo("check", unused)

    assert checked.returncode == 0, checked.stderr
    assert "[responder.by_wake.alexa]" in checked.stdout and '[tts.by_wake."hey you"]' in checked.stdout
    assert warned.returncode == 0, warned.stderr
    line = unused.read_text().splitlines().index("[responder.by_wake.alexa]") + 1
    assert f"warning: {unused}:{line}: [responder.by_wake.alexa]: the profile has no [wake]" in warned.stderr


def test_magoo_run_names_the_by_wake_backends_in_its_ready_line(magoo, tmp_path):
    path = tmp_path / "two.toml"
    text = PROFILE_TEXT.replace('stream = "yes"', "stream = true").replace("frequency = -1", "frequency = 880")
    text = text.replace('backend = "silence"', 'backend = "scripted"\nsegments = [{ seconds = 0.4, tone = 660.0, amplitude = 0.5 }, { seconds = 0.3 }, { seconds = 1.0, tone = 440.0, amplitude = 0.3 }, { seconds = 1.2 }]')
    path.write_text(text.replace("[wake]\n", "[wake]\nlevel = 0.2\n"))
    ran = magoo("run", "-p", path, "--turns", "1")
    assert ran.returncode == 0, ran.stderr
    assert "responder echo (alexa: echo) → tts tone (hey you: tone) → player wav" in ran.stdout
