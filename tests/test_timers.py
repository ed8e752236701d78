"""Timers (issue 19 §4): set, cancel and list through the tools; a finished timer rings through
speech outside a turn until stopped; timers survive a restart and are in the status file."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import re
import time
from pathlib import Path

import pytest

from typing import ClassVar

from pydantic import Field

from magoo_core import Backend, BackendConfig, Reply, hookimpl
from magoo_core.default_plugins.timers import TIMER_TOOLS, TimerTools
from magoo_core.engine import Engine
from magoo_core.settings import TimerSettings
from magoo_core.speech import SpeechResult
from magoo_core.status import status_document
from magoo_core.testing import build_plugins, make_profile
from magoo_core.timer_store import TimerStore, store_path
from magoo_core.timers import Timers, clean_name, duration_name, spoken_duration
from magoo_core.types import EngineStatus, State, Timer

from probe import Probe, in_order, segments

QUIET = segments((3.0, None))  # a realtime microphone that hears nothing for 3 s, then ends


# ---- a run of the real engine ---------------------------------------------------------------------


class ToolUser:
    """A plugin that calls the run's tools at startup, as a language model would."""

    def __init__(self, *calls: tuple[str, dict]) -> None:
        self.calls = calls
        self.engine: Engine | None = None
        self.results = []

    @hookimpl
    def magoo_on_startup(self):
        async def call():
            for name, arguments in self.calls:
                self.results.append(await self.engine.turns.answers.tools.call(name, json.dumps(arguments)))

        asyncio.get_running_loop().create_task(call())


async def run(overrides, user: ToolUser | None = None, *, path: Path | None = None, timeout=30.0):
    """Run the engine once; ``path``: the profile's file (its folder keeps the timers)."""
    manager = build_plugins(*([user] if user else []))
    profile = make_profile(overrides, manager, base_dir=path.parent if path else None)
    if path is not None:
        profile = dataclasses.replace(profile, path=path)
    engine = Engine(profile, manager)
    if user is not None:
        user.engine = engine
    probe = Probe(engine)
    manager.pm.register(probe, name="probe")
    result = await asyncio.wait_for(engine.run(), timeout)
    return engine, probe, result


def said(probe) -> list[str]:
    return [arguments["text"] for arguments in probe.of("speak_start") if arguments["turn"] is None]


def timer_events(probe) -> list[tuple[str, str]]:
    return [(name, arguments["timer"].name) for name, arguments in probe.events if name.startswith("timer_")]


async def test_a_timer_set_through_the_toolbox_rings_with_its_sound_and_its_name(tmp_path):
    # a real wait: the shortest timer a model may set is 1 s, and it must ring within the run
    user = ToolUser(("timer_set", {"seconds": 1, "name": "Pasta timer"}))
    engine, probe, result = await run(
        {"audio_source": QUIET, "engine": {"timers": {"ring_for": 0}}}, user, path=tmp_path / "kitchen.toml"
    )

    assert user.results[0].ok, user.results[0].content
    assert user.results[0].content.startswith("The Pasta timer is set for 1 second; it ends at ")
    assert said(probe) == ["<sound timer>", "The Pasta timer is done."]
    plays = engine.player.last_instance.plays
    assert len(plays) == 2 and all(plays)  # the sound, then the words: both reached the player
    assert timer_events(probe) == [("timer_started", "Pasta"), ("timer_finished", "Pasta")]
    assert not engine.muted and result.fatal is None
    assert json.loads((tmp_path / "kitchen.timers.json").read_text())["timers"] == []  # rung: not kept


async def test_a_finished_timer_rings_again_until_ring_for_has_passed():
    # a real wait: rings 1 s apart, for 1.5 s from the first: two rings, never a third
    user = ToolUser(("timer_set", {"seconds": 1}))
    timers = {"sound": False, "ring_for": 1.5, "ring_every": 1.0}
    _engine, probe, _result = await run({"audio_source": segments((4.0, None)), "engine": {"timers": timers}}, user)
    assert said(probe) == ["The 1 second timer is done."] * 2


