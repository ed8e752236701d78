"""Hot reload: a changed profile is applied to a running engine between turns, only what changed
is restarted, the microphone's stream is never reopened for it, and a broken profile changes nothing.

The engine tests run a realtime scripted microphone (turns come as a person speaks them), so each
takes a few seconds of real time; the last two wait on a real signal and on inotify.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import threading
import time
from pathlib import Path
from typing import ClassVar

import pytest
from pydantic import Field

from magoo_core import BackendError, hookimpl
from magoo_core.default_plugins.fakes import ToneSpeech
from magoo_core.default_plugins.sources import ScriptedSource
from magoo_core.engine import Engine
from magoo_core.event_recorder import EventRecorder
from magoo_core.profile import load_profile
from magoo_core.profile_diff import diff_profiles
from magoo_core.reload import Reloader, live_setting, plan
from magoo_core.testing import build_plugins, make_profile

from probe import wake_turns


class CountingSource(ScriptedSource):
    """The scripted microphone, counting how often its stream is opened (a reopened microphone)."""

    name: ClassVar[str] = "counting"
    streams: ClassVar[int] = 0

    def stream(self):
        type(self).streams += 1
        return super().stream()


class FragileSpeech(ToneSpeech):
    """The tone voice, which cannot start with ``broken`` (a voice file that is not there)."""

    name: ClassVar[str] = "fragile"

    class Config(ToneSpeech.Config):
        broken: bool = Field(False, description="cannot start")

    async def __aenter__(self):
        if self.config.broken:
            raise BackendError("no voice file at /nowhere/voice.onnx")
        return self


class _Sources:
    @staticmethod
    @hookimpl
    def magoo_register_audio_sources(register):
        register(CountingSource)

    @staticmethod
    @hookimpl
    def magoo_register_tts(register):
        register(FragileSpeech)


def profile_text(*, threshold: float = 0.5, frequency: float = 220.0, reply_timeout: float = 30.0,
                 source_extra: str = "", watch: bool = False, tts_extra: str = "",
                 source: str = "counting", player: str = 'backend = "memory"', tts: str = "tone",
                 actuators: str = "") -> str:
    segments = ", ".join(
        "{ seconds = %s%s }" % (part["seconds"], f", tone = {part['tone']}, amplitude = {part['amplitude']}" if "tone" in part else "")
        for part in wake_turns(2, gap=1.5, tail=30)["segments"]
    )
    return f"""\
[engine]
mute_pre = 0.0
mute_post = 0.0
reply_timeout = {reply_timeout}
watch_profile = {str(watch).lower()}

[audio_source]
backend = "{source}"
realtime = true
segments = [{segments}]
{source_extra}

[wake]
backend = "scripted"
level = 0.2
threshold = {threshold}

[stt]
backend = "scripted"

[responder]
backend = "echo"

[tts]
backend = "{tts}"
frequency = {frequency}
realtime = true
{tts_extra}

[player]
{player}
{actuators}
"""


class Turns(EventRecorder):
    """Notes, at each reply's first sound, which TTS instance speaks; calls ``at_first_sound`` once."""

    def __init__(self, engine: Engine, at_first_sound=None) -> None:
        super().__init__()
        self.engine = engine
        self.at_first_sound = at_first_sound
        self.voices: list[object] = []

    def _add(self, event, **arguments):
        super()._add(event, **arguments)
        if event == "speak_start" and arguments.get("turn") is not None:
            self.voices.append(self.engine.backends.tts.instance)
            if self.at_first_sound is not None:
                self.at_first_sound, call = None, self.at_first_sound
                call()


def start(path: Path, *, turns: int | None = 2, at_first_sound=None, environ=None) -> tuple[Engine, Reloader, Turns]:
    plugins = build_plugins(_Sources)
    engine = Engine(load_profile(path, plugins, environ=environ), plugins, max_turns=turns)
    reloader = Reloader(engine, path, environ=environ)
    plugins.pm.register(reloader, name="magoo:reload")
    recorder = Turns(engine, at_first_sound)
    plugins.pm.register(recorder, name="turns")
    return engine, reloader, recorder


