"""Speech outside a turn (issue 18, section 2): plugins say something now through the speaker's one
queue, muted like a reply, with the speak events, stoppable, and with the TTS's backup."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from typing import ClassVar

import pytest
from pydantic import Field

from magoo_core import AudioChunk, Backend, BackendConfig, BackendError, Outcome, hookimpl
from magoo_core.audio import tone
from magoo_core.speech import SpeakingGate, Speech, SpeechResult, Utterance

from probe import run_engine, segments

QUIET = segments((2.0, None))  # a realtime microphone that hears nothing for 2 s, then ends
NO_TURNS = {"audio_source": QUIET}
REPLY = "You said: what time is it"  # the echo responder's reply to the scripted command


class Announcer:
    """A plugin that keeps the ``speech`` handed to it at startup and says things when told."""

    def __init__(self, *, at: str = "startup", when=None, **say) -> None:
        self.at = at  # the event after which it speaks
        self.when = when or (lambda arguments: True)
        self.say = say or {"text": "the tea is ready"}
        self.speech: Speech | None = None
        self.results: list[SpeechResult] = []
        self.tasks: list[asyncio.Task] = []

    @hookimpl
    def magoo_on_startup(self, speech):
        self.speech = speech
        if self.at == "startup":
            self._soon()

    def _soon(self) -> None:
        async def speak():
            self.results.append(await self.speech.say(**self.say))

        self.tasks.append(asyncio.get_running_loop().create_task(speak()))

    @hookimpl
    def magoo_on_wake(self, turn):
        if self.at == "wake":
            self._soon()

    @hookimpl
    def magoo_on_speak_start(self, text, turn):
        if self.at == "speak_start" and self.when({"text": text, "turn": turn}):
            self._soon()


def speaks(probe) -> list[tuple[str, object]]:
    """The speak events in order, as (event, turn), with the text of each start."""
    out = []
    for name, arguments in probe.events:
        if name == "speak_start":
            out.append(("start", arguments["turn"], arguments["text"]))
        elif name == "speak_end":
            out.append(("end", arguments["turn"], arguments["interrupted"]))
    return out


async def test_a_plugin_says_something_outside_a_turn_muted_and_with_the_speak_events():
    announcer = Announcer()
    engine, probe, result = await run_engine(NO_TURNS, announcer)

    assert announcer.results == [SpeechResult("played")]
    assert speaks(probe) == [("start", None, "the tea is ready"), ("end", None, False)]
    assert probe.muted_during("speak_start") == [True]
    assert probe.muted_during("speak_chunk") and all(probe.muted_during("speak_chunk"))
    assert not engine.muted
    assert probe.of("turn_end") == []  # an announcement is no turn
    played = engine.player.last_instance.plays
    assert len(played) == 1 and sum(chunk.duration for chunk in played[0]) > 0.3  # the tone TTS said it


async def test_an_announcement_waits_behind_the_turn_in_progress():
    announcer = Announcer(at="wake", text="the news")
    source = segments((0.3, None), (0.4, 660.0), (0.2, None), (0.6, 440.0), (2.5, None))
    engine, probe, result = await run_engine({"audio_source": source}, announcer)

    assert announcer.results == [SpeechResult("played")]
    assert speaks(probe) == [
        ("start", 1, REPLY), ("end", 1, False), ("start", None, "the news"), ("end", None, False),
    ]
    names = probe.names()
    assert names.index("turn_end") < [i for i, n in enumerate(names) if n == "speak_start"][1]
    assert result.timelines[0].outcome is Outcome.OK


async def test_an_announcement_of_priority_interrupt_stops_the_reply_and_speaks_first():
    announcer = Announcer(at="speak_start", when=lambda a: a["turn"] == 1, text="fire alarm", priority="interrupt")
    source = segments((0.3, None), (0.4, 660.0), (0.2, None), (0.6, 440.0), (3.0, None))
    tts = {"backend": "tone", "realtime": True, "seconds_per_char": 0.2}  # a reply of 3 s
    engine, probe, result = await run_engine({"audio_source": source, "tts": tts}, announcer)

    assert announcer.results == [SpeechResult("played")]
    assert speaks(probe) == [
        ("start", 1, REPLY), ("end", 1, True), ("start", None, "fire alarm"), ("end", None, False),
    ]
    assert result.timelines[0].outcome is Outcome.INTERRUPTED
    assert result.timelines[0].error == "stopped"


class BrokenPlayer(Backend):
    """A player whose output fails as soon as it plays."""

    name: ClassVar[str] = "broken"

    class Config(BackendConfig):
        pass

    async def play(self, audio, progress):
        async for _ in audio:
            progress.started()
            raise BackendError("the speaker went away")

    async def stop(self):
        pass


class BrokenPlayerPlugin:
    @staticmethod
    @hookimpl
    def magoo_register_players(register):
        register(BrokenPlayer)


async def test_a_failed_announcement_says_why_and_leaves_the_microphone_open():
    announcer = Announcer()
    engine, probe, result = await run_engine({**NO_TURNS, "player": {"backend": "broken"}}, announcer, BrokenPlayerPlugin)

    [failed] = announcer.results
    assert failed.status == "failed" and "the speaker went away" in failed.reason
    assert [f.turn for f in result.failures] == [None]
    assert speaks(probe)[-1] == ("end", None, True)
    assert not engine.muted


class DoomedSpeech(Backend):
    """A TTS whose account is closed: every synthesis fails for good."""

    name: ClassVar[str] = "doomed"

    class Config(BackendConfig):
        pass

    async def synthesize(self, text):
        raise BackendError("the key was refused", retryable=False)
        yield  # an async generator


class DoomedPlugin:
    @staticmethod
    @hookimpl
    def magoo_register_tts(register):
        register(DoomedSpeech)


async def test_an_announcement_while_the_tts_fails_for_good_is_said_by_its_backup():
    announcer = Announcer()
    tts = {"backend": "doomed", "backup": {"backend": "tone", "frequency": 330.0}}
    engine, probe, result = await run_engine({**NO_TURNS, "tts": tts}, announcer, DoomedPlugin)

    assert announcer.results == [SpeechResult("played")]
    assert ["the key was refused" in f.message for f in result.failures] == [True]
    assert engine.tts.spec.backend == "tone"
    assert speaks(probe) == [("start", None, "the tea is ready"), ("end", None, False)]


async def test_stop_ends_what_is_said_and_drops_what_waits():
    stopped: list[SpeechResult] = []

    class Stopper(Announcer):
        @hookimpl
        def magoo_on_speak_start(self, text, turn):
            async def stop_it():
                waiting = asyncio.ensure_future(self.speech.say("second"))
                await asyncio.sleep(0.05)
                await self.speech.stop()
                stopped.append(await waiting)

            self.tasks.append(asyncio.get_running_loop().create_task(stop_it()))

    announcer = Stopper(text="a long story " * 5)
    tts = {"backend": "tone", "realtime": True, "seconds_per_char": 0.05}
    engine, probe, result = await run_engine({**NO_TURNS, "tts": tts}, announcer)

    assert announcer.results == [SpeechResult("interrupted", "stopped")]
    assert stopped == [SpeechResult("dropped", "the queue was cleared")]
    assert speaks(probe) == [("start", None, "a long story " * 5), ("end", None, True)]
    assert not engine.muted


async def test_say_soon_works_from_a_plugins_own_thread():
    results: list[SpeechResult] = []

    class Threaded:
        @hookimpl
        def magoo_on_startup(self, speech):
            threading.Thread(target=lambda: results.append(speech.say_soon("from a thread").result(10))).start()

    engine, probe, result = await run_engine(NO_TURNS, Threaded())
    assert results == [SpeechResult("played")]
    assert speaks(probe)[0] == ("start", None, "from a thread")
    # once the run is over, it says so instead of waiting for ever
    assert engine.speech.say_soon("too late").result(1) == SpeechResult("dropped", "the engine is not running")


async def test_audio_is_played_as_is():
    chunks = [tone(500.0, 0.1, 16000) for _ in range(3)]

    async def audio():
        for chunk in chunks:
            yield chunk

    announcer = Announcer(audio=audio())
    engine, probe, result = await run_engine(NO_TURNS, announcer)
    assert announcer.results == [SpeechResult("played")]
    assert engine.player.last_instance.plays == [chunks]
    assert speaks(probe)[0] == ("start", None, "<audio>")


async def test_barge_in_stops_an_announcement_and_starts_a_turn():
    announcer = Announcer(text="a long announcement " * 5)
    source = segments((0.6, None), (0.4, 660.0), (0.2, None), (0.6, 440.0), (2.5, None))
    tts = {"backend": "tone", "realtime": True, "seconds_per_char": 0.05, "max_seconds": 5.0}
    engine, probe, result = await run_engine(
        {"audio_source": source, "tts": tts, "engine": {"barge_in": True}}, announcer
    )

    assert announcer.results == [SpeechResult("interrupted", "barge-in")]
    assert speaks(probe)[:2] == [("start", None, "a long announcement " * 5), ("end", None, True)]
    assert probe.of("wake") and probe.of("wake")[0]["turn"] == 1
    assert [t.turn for t in result.timelines] == [1]


def test_say_takes_exactly_one_thing():
    with pytest.raises(ValueError, match="say one thing"):
        Utterance(text="a", sound=None, audio=object())
    with pytest.raises(ValueError, match="say one thing"):
        Utterance()
    with pytest.raises(ValueError, match="priority"):
        Utterance(text="a", priority="now")


async def gate_order(gate: SpeakingGate, *utterances: Utterance, clear: bool = False) -> list[str]:
    """Who gets the gate, in order, when ``utterances`` queue behind one that speaks."""
    order: list[str] = []
    await gate.enter(Utterance(text="playing"))

    async def wait(utterance):
        try:
            await gate.enter(utterance)
        except Exception as exc:
            order.append(f"{utterance.text}: {type(exc).__name__}")
            return
        order.append(utterance.text)
        gate.leave()

    tasks = [asyncio.ensure_future(wait(u)) for u in utterances]
    await asyncio.sleep(0)
    if clear:
        order.append(f"cleared {gate.clear()}")
    gate.leave()
    await asyncio.gather(*tasks)
    assert not gate.busy
    return order


async def test_the_gate_lets_one_speak_at_a_time_in_order_and_interrupts_first():
    queued = [Utterance(text="reply", kind="reply"), Utterance(text="news"), Utterance(text="alarm", priority="interrupt")]
    assert await gate_order(SpeakingGate(), *queued) == ["alarm", "reply", "news"]


async def test_clearing_the_gate_drops_what_waits_but_replies():
    queued = [Utterance(text="reply", kind="reply"), Utterance(text="news"), Utterance(sound=Path("x.wav"), kind="sound")]
    order = await gate_order(SpeakingGate(), *queued, clear=True)
    assert order[:2] == ["cleared 2", "news: Dropped"] and order[2:] == ["None: Dropped", "reply"]


async def test_the_story_tells_an_announcements_sound_apart_from_a_turns():
    import io

    from magoo_core.engine import Engine
    from magoo_core.reporter import ConsoleReporter
    from magoo_core.testing import build_plugins, make_profile

    announcer = Announcer()
    manager = build_plugins(announcer)
    engine = Engine(make_profile(NO_TURNS, manager), manager)
    story = io.StringIO()
    manager.pm.register(ConsoleReporter(story, engine), name="story")
    await asyncio.wait_for(engine.run(), 60)

    lines = [line.split("] ", 1)[1] for line in story.getvalue().splitlines() if "sound" in line]
    assert lines[0] == 'outside a turn ("the tea is ready"): sound started (microphone muted)'
    assert lines[1].startswith("outside a turn: sound ended after ")


async def test_an_announcement_in_continuous_mode_is_said_and_the_stream_hears_silence_meanwhile():
    announcer = Announcer()
    tts = {"backend": "tone", "realtime": True}  # it lasts 0.5 s: the microphone delivers meanwhile
    engine, probe, result = await run_engine({**NO_TURNS, "wake": None, "tts": tts}, announcer)
    assert announcer.results == [SpeechResult("played")]
    assert speaks(probe) == [("start", None, "the tea is ready"), ("end", None, False)]
    assert engine.counters["muted_frames"] > 0 and not engine.muted


async def test_an_announcement_cancelled_while_it_plays_leaves_the_microphone_open_and_the_queue_free():
    class Canceller(Announcer):
        @hookimpl
        def magoo_on_speak_start(self, text, turn):
            if len(self.tasks) == 1:
                loop = asyncio.get_running_loop()
                loop.call_later(0.1, self.tasks[0].cancel)
                self.say = {"text": "next"}
                loop.call_later(0.2, self._soon)

    announcer = Canceller(text="a long story " * 5)
    tts = {"backend": "tone", "realtime": True, "seconds_per_char": 0.05}
    engine, probe, result = await run_engine({**NO_TURNS, "tts": tts, "engine": {"mute_post": 0.3}}, announcer)

    assert announcer.tasks[0].cancelled()
    assert announcer.results == [SpeechResult("played")]  # the next one
    assert speaks(probe) == [("start", None, "a long story " * 5), ("end", None, True), ("start", None, "next"), ("end", None, False)]
    assert probe.muted_during("speak_end") == [True, True] and not engine.muted