async def test_barge_in_stops_a_ringing_timer_and_the_turn_goes_on():
    # a real wait: the timer rings at 1 s for 2.4 s of realtime speech; the wake word comes at 1.6 s
    user = ToolUser(("timer_set", {"seconds": 1, "name": "eggs"}))
    source = segments((1.6, None), (0.4, 660.0), (0.2, None), (0.6, 440.0), (3.0, None))
    tts = {"backend": "tone", "realtime": True, "seconds_per_char": 0.1, "max_seconds": 5.0}
    timers = {"sound": False, "ring_for": 30, "ring_every": 1}
    engine, probe, result = await run({"audio_source": source, "tts": tts, "engine": {"barge_in": True, "timers": timers}}, user)

    assert said(probe) == ["The eggs timer is done."]  # once: stopped, not rung again after the turn
    ends = [arguments["interrupted"] for arguments in probe.of("speak_end") if arguments["turn"] is None]
    assert ends == [True]
    assert [t.turn for t in result.timelines] == [1]
    assert engine.timers.ringing() == []


async def test_the_wake_word_between_two_rings_stops_the_ringing_without_barge_in():
    # a real wait: the timer rings at 1 s, then is quiet until 2.5 s; the wake word comes at 1.6 s
    user = ToolUser(("timer_set", {"seconds": 1, "name": "rice"}))
    source = segments((1.6, None), (0.4, 660.0), (0.2, None), (0.6, 440.0), (2.5, None))
    timers = {"sound": False, "ring_for": 30, "ring_every": 1.5}
    engine, probe, result = await run({"audio_source": source, "engine": {"timers": timers}}, user)

    assert said(probe) == ["The rice timer is done."]  # the wake word silenced it; the turn went on
    assert [t.turn for t in result.timelines] == [1] and engine.timers.ringing() == []


async def test_a_run_without_timers_leaves_no_timers_file(tmp_path):
    await run({"audio_source": segments((0.3, None))}, path=tmp_path / "kitchen.toml")
    assert list(tmp_path.iterdir()) == []


async def test_a_timer_survives_a_restart_and_is_in_the_status_file(tmp_path):
    profile = tmp_path / "kitchen.toml"
    engine_settings = {"status_file": "status.json", "status_interval": 0.05}
    user = ToolUser(("timer_set", {"seconds": 600, "name": "bread"}))
    engine, probe, _ = await run({"audio_source": segments((0.5, None)), "engine": engine_settings}, user, path=profile)
    (first,) = [arguments["timer"] for arguments in probe.of("timer_started")]

    stored = json.loads((tmp_path / "kitchen.timers.json").read_text())
    assert [(t["id"], t["name"], t["total_seconds"]) for t in stored["timers"]] == [(first.id, "bread", 600.0)]

    # the second run starts on the same folder: the timer runs on, with its id and its end
    user = ToolUser(("timer_list", {}))
    engine, probe, _ = await run({"audio_source": segments((0.5, None)), "engine": engine_settings}, user, path=profile)
    assert re.match(r"One timer: the bread timer, (10 minutes|9 minutes \d+ seconds) left \(ends at ", user.results[0].content)
    status = json.loads((tmp_path / "status.json").read_text())
    (listed,) = status["timers"]
    assert listed["name"] == "bread" and abs(listed["ends_at"] - first.ends_at) < 1.0
    assert 0 < listed["remaining"] <= 600
    assert said(probe) == []


async def test_a_timer_that_ended_while_magoo_was_off_rings_at_start_or_is_dropped(tmp_path, caplog):
    profile = tmp_path / "kitchen.toml"
    now = time.time()
    TimerStore(tmp_path / "kitchen.timers.json").save([
        Timer("a1", "tea", 300.0, now - 125),
        Timer("b2", "laundry", 3600.0, now - 7200),  # past late_for (15 minutes)
    ])
    caplog.set_level(logging.INFO, logger="magoo.timers")
    _engine, probe, _ = await run(
        {"audio_source": segments((1.0, None)), "engine": {"timers": {"sound": False, "ring_for": 0}}}, path=profile
    )
    (words,) = said(probe)
    assert re.fullmatch(r"The tea timer ended 2 minutes [56] seconds ago, while I was off\.", words)
    assert timer_events(probe) == [("timer_finished", "tea")]
    assert "timer laundry ended 2 hours ago, while magoo was not running; past [engine.timers] late_for" in caplog.text
    assert json.loads((tmp_path / "kitchen.timers.json").read_text())["timers"] == []