@pytest.fixture(autouse=True)
def _count_from_zero():
    CountingSource.streams = 0


# ---- in the engine ------------------------------------------------------------------------------------


async def test_a_threshold_and_a_voice_changed_while_a_turn_speaks_apply_from_the_next_turn(tmp_path, caplog):
    path = tmp_path / "kitchen.toml"
    path.write_text(profile_text())

    def edit_and_reload():  # while the first reply is being spoken
        path.write_text(profile_text(threshold=0.7, frequency=330.0))
        reloader.request()

    engine, reloader, recorder = start(path, at_first_sound=edit_and_reload)
    caplog.set_level(logging.INFO, logger="magoo")
    task = asyncio.create_task(engine.run())
    while engine.backends.wake is None or engine.backends.wake.instance is None:
        await asyncio.sleep(0.01)
    detector = engine.backends.wake.instance
    result = await asyncio.wait_for(task, 60)

    # the first turn was answered by the voice it began with, the second by the new one; none dropped
    assert [t.outcome.value for t in result.timelines] == ["ok", "ok"], result.timelines
    first, second = recorder.voices
    assert first.config.frequency == 220.0 and second.config.frequency == 330.0
    assert first.calls == 1 and second.calls == 1
    # the wake detector took its threshold in place: the same instance, no model reloaded
    assert engine.backends.wake.last_instance is detector and detector.config.threshold == 0.7
    # the microphone was opened once for the whole run
    assert CountingSource.streams == 1
    lines = [r.getMessage() for r in caplog.records if r.name == "magoo.reload"]
    assert "reload: [wake] threshold: 0.5 → 0.7" in lines
    assert "reload: [tts] frequency: 220.0 → 330.0" in lines
    assert "reload: [wake] took its new settings in place" in lines
    assert "reload: [tts] restarted with its new settings" in lines
    assert reloader.profile.tts.config.frequency == 330.0


async def test_a_broken_profile_keeps_the_old_one_running_and_logs_every_problem(tmp_path, caplog):
    path = tmp_path / "kitchen.toml"
    path.write_text(profile_text())
    engine, reloader, recorder = start(path, turns=1)
    caplog.set_level(logging.INFO, logger="magoo")
    task = asyncio.create_task(engine.run())
    while engine.backends.tts.instance is None:
        await asyncio.sleep(0.01)
    voice = engine.backends.tts.instance
    path.write_text(profile_text(frequency=330.0, tts_extra="frequencey = 2\nspeed = 3", reply_timeout=-1))
    assert await reloader.reload() is None

    lines = [r.getMessage() for r in caplog.records if r.name == "magoo.reload"]
    assert f"reload: {path}: 3 problems; still running the profile as it was" in lines
    problems = [line for line in lines if line.startswith(f"  {path}:")]
    assert len(problems) == 3 and any("[tts] frequencey" in line for line in problems), lines
    assert any("[engine] reply_timeout" in line for line in problems)
    assert engine.backends.tts.instance is voice and engine.settings.reply_timeout == 30.0
    result = await asyncio.wait_for(task, 60)
    assert [t.outcome.value for t in result.timelines] == ["ok"]
    assert recorder.voices == [voice]


