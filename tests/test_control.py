"""The run's control handle: what a watcher sees (snapshot, levels, events as JSON) and its commands."""

from __future__ import annotations

import asyncio
import json

import pytest

from magoo_core import State, hookimpl
from magoo_core.control import Control, ControlError
from magoo_core.live import LiveEvents, Subscription, event_document, jsonable
from magoo_core.types import AudioChunk, Reply, Transcript, WakeEvent

from probe import LOOPING_SOURCE, run_engine, segments


class Watcher:
    """A plugin that takes the control at startup and records every event it is sent as JSON."""

    def __init__(self, act=None, *, stop_after=False) -> None:
        self.control: Control | None = None
        self.documents: list[dict] = []
        self._act = act
        self._stop_after = stop_after  # stop the run once ``act`` is done
        self._task: asyncio.Task | None = None
        self.engine = None

    def register(self, engine) -> None:
        """``run_engine(on_engine=watcher.register)``."""
        self.engine = engine
        engine.plugins.pm.register(self)

    @hookimpl
    def magoo_on_startup(self, control):
        self.control = control
        subscription = control.subscribe()
        self._task = asyncio.get_running_loop().create_task(self._read(subscription))
        if self._act is not None:
            asyncio.get_running_loop().create_task(self._acting(control))

    async def _acting(self, control) -> None:
        try:
            await self._act(control)
        finally:
            if self._stop_after:
                self.engine.request_stop()

    async def _read(self, subscription: Subscription) -> None:
        async for document in subscription:
            self.documents.append(document)

    def events(self, name: str) -> list[dict]:
        return [d for d in self.documents if d.get("event") == name]


async def test_a_watcher_gets_every_event_as_json_and_the_turns_with_what_was_heard_and_answered():
    watcher = Watcher()
    engine, probe, result = await run_engine({}, turns=1, on_engine=watcher.register)
    assert result.fatal is None
    json.dumps(watcher.documents)  # every document is plain JSON
    names = [d["event"] for d in watcher.documents]
    assert names[:1] == ["wake"] and "turn_end" in names and "shutdown" in names
    (wake,) = watcher.events("wake")
    assert wake["wake"]["label"] and wake["wake"]["score"] > 0 and wake["turn"] == 1
    assert [d["reply"]["text"] for d in watcher.events("reply")] == ["You said: what time is it"]
    (turn,) = engine.control.snapshot()["last_turns"]
    assert turn["heard"] == "what time is it" and turn["answered"] == "You said: what time is it"
    assert turn["wake"]["label"] == wake["wake"]["label"]
    assert turn["timeline"]["outcome"] == "ok" and turn["timeline"]["ended"] is not None


async def test_the_snapshot_and_levels_show_state_input_and_each_wake_models_score_against_its_threshold():
    seen: list[dict] = []

    async def look(control):
        await asyncio.sleep(0.3)  # real time: the realtime source must have delivered a loud stretch
        seen.append(control.levels())
        seen.append(control.snapshot())

    watcher = Watcher(look, stop_after=True)
    source = segments((0.1, None), (1.5, 660))
    engine, probe, result = await run_engine(
        {"audio_source": source, "wake": {"backend": "scripted", "level": 1.0}},
        on_engine=watcher.register, timeout=20,
    )
    levels, snapshot = seen
    assert levels["type"] == "levels" and levels["state"] == "listening" and levels["muted"] is False
    assert 0.2 < levels["input"] <= levels["peak"] < 0.99 and levels["clipping"] is False
    ((label, score),) = levels["wake"].items()
    assert 0 < score["score"] < score["threshold"]
    assert snapshot["type"] == "snapshot" and snapshot["name"] == engine.profile.name and snapshot["running"]
    assert snapshot["levels"]["type"] == "levels" and snapshot["last_turns"] == []
    json.dumps(snapshot)


async def test_while_muted_by_the_user_nothing_wakes_and_unmuting_listens_again():
    async def mute_then_unmute(control):
        control.mute()
        await asyncio.sleep(1.2)  # real time: the first wake beep plays into the muted microphone
        control.mute(False)

    watcher = Watcher(mute_then_unmute)
    source = segments((0.2, None), (0.4, 660), (0.3, None), (1.0, 440), (1.2, None), (0.4, 660), (0.3, None), (1.0, 440), (1.2, None))
    engine, probe, result = await run_engine(
        {"audio_source": source, "stt": {"backend": "scripted", "transcripts": ["one", "two"]}},
        turns=1, on_engine=watcher.register, timeout=30,
    )
    assert [e["muted"] for e in watcher.events("muted")] == [True, False]
    assert engine.counters["muted_frames"] > 0
    (wake,) = probe.of("wake")
    assert wake["wake"].timestamp > 1.5, "the wake beep played while muted woke nothing"
    assert [a["transcript"].text for a in probe.of("transcript") if a["transcript"].final] == ["one"]