class ToolCallingResponder(Backend):
    """Stands in for a language model: calls the tools its config names, then says the first result."""

    name: ClassVar[str] = "tool-calling"

    class Config(BackendConfig):
        calls: list[dict] = Field(default_factory=list, description="[{tool, arguments}] called in order on each turn.")

    async def respond(self, transcript, context=None):
        results = [await context.tools.call(c["tool"], json.dumps(c["arguments"])) for c in self.config.calls]
        return Reply(results[0].content)


class ToolCallingPlugin:
    @staticmethod
    @hookimpl
    def magoo_register_responders(register):
        register(ToolCallingResponder)


async def test_a_timer_set_by_voice_is_confirmed_in_the_reply_and_rings_after_the_turn(tmp_path):
    # a real wait: a realtime microphone with a wake word and a command, and a 1 s timer after it
    source = segments((0.3, None), (0.4, 660.0), (0.2, None), (0.6, 440.0), (3.0, None))
    stt = {"backend": "scripted", "transcripts": ["set a pasta timer for one second"]}
    responder = {"backend": "tool-calling", "calls": [{"tool": "timer_set", "arguments": {"seconds": 1, "name": "pasta"}}]}
    manager = build_plugins(ToolCallingPlugin)
    profile = make_profile(
        {"audio_source": source, "stt": stt, "responder": responder, "engine": {"timers": {"sound": False, "ring_for": 0}}},
        manager,
    )
    engine = Engine(profile, manager)
    probe = Probe(engine)
    manager.pm.register(probe, name="probe")
    result = await asyncio.wait_for(engine.run(), 30)

    (reply,) = [arguments["reply"].text for arguments in probe.of("reply") if arguments["reply"].final]
    assert reply.startswith("The pasta timer is set for 1 second; it ends at ")
    assert [t.turn for t in result.timelines] == [1]
    assert said(probe) == ["The pasta timer is done."]
    assert in_order(probe.names(), ["turn_end", "timer_finished", "speak_start"]), " ".join(probe.names())


# ---- the service and its tools, with a recording speech -----------------------------------------


class RecordingSpeech:
    """Says nothing; records what it was asked to say, and answers ``played``."""

    def __init__(self) -> None:
        self.said: list[str] = []
        self.stops = 0

    async def say(self, text=None, *, sound=None, **_):
        self.said.append(text if text is not None else f"<sound {Path(sound).stem}>")
        return SpeechResult("played")


async def service(tmp_path: Path | None = None, **settings) -> tuple[Timers, RecordingSpeech, list]:
    speech, events = RecordingSpeech(), []

    async def emit(event, **arguments):
        events.append((event, arguments["timer"].name))

    store = TimerStore(tmp_path / "timers.json" if tmp_path else None)
    timers = Timers(TimerSettings(**settings), store, speech, emit)
    await timers.open()
    return timers, speech, events


async def call(timers: Timers, tool: str, **arguments) -> str:
    from magoo_core.tools import Toolbox

    toolbox = Toolbox.collect(TimerTools(timers).magoo_register_tools)
    assert list(toolbox) == list(TIMER_TOOLS)
    result = await toolbox.call(tool, arguments)
    return result.content if result.ok else f"ERROR {result.content}"


async def test_cancel_and_list_tell_the_model_what_runs():
    timers, _speech, events = await service()
    assert await call(timers, "timer_list") == "No timer is running."
    await call(timers, "timer_set", seconds=300, name="pasta")
    await call(timers, "timer_set", seconds=90)
    listing = await call(timers, "timer_list")
    assert listing.startswith("2 timers: the 90 second timer, 1 minute 30 seconds left (ends at ")
    assert "; the pasta timer, 5 minutes left (ends at " in listing

    assert (await call(timers, "timer_cancel")).startswith("Several timers are running; ask the user which one")
    assert (await call(timers, "timer_cancel", name="Pasta timer")).startswith("The pasta timer is cancelled; it had 5 minutes left")
    assert (await call(timers, "timer_cancel", name="soup")).startswith("There is no timer named 'soup'. One timer: the 90 second")
    assert (await call(timers, "timer_cancel")).startswith("The 90 second timer is cancelled")
    assert await call(timers, "timer_cancel") == "No timer is running."
    assert events == [
        ("timer_started", "pasta"), ("timer_started", "90 second"),
        ("timer_cancelled", "pasta"), ("timer_cancelled", "90 second"),
    ]
    await timers.close()