async def test_what_needs_a_restart_is_said_and_left_and_the_microphone_is_not_reopened(tmp_path, caplog):
    path = tmp_path / "kitchen.toml"
    path.write_text(profile_text())
    engine, reloader, _ = start(path, turns=1)
    caplog.set_level(logging.INFO, logger="magoo")
    task = asyncio.create_task(engine.run())
    while engine.backends.tts is None or engine.backends.tts.instance is None or not CountingSource.streams:
        await asyncio.sleep(0.01)
    source = engine.backends.source.instance
    assert engine.speaker.sounds.path("wake") is None
    changed = profile_text(reply_timeout=12.0, source_extra="chunk_ms = 40").replace(
        "mute_pre = 0.0", "mute_pre = 0.0\npreroll = 1.0\nmax_failures = 7\nrestart_backoff = 0.5\nexit_after_restarts = 3")
    path.write_text(changed.replace("watch_profile = false\n", "watch_profile = false\n\n[engine.sounds]\nwake = true\n"))
    steps = await reloader.reload()

    assert steps is not None and steps.restart == ["[engine] preroll", "[audio_source]"]
    assert engine.settings.reply_timeout == 12.0 and engine.settings.preroll == 0.5
    assert engine.speaker.sounds.path("wake") is not None, "the sounds are live"
    assert all(slot.max_failures == 7 and slot.backoff.base == 0.5 for slot in engine.backends.slots())
    assert engine.backends.restart_budget.limit == 3
    assert engine.backends.source.instance is source and CountingSource.streams == 1
    lines = [r.getMessage() for r in caplog.records if r.name == "magoo.reload"]
    assert "reload: restart magoo to apply: [engine] preroll, [audio_source] (the rest is applied)" in lines
    # the running profile keeps what was not applied: the next reload says it again
    assert reloader.profile.engine.preroll == 0.5 and reloader.profile.engine.reply_timeout == 12.0
    again = await reloader.reload()
    assert again is not None and again.restart == ["[engine] preroll", "[audio_source]"]
    engine.request_stop()
    await asyncio.wait_for(task, 60)


async def running(engine: Engine) -> asyncio.Task:
    """The engine's run, once every backend has started."""
    task = asyncio.create_task(engine.run())
    while engine.backends.player is None or engine.backends.player.instance is None or not CountingSource.streams:
        await asyncio.sleep(0.01)
    return task


async def test_a_wake_detector_that_cannot_take_its_settings_in_place_is_restarted_and_still_wakes(tmp_path):
    path = tmp_path / "kitchen.toml"
    path.write_text(profile_text())
    engine, reloader, _ = start(path)
    task = await running(engine)
    detector = engine.backends.wake.instance
    # a new script (at) is what the scripted detector cannot take in place
    path.write_text(profile_text().replace("threshold = 0.5", "threshold = 0.5\nat = [3600]"))
    steps = await reloader.reload()
    assert steps is not None and list(steps.slots) == ["[wake]"]

    result = await asyncio.wait_for(task, 60)
    assert engine.backends.wake.last_instance is not detector
    assert engine.backends.wake.last_instance.config.at == [3600.0]
    assert [t.outcome.value for t in result.timelines] == ["ok", "ok"], "both wake words heard by the new detector"
    assert engine.backends.wake.last_instance.detections == 2 and CountingSource.streams == 1


async def test_new_settings_that_cannot_start_give_way_to_the_old_ones(tmp_path, caplog):
    path = tmp_path / "kitchen.toml"
    path.write_text(profile_text(tts="fragile"))
    engine, reloader, _ = start(path, turns=None)
    caplog.set_level(logging.INFO, logger="magoo")
    task = await running(engine)
    path.write_text(profile_text(tts="fragile", frequency=330.0, tts_extra="broken = true"))
    await reloader.reload()

    voice = engine.backends.tts.instance
    assert voice is not None and voice.config.frequency == 220.0 and not voice.config.broken
    lines = [r.getMessage() for r in caplog.records if r.name == "magoo.engine"]
    assert any("[tts] could not start with its new settings: [tts] fragile: no voice file at /nowhere/voice.onnx;"
               " starting it again with the old ones" in line for line in lines), lines
    assert reloader.profile.tts.config.frequency == 220.0, "what runs: the next reload offers the change again"
    path.write_text(profile_text(tts="fragile", frequency=330.0))
    await reloader.reload()
    assert engine.backends.tts.instance.config.frequency == 330.0
    engine.request_stop()
    await asyncio.wait_for(task, 60)
    assert CountingSource.streams == 1