async def test_listen_starts_a_turn_without_the_wake_word_and_refuses_while_one_is_in_progress():
    refused: list[str] = []

    async def press(control):
        await asyncio.sleep(0.2)
        control.listen()
        with pytest.raises(ControlError) as refusal:
            control.listen()
        refused.append(str(refusal.value))

    watcher = Watcher(press)
    source = segments((0.4, None), (1.0, 440), (1.5, None))
    engine, probe, result = await run_engine(
        {"audio_source": source, "wake": {"backend": "scripted", "level": 1.0}},
        turns=1, on_engine=watcher.register, timeout=30,
    )
    (wake,) = probe.of("wake")
    assert wake["wake"].label == "control"
    assert [a["reply"].text for a in probe.of("reply")] == ["You said: what time is it"]
    assert "in progress" in refused[0]


async def test_say_speaks_stop_cuts_it_and_volume_needs_a_player_that_can(tmp_path):
    outcome: dict = {}

    async def act(control):
        with pytest.raises(ControlError, match="empty"):
            await control.say("  ")
        with pytest.raises(ControlError, match="cannot set its volume"):
            await control.set_volume(40)
        with pytest.raises(ControlError, match="out of range"):
            await control.set_volume(140)
        saying = asyncio.ensure_future(control.say("a long announcement " * 20))
        await asyncio.sleep(0.3)
        await control.stop()
        outcome["said"] = await saying

    watcher = Watcher(act, stop_after=True)
    engine, probe, result = await run_engine(
        {"audio_source": LOOPING_SOURCE, "wake": {"backend": "scripted", "level": 1.0},
         "tts": {"backend": "tone", "seconds_per_char": 1.0, "max_seconds": 10.0},
         "player": {"backend": "wav", "realtime": True, "path": str(tmp_path / "said.wav")}},
        on_engine=watcher.register, timeout=30,
    )
    assert outcome["said"].status == "interrupted"
    assert probe.of("speak_start")[0]["turn"] is None and probe.of("speak_end")[0]["interrupted"] is True


async def test_set_volume_reaches_a_player_that_has_set_volume():
    class Player:
        name = "loud"

        def __init__(self):
            self.volumes: list[int] = []

        async def set_volume(self, percent):
            self.volumes.append(percent)

    player = Player()
    live = LiveEvents()
    watching = live.subscribe()
    control = Control("p", lambda: None, None, None, None, live, listen=lambda: False, player=lambda: player, speaking=lambda: False)
    await control.set_volume(35)
    assert player.volumes == [35]
    live.close()
    assert [d["event"] async for d in watching] == ["volume"]


# ---- the JSON of events ----------------------------------------------------------------------------


def test_event_documents_keep_what_a_watcher_can_show_and_never_audio():
    async def audio():
        yield AudioChunk(b"\0\0", 16000)

    reply = Reply("hello", audio=audio())
    document = event_document("reply", {"reply": reply, "turn": 3, "pcm": b"\1\2", "chunk": AudioChunk(b"\0\0", 16000)})
    assert document["reply"]["text"] == "hello" and "audio" not in document["reply"]
    assert document["turn"] == 3 and "pcm" not in document
    assert "pcm" not in document.get("chunk", {}) and json.dumps(document)
    wake = jsonable(WakeEvent("hey_jarvis", 0.91234, 0.5, 12.0, scores={"hey_jarvis": 0.91234}))
    assert wake["score"] == 0.9123 and wake["scores"] == {"hey_jarvis": 0.9123} and wake["label"] == "hey_jarvis"
    assert jsonable(State.SPEAKING) == "speaking"
    assert jsonable(Transcript("hi", final=True))["final"] is True


async def test_a_watcher_that_reads_too_slowly_loses_the_oldest_events_not_the_engines_time():
    live = LiveEvents()
    subscription = live.subscribe(size=3)
    for number in range(10):
        live.publish("heartbeat", {"n": number})
    live.close()
    assert [d["n"] async for d in subscription] == [7, 8, 9]
    assert subscription.dropped == 7


async def test_a_backend_instance_registered_during_the_run_gets_the_runs_startup_handles():
    from magoo_core.testing import build_plugins

    class Actuator:
        def __init__(self):
            self.controls = []

        @hookimpl
        def magoo_on_startup(self, control):
            self.controls.append(control)

    plugins = build_plugins()
    first, restarted, late = Actuator(), Actuator(), Actuator()
    plugins.register_instance(first, name="[[actuators]] #1 first")
    await plugins.emit("startup", control="the run's control", speech=None)
    assert first.controls == ["the run's control"]
    plugins.unregister_instance(first)
    plugins.register_instance(restarted, name="[[actuators]] #1 first")  # a restart, a hot reload
    assert restarted.controls == ["the run's control"]
    await plugins.emit("shutdown")
    plugins.register_instance(late, name="late")
    assert late.controls == []
def test_levels_read_the_state_alone_not_the_whole_status():
    class Level:
        def recent(self, seconds):
            return 0.1, 0.2

    def status():
        raise AssertionError("levels() built the whole status (ten times a second)")

    control = Control("p", status, None, Level(), None, LiveEvents(), listen=lambda: False, player=lambda: None,
                      speaking=lambda: False, state=lambda: State.AWAKE)
    assert control.levels()["state"] == "awake"