async def test_setting_a_name_again_updates_that_timer_and_unnamed_ones_get_their_own():
    timers, _speech, events = await service()
    await call(timers, "timer_set", seconds=60, name="tea")
    (before,) = timers.list()
    assert (await call(timers, "timer_set", seconds=120, name="TEA")).startswith("The tea timer is set again for 2 minutes")
    (after,) = timers.list()
    assert after.id == before.id and after.total_seconds == 120
    await call(timers, "timer_set", seconds=300)
    await call(timers, "timer_set", seconds=300)
    assert [t.name for t in timers.list()] == ["tea", "5 minute", "5 minute 2"]
    assert events[:2] == [("timer_started", "tea"), ("timer_updated", "tea")]
    await timers.close()


@pytest.mark.parametrize(
    ("arguments", "error"),
    [
        ({"seconds": 0.5}, "greater than or equal to 1"),
        ({"seconds": 90000}, "less than or equal to 86400"),
        ({"seconds": "nan"}, "seconds"),
        ({"seconds": 60, "name": "x" * 41}, "at most 40 characters"),
        ({"minutes": 5}, "seconds: Field required"),
    ],
)
async def test_a_timer_the_model_cannot_set_comes_back_as_an_error(arguments, error):
    timers, _speech, _events = await service()
    assert error in await call(timers, "timer_set", **arguments)
    assert timers.list() == []


async def test_max_timers_bounds_how_many_run():
    timers, _speech, _events = await service(max_timers=2)
    await call(timers, "timer_set", seconds=60)
    await call(timers, "timer_set", seconds=70)
    content = await call(timers, "timer_set", seconds=80)
    assert content.startswith("ERROR") and "2 timers are running, the most there may be: cancel one first" in content
    await timers.close()


async def test_the_wake_word_silences_a_ringing_timer_and_cancel_stops_one_too():
    # a real wait: the smallest timer is 1 s; it then rings every second for a minute unless stopped
    timers, speech, events = await service(sound=False, ring_for=60, ring_every=1)
    tools = TimerTools(timers)
    await timers.set(1, "soup")
    await asyncio.sleep(1.3)
    assert speech.said == ["The soup timer is done."] and [t.name for t in timers.ringing()] == ["soup"]
    tools.magoo_on_wake()
    await asyncio.sleep(1.0)
    assert speech.said == ["The soup timer is done."] and timers.ringing() == []

    await timers.set(1, "rice")
    await asyncio.sleep(1.3)
    assert await call(timers, "timer_list") == "One timer: the rice timer, which has ended and is ringing."
    assert await call(timers, "timer_cancel") == "The rice timer had ended; it is silenced."
    await asyncio.sleep(1.0)
    assert speech.said.count("The rice timer is done.") == 1
    assert events[-1] == ("timer_finished", "rice")
    await timers.close()


async def test_speech_stop_between_two_rings_stops_the_ringing():
    # a real wait: rings at 1 s, then stop() in the quiet before the next ring
    timers, speech, _events = await service(sound=False, ring_for=60, ring_every=1)
    await timers.set(1, "pizza")
    await asyncio.sleep(1.3)
    speech.stops += 1  # what Speech.stop() does
    await asyncio.sleep(1.0)
    assert speech.said == ["The pizza timer is done."] and timers.ringing() == []
    await timers.close()