async def test_an_actuator_restarts_alone_and_the_others_keep_their_instances(tmp_path):
    path = tmp_path / "kitchen.toml"
    first, second = tmp_path / "first.jsonl", tmp_path / "second.jsonl"
    actuator = '[[actuators]]\nbackend = "log"\npath = "{}"\n'
    path.write_text(profile_text(actuators=actuator.format(first)))
    engine, reloader, _ = start(path, turns=None)
    task = await running(engine)
    before = {slot.configured.section: slot.instance for slot in engine.backends.slots()}
    path.write_text(profile_text(actuators=actuator.format(second)))
    steps = await reloader.reload()

    assert steps is not None and list(steps.slots) == ["[[actuators]] #1"]
    after = {slot.configured.section: slot.instance for slot in engine.backends.slots()}
    assert [section for section in before if after[section] is not before[section]] == ["[[actuators]] #1"]
    engine.request_stop()
    await asyncio.wait_for(task, 60)
    assert "shutdown" in second.read_text() and "shutdown" not in first.read_text()


async def test_a_new_secret_value_is_refused_until_a_restart(tmp_path, caplog):
    path = tmp_path / "kitchen.toml"
    path.write_text(profile_text().replace('backend = "echo"', 'backend = "echo"\ntemplate = { env = "REPLY" }'))
    environ = {"REPLY": "the first secret reply {text}"}
    engine, reloader, _ = start(path, turns=None, environ=environ)
    caplog.set_level(logging.INFO, logger="magoo")
    task = await running(engine)
    responder = engine.backends.responder.instance
    environ["REPLY"] = "another secret reply {text}"
    assert await reloader.reload() is None

    assert engine.backends.responder.instance is responder
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert "restart magoo to use it; still running the profile as it was" in text and "secret reply" not in text
    engine.request_stop()
    await asyncio.wait_for(task, 60)


async def test_a_reload_asked_for_while_the_backends_start_is_done_once_they_run(tmp_path):
    path = tmp_path / "kitchen.toml"
    path.write_text(profile_text())
    engine, reloader, _ = start(path, turns=None)
    path.write_text(profile_text(reply_timeout=9.0))
    engine.stopping.on_reload()  # what SIGHUP calls, here before the engine runs
    task = await running(engine)
    for _ in range(1000):
        if engine.settings.reply_timeout == 9.0:
            break
        await asyncio.sleep(0.01)
    assert engine.settings.reply_timeout == 9.0 and reloader.reloads == 1
    engine.request_stop()
    await asyncio.wait_for(task, 60)
    reloader.request()  # stopped: nothing happens
    assert reloader.reloads == 1


async def test_a_changed_file_is_picked_up_by_the_watch(tmp_path, caplog):
    path = tmp_path / "kitchen.toml"
    path.write_text(profile_text(watch=True))
    engine, reloader, _ = start(path, turns=None)
    caplog.set_level(logging.INFO, logger="magoo")
    task = asyncio.create_task(engine.run())
    while not reloader.watch.running:
        await asyncio.sleep(0.01)
    await asyncio.sleep(0.5)  # inotify's watch is set up in watchfiles' thread: give it a moment
    path.write_text(profile_text(watch=True, reply_timeout=7.0))
    # real time: the watch groups changes for up to 1.6 s, looking every 0.5 s
    for _ in range(200):
        if engine.settings.reply_timeout == 7.0:
            break
        await asyncio.sleep(0.05)
    assert engine.settings.reply_timeout == 7.0
    assert "reload: [engine] reply_timeout: 30.0 → 7.0" in [r.getMessage() for r in caplog.records]
    engine.request_stop()
    await asyncio.wait_for(task, 60)
    assert not reloader.watch.running


# ---- the plan, without an engine ------------------------------------------------------------------------


def test_the_plan_names_secrets_without_their_values_and_treats_unknown_settings_as_needing_a_restart():
    plugins = build_plugins()
    old = make_profile({"engine": {"sounds": {"done": True}}, "responder": {"backend": "echo", "template": {"env": "TEMPLATE"}}},
                       plugins, environ={"TEMPLATE": "the secret template {text}"})
    new = make_profile({"engine": {"preroll": 0.2, "sounds": {"wake": True}},
                        "responder": {"backend": "echo", "template": {"env": "TEMPLATE"}, "stream": True}}, plugins,
                       environ={"TEMPLATE": "the secret template {text}"})
    shown = [str(change) for change in diff_profiles(old, new)]
    assert "[responder] stream: False → True" in shown
    assert "[engine] preroll: 0.5 → 0.2, sounds.wake: None → True, sounds.done: True → None" in shown
    assert all("secret template" not in line for line in shown)
    steps = plan(old, new, continuous=False, runs={spec.section for spec in old.specs()})
    assert steps.settings == ["sounds"] and steps.restart == ["[engine] preroll"]
    assert list(steps.slots) == ["[responder]"]
    assert live_setting("reply_timeout") and live_setting("restart_backoff")
    assert not live_setting("preroll") and not live_setting("no_such_setting")

    changed_secret = make_profile({"engine": {"sounds": {"done": True}}, "responder": {"backend": "echo", "template": {"env": "TEMPLATE"}}}, plugins,
                                  environ={"TEMPLATE": "another secret {text}"})
    assert [str(change) for change in diff_profiles(old, changed_secret)] == ["[responder] template: (secret) → (secret)"]


def test_sections_added_or_removed_and_the_mode_need_a_restart():
    plugins = build_plugins()
    old = make_profile({}, plugins)
    new = make_profile({"wake": None, "actuators": [{"backend": "log"}],
                        "responder": {"backend": "echo", "by_wake": {"hey_magoo": {"template": "hi {text}"}}}}, plugins)
    steps = plan(old, new, continuous=False, runs={spec.section for spec in old.specs()})
    assert steps.restart == ["[wake] removed", "[responder.by_wake.hey_magoo] added", "[[actuators]] #1 added"]
    assert not steps.slots
    assert [str(change) for change in steps.changes] == [
        "[wake] removed", "[responder.by_wake.hey_magoo] added", "[[actuators]] #1 added",
    ]


# ---- magoo run ------------------------------------------------------------------------------------------


def test_sighup_reloads_a_running_magoo_and_sigterm_still_stops_it(magoo_process, tmp_path):
    path = tmp_path / "kitchen.toml"
    player = f'backend = "wav"\npath = "{tmp_path / "reply.wav"}"'
    path.write_text(profile_text(source="scripted", player=player))
    proc = magoo_process("run", "--profile", path)
    log: list[str] = []
    reader = threading.Thread(target=lambda: log.extend(proc.stderr), daemon=True)
    reader.start()

    def wait_for(text: str) -> None:
        for _ in range(600):  # real time: the subprocess starts, then reacts to the signal
            if any(text in line for line in log):
                return
            assert proc.poll() is None, "".join(log)
            time.sleep(0.05)
        raise AssertionError(f"no {text!r} in:\n{''.join(log)}")

    wait_for("listening")
    path.write_text(profile_text(frequency=330.0, source="scripted", player=player))
    proc.send_signal(signal.SIGHUP)
    wait_for("reload: [tts] restarted with its new settings")
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) == 0, "".join(log)
    reader.join(timeout=5)
    text = "".join(log)
    assert "SIGHUP: reloading the profile" in text and "reload: [tts] frequency: 220.0 → 330.0" in text
    assert "SIGTERM: stopping" in text and "Traceback" not in text


def test_a_changed_second_opinion_needs_a_restart_and_alone_leaves_the_wake_detector_running():
    plugins = build_plugins()
    wake = {"backend": "scripted", "level": 0.2}
    old = make_profile({"wake": {**wake, "verify": {"backend": "scripted", "level": 0.3}}}, plugins)
    new = make_profile({"wake": {**wake, "verify": {"backend": "scripted", "level": 0.4}}}, plugins)
    steps = plan(old, new, continuous=False, runs={spec.section for spec in old.specs()})
    assert steps.restart == ["[wake.verify]"] and not steps.slots
    assert steps.running.wake.verify == old.wake.verify  # the next reload compares with what runs