# ---- the store ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "content",
    [b"{not json", b'{"version": 2, "timers": []}', b'{"version": 1, "timers": [{"name": "x"}]}', b"\xff\xfe", b"[]",
     b'{"version": 1, "timers": [{"id": "a", "name": "x", "total_seconds": true, "ends_at": 1}]}'],
)
async def test_a_bad_timers_file_is_one_line_kept_aside_and_timers_start_empty(tmp_path, caplog, content):
    (tmp_path / "timers.json").write_bytes(content)
    timers, _speech, _events = await service(tmp_path)
    assert timers.list() == []
    (aside,) = tmp_path.glob("timers.json.bad-*")
    assert aside.read_bytes() == content
    (line,) = [r.getMessage() for r in caplog.records if r.name == "magoo.timers"]
    assert line.startswith(f"the timers file {tmp_path / 'timers.json'} is not a list of timers (")
    assert line.endswith(f"it is kept as {aside} and timers start empty")
    await timers.close()
    assert not (tmp_path / "timers.json").exists()  # nothing to keep: no file until a timer is set
    await timers.open()
    await timers.set(60, "tea")
    assert [t["name"] for t in json.loads((tmp_path / "timers.json").read_text())["timers"]] == ["tea"]
    await timers.close()


async def test_a_store_that_cannot_be_written_is_said_and_the_timer_still_runs(tmp_path, caplog):
    (tmp_path / "timers.json").mkdir()  # a folder where the file should be
    timers, _speech, _events = await service(tmp_path)
    await timers.set(60, "tea")
    assert [t.name for t in timers.list()] == ["tea"]
    assert "cannot write the timers file" in caplog.text
    await timers.close()


async def test_a_clock_gone_back_does_not_make_a_resumed_timer_longer(tmp_path):
    TimerStore(tmp_path / "timers.json").save([Timer("a1", "tea", 60.0, time.time() + 7200)])
    timers, _speech, _events = await service(tmp_path)
    (tea,) = timers.list()
    assert tea.seconds_left(time.time()) <= 60
    await timers.close()


def test_where_the_timers_are_kept():
    profile = Path("/home/pi/kitchen.toml")
    assert store_path(True, profile) == Path("/home/pi/kitchen.timers.json")
    assert store_path(True, None) is None
    assert store_path(False, profile) is None
    assert store_path(Path("state/t.json"), profile) == Path("/home/pi/state/t.json")


def test_the_status_document_lists_the_timers():
    timer = Timer("a1", "tea", 60.0, time.time() + 30)
    document = status_document(EngineStatus(State.LISTENING, 1.0, 0, 0, timers=(timer,)), name="x", running=True)
    (listed,) = document["timers"]
    assert listed["name"] == "tea" and listed["ends_at"] == round(timer.ends_at, 1) and 29 <= listed["remaining"] <= 30


def test_names_and_durations_read_well_aloud():
    assert [duration_name(s) for s in (1, 30, 90, 120, 300, 330, 5400)] == [
        "1 second", "30 second", "90 second", "2 minute", "5 minute", "5 minute 30 second", "1 hour 30 minute",
    ]
    assert [spoken_duration(s) for s in (0, 0.4, 1, 61, 3600, 3725, 90061)] == [
        "less than a second", "1 second", "1 second", "1 minute 1 second", "1 hour", "1 hour 2 minutes", "1 day 1 hour",
    ]
    assert clean_name("  the\tpasta   Timer ") == "the pasta"
    assert clean_name("timer") == ""


# ---- timers counted down elsewhere (Home Assistant's, for a satellite) ------------------------------


async def test_remote_timers_are_listed_and_hooked_like_local_ones_but_not_stored_or_cancelled_here(tmp_path):
    timers, speech, events = await service(tmp_path, ring_for=0)
    assert (await timers.remote.started("ha", "t1", 300, "Pasta timer")).name == "Pasta"
    await timers.remote.started("ha", "t2", 60, None)
    await timers.set(120, "rice")
    assert [t.name for t in timers.list()] == ["1 minute", "rice", "Pasta"]
    assert [t.name for t in timers.list("ha")] == ["1 minute", "Pasta"] and timers.list("other") == []

    paused = await timers.remote.updated("ha", "t1", 200, running=False)
    assert paused.total_seconds == 300 and 199 < paused.seconds_left(time.time()) <= 200
    assert [t.name for t in timers.list()][-1] == "Pasta", "a paused timer is listed last"
    await asyncio.sleep(0.05)
    assert 199 < timers.list("ha")[-1].seconds_left(time.time()) <= 200, "a paused timer does not count down"

    stored = json.loads((tmp_path / "timers.json").read_text())["timers"]
    assert [t["name"] for t in stored] == ["rice"], "the owner keeps its timers: they are not resumed here"
    assert "counted down by ha: it can only be cancelled there" in await call(timers, "timer_cancel", name="pasta")
    assert "the Pasta timer, 3 minutes 20 seconds left" in await call(timers, "timer_list")

    assert (await timers.remote.cancelled("ha", "t2")).name == "1 minute"
    assert await timers.remote.cancelled("ha", "t2") is None
    assert await timers.remote.updated("ha", "nope", 10, running=True) is None
    assert await timers.remote.finished("ha", "nope") is None
    assert await timers.remote.finished("other", "t1") is None, "ids are per source"
    assert speech.said == []

    assert (await timers.remote.finished("ha", "t1")).name == "Pasta"
    await asyncio.sleep(0.05)  # a few turns of the loop for the ringing task
    assert speech.said == ["<sound timer>", "The Pasta timer is done."]
    assert [t.name for t in timers.list()] == ["rice"]
    assert events == [
        ("timer_started", "Pasta"), ("timer_started", "1 minute"), ("timer_started", "rice"),
        ("timer_updated", "Pasta"), ("timer_cancelled", "1 minute"), ("timer_finished", "Pasta"),
    ]
    await timers.close()


async def test_remote_timers_are_bounded_and_a_started_id_again_is_an_update():
    timers, _speech, events = await service()
    for number in range(100):
        await timers.remote.started("ha", f"t{number}", 60 + number, None)
    listed = timers.list("ha")
    assert len(listed) == 64 and {t.id for t in listed} == {f"t{n}" for n in range(36, 100)}, "the oldest went first"
    await timers.remote.started("ha", "t99", float("nan"), "eggs")
    assert events[-1] == ("timer_updated", "eggs") and len(timers.list("ha")) == 64
    await timers.close()


class RemoteOwner:
    """A plugin that reports two timers counted down elsewhere at startup, then one finishing."""

    def __init__(self) -> None:
        self.timers: Timers | None = None

    @hookimpl
    def magoo_on_startup(self, timers):
        self.timers = timers

        async def report():
            await timers.remote.started("ha", "a", 600, "bread")
            await timers.remote.started("ha", "b", 60, "tea")
            await asyncio.sleep(0.3)  # the status file is written in between
            await timers.remote.finished("ha", "b")

        asyncio.get_running_loop().create_task(report())


async def test_a_remote_timer_is_in_the_status_file_and_rings_through_the_engine(tmp_path):
    owner = RemoteOwner()
    engine_settings = {"status_file": "status.json", "status_interval": 0.05, "heartbeat_interval": 0.05, "timers": {"ring_for": 0}}
    manager = build_plugins(owner)
    profile = make_profile({"audio_source": segments((1.5, None)), "engine": engine_settings}, manager, base_dir=tmp_path)
    profile = dataclasses.replace(profile, path=tmp_path / "kitchen.toml")
    engine = Engine(profile, manager)
    probe = Probe(engine)
    manager.pm.register(probe, name="probe")
    heartbeats: list = []
    manager.pm.register(type("Beat", (), {"magoo_on_heartbeat": hookimpl(lambda self, status: heartbeats.append(status))})(), name="beat")
    await asyncio.wait_for(engine.run(), 30)

    assert timer_events(probe) == [("timer_started", "bread"), ("timer_started", "tea"), ("timer_finished", "tea")]
    assert said(probe) == ["<sound timer>", "The tea timer is done."]
    status = json.loads((tmp_path / "status.json").read_text())
    assert [t["name"] for t in status["timers"]] == ["bread"] and 590 < status["timers"][0]["remaining"] <= 600
    assert any([t.name for t in beat.timers] == ["tea", "bread"] for beat in heartbeats), "the heartbeat lists them"
    assert not (tmp_path / "kitchen.timers.json").exists(), "remote timers are not stored"
    assert not engine.muted
