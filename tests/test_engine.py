"""The engine's behaviour, end to end on fake devices: turns, muting, failures, threads."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from pathlib import Path
from typing import ClassVar

import pytest
from pydantic import Field

from magoo_core import (
    AudioChunk, AudioFormat, Backend, BackendConfig, BackendError, Outcome, Reply, State, WakeEvent, hookimpl,
)
from magoo_core.capture_queue import CaptureQueue
from magoo_core.default_plugins.fakes import ScriptedSpeechToText
from magoo_core.engine import Engine
from magoo_core.errors import ProfileError
from magoo_core.event_recorder import EventRecorder
from magoo_core.testing import TEST_PROFILE, build_plugins, make_profile, run_turn

from probe import LOOPING_SOURCE, Probe, SoundlessPlayer, in_order, run_engine, segments


# ---- test backends ------------------------------------------------------------------------------


class FailingPlayer(Backend):
    """Starts playing, then dies, on the chosen plays."""

    name: ClassVar[str] = "failing"

    class Config(BackendConfig):
        fail: list[int] = Field(default_factory=lambda: [1], description="plays that fail")

    def __init__(self, config):
        super().__init__(config)
        self.plays = 0

    async def play(self, audio, progress):
        self.plays += 1
        async for chunk in audio:
            progress.started()
            if self.plays in self.config.fail:
                raise BackendError("the speaker went away")

    async def stop(self):
        pass


class UnpluggedActuator(Backend):
    """An actuator whose hardware is missing: it cannot start."""

    name: ClassVar[str] = "unplugged"

    class Config(BackendConfig):
        pass

    async def __aenter__(self):
        raise BackendError("cannot reach the pigpio daemon at localhost:8888: start it with sudo systemctl start pigpiod")


class FlakyResponder(Backend):
    """Fails until ``failures_left`` (shared across restarts, like a flaky service) runs out."""

    name: ClassVar[str] = "flaky"
    failures_left: ClassVar[int] = 0
    instances: ClassVar[int] = 0

    class Config(BackendConfig):
        pass

    def __init__(self, config):
        super().__init__(config)
        type(self).instances += 1

    async def respond(self, transcript):
        from magoo_core import Reply

        if type(self).failures_left > 0:
            type(self).failures_left -= 1
            raise BackendError("service unavailable")
        return Reply("fine now")


class RecordingSpeechToText(ScriptedSpeechToText):
    """The scripted STT, keeping every chunk it was given."""

    name: ClassVar[str] = "recording"

    def __init__(self, config):
        super().__init__(config)
        self.received: list[AudioChunk] = []

    async def transcribe(self, audio):
        async def tap():
            async for chunk in audio:
                self.received.append(chunk)
                yield chunk

        async for item in super().transcribe(tap()):
            yield item


class RevokedSpeechToText(ScriptedSpeechToText):
    """A cloud service whose key was revoked: every stream is refused, and retrying cannot help."""

    name: ClassVar[str] = "revoked"
    streams = 0

    async def transcribe(self, audio):
        type(self).streams += 1
        raise BackendError("the API key was refused (401): set a valid MAGOO_TEST_KEY in .env", retryable=False)
        yield  # pragma: no cover - never reached


class HangingSpeechToText(ScriptedSpeechToText):
    """Never answers, whatever it is given: a service that went silent."""

    name: ClassVar[str] = "hanging"

    async def transcribe(self, audio):
        await asyncio.Event().wait()
        yield  # pragma: no cover - never reached


class ThreadedSource(Backend):
    """A device whose driver calls back from its own thread, like PortAudio: the test is the driver."""

    name: ClassVar[str] = "threaded"
    live = True

    class Config(BackendConfig):
        queue_size: int = Field(16, description="capture queue capacity in chunks")

    def __init__(self, config):
        super().__init__(config)
        self.queue = CaptureQueue(config.queue_size)

    def callback(self, pcm: bytes) -> None:
        """What a driver callback does: hand the buffer over and return."""
        self.queue.put(AudioChunk(pcm, 16000))

    async def stream(self):
        async for chunk in self.queue:
            yield chunk

    def stats(self):
        return {"overflows": self.queue.dropped, "delivered": self.queue.delivered}


class DroppingSource(Backend):
    """A device that delivers a little audio, then its stream just ends (a USB mic unplugged)."""

    name: ClassVar[str] = "dropping"
    opened: ClassVar[int] = 0

    class Config(BackendConfig):
        pass

    async def stream(self):
        type(self).opened += 1
        for _ in range(3):
            await asyncio.sleep(0.01)
            yield AudioChunk(bytes(2 * 1280), 16000)


class StallingWakeDetector(Backend):
    """Blocks in process() until released: a consumer that has stalled."""

    name: ClassVar[str] = "stalling"
    input_format = AudioFormat(16000)
    frame_samples = None

    class Config(BackendConfig):
        pass

    def __init__(self, config):
        super().__init__(config)
        self.entered = threading.Event()
        self.release = threading.Event()
        self.threads: set[str] = set()

    def process(self, chunk):
        self.threads.add(threading.current_thread().name)
        self.entered.set()
        self.release.wait(30)
        return None

    def reset(self):
        pass


class SlowResetDetector(Backend):
    """Fires on the first frame; reset() takes a while, like a native library reloading its state.
    Records whether it was left while a reset() was still running (a crash with a real library)."""

    name: ClassVar[str] = "slow-reset"
    input_format = AudioFormat(16000)
    frame_samples = 1280

    class Config(BackendConfig):
        pass

    def __init__(self, config):
        super().__init__(config)
        self.busy = threading.Event()
        self.resets = 0
        self.left_while_busy: bool | None = None

    def process(self, chunk):
        if self.resets == 0 and not self.busy.is_set():
            return WakeEvent("slow", 0.9, 0.5, chunk.timestamp)
        return None

    def reset(self):
        self.busy.set()
        time.sleep(0.3)
        self.resets += 1
        self.busy.clear()

    async def __aexit__(self, *exc_info):
        self.left_while_busy = self.busy.is_set()


class LateDetector(Backend):
    """Confirms a wake word only ``lag`` seconds of audio after its loud first frame, and reports
    that frame's timestamp (a detector that waits for several frames, or one scored late)."""

    name: ClassVar[str] = "late"
    input_format = AudioFormat(16000)
    frame_samples = 1280

    class Config(BackendConfig):
        lag: float = Field(1.0, description="seconds of audio between the wake word's frame and its detection")

    def __init__(self, config):
        super().__init__(config)
        self.loud_at: float | None = None
        self.heard = 0.0

    def process(self, chunk):
        from magoo_core.audio import rms_level

        if self.loud_at is None and rms_level(chunk) >= 0.2:
            self.loud_at, self.heard = chunk.timestamp, 0.0
        elif self.loud_at is not None:
            self.heard += chunk.duration
            if self.heard >= self.config.lag:
                return WakeEvent("late", 0.9, 0.5, self.loud_at)
        return None

    def reset(self):
        self.loud_at = None


class TestBackends:
    @staticmethod
    @hookimpl
    def magoo_register_players(register):
        register(FailingPlayer)
        register(SoundlessPlayer)
        register(UnreadyPlayer)

    @staticmethod
    @hookimpl
    def magoo_register_actuators(register):
        register(UnpluggedActuator)

    @staticmethod
    @hookimpl
    def magoo_register_responders(register):
        register(FlakyResponder)

    @staticmethod
    @hookimpl
    def magoo_register_stt(register):
        register(RecordingSpeechToText)
        register(HangingSpeechToText)
        register(RevokedSpeechToText)

    @staticmethod
    @hookimpl
    def magoo_register_audio_sources(register):
        register(ThreadedSource)
        register(DroppingSource)

    @staticmethod
    @hookimpl
    def magoo_register_wake_detectors(register):
        register(StallingWakeDetector)
        register(SlowResetDetector)
        register(LateDetector)


# ---- a whole turn ---------------------------------------------------------------------------------


async def test_a_full_turn_runs_every_step_in_order():
    engine, probe, result = await run_engine({}, turns=1)
    assert result.fatal is None
    assert in_order(probe.names(), [
        "startup", "wake", "state_change", "speech_start", "transcript", "speech_end", "transcript",
        "state_change", "reply", "state_change", "speak_start", "speak_end", "state_change", "turn_end", "shutdown",
    ])
    states = [(a["old"], a["new"]) for a in probe.of("state_change")]
    assert states == [
        (State.LISTENING, State.AWAKE), (State.AWAKE, State.THINKING),
        (State.THINKING, State.SPEAKING), (State.SPEAKING, State.LISTENING),
    ]
    assert [a["transcript"].text for a in probe.of("transcript") if a["transcript"].final] == ["what time is it"]
    assert [a["reply"].text for a in probe.of("reply")] == ["You said: what time is it"]
    levels = [a["level"] for a in probe.of("speak_chunk")]
    assert levels and max(levels) > 0.1 and len(set(levels)) > 2, "the speech envelope reaches actuators"
    played = engine.player.last_instance.plays[0]
    assert sum(c.duration for c in played) == pytest.approx(len("You said: what time is it") * 0.03, abs=0.06)

    (timeline,) = result.timelines
    assert timeline.outcome is Outcome.OK and timeline.error is None
    steps = [timeline.wake, timeline.speech_end, timeline.transcript, timeline.reply, timeline.first_audio, timeline.ended]
    assert None not in steps and steps == sorted(steps)
    assert probe.of("turn_end")[0]["timeline"] == timeline


async def test_event_hooks_run_on_the_loop_and_the_wake_worker_is_gone_after_shutdown():
    recorded: set[str] = set()

    class ThreadSpy:
        @hookimpl
        def magoo_on_wake(self):
            recorded.add(threading.current_thread().name)

    engine, probe, result = await run_engine({}, ThreadSpy(), turns=1)
    detector_threads = {name for name in threading.enumerate() if name.name.startswith("magoo-wake")}
    assert recorded == {threading.current_thread().name}, "event hooks run on the loop thread"
    assert not detector_threads, "the worker is gone after shutdown"


async def test_the_stt_gets_the_pre_roll_from_before_the_wake_word():
    engine, probe, result = await run_engine(
        {"stt": {"backend": "recording"}, "engine": {"preroll": 0.5}}, TestBackends, turns=1
    )
    wake = probe.of("wake")[0]["wake"]
    received = engine.stt.last_instance.received
    before = sum(c.duration for c in received if c.timestamp < wake.timestamp)
    assert before == pytest.approx(0.5, abs=0.1), "half a second from before the wake frame comes first"
    assert received[0].timestamp < wake.timestamp


@pytest.mark.parametrize("realtime", [True, False], ids=["live", "lock-step"])
async def test_a_late_detection_still_hands_over_the_audio_from_before_the_wake_word(realtime):
    """Lateness is counted in audio: read as fast as possible (lock-step), 1.2 s of audio scored
    before the detection took almost no time, and is handed over all the same (a remote detector,
    [wake] wyoming, answers some chunks late like this)."""
    source = {"backend": "scripted", "realtime": realtime, "segments": [
        {"seconds": 1.0}, {"seconds": 0.4, "tone": 660.0, "amplitude": 0.5}, {"seconds": 0.2},
        {"seconds": 1.5, "tone": 440.0, "amplitude": 0.1}, {"seconds": 1.0},
    ]}
    engine, probe, result = await run_engine(
        {"audio_source": source, "wake": {"backend": "late", "lag": 1.2}, "stt": {"backend": "recording"},
         "engine": {"preroll": 0.5}},
        TestBackends, turns=1,
    )
    wake = probe.of("wake")[0]["wake"]
    timeline = result.timelines[0]
    assert timeline.detected - timeline.wake > 0, "the wake word's frame came before its detection"
    received = engine.stt.last_instance.received
    before = sum(c.duration for c in received if c.timestamp <= wake.timestamp)
    assert before == pytest.approx(0.5, abs=0.1), "the pre-roll is anchored on the wake word, not on its detection"
    heard = sum(c.duration for c in received)
    assert heard >= 0.5 + 0.4 + 0.2 + 1.5 - 0.1, "the whole command after the wake word reached the STT"
    assert all(ms >= 0 for ms in timeline.latencies().values())


def test_a_timeline_never_shows_a_negative_duration():
    from magoo_core.types import TurnTimeline

    # a wake word scored 2 s late: the end of speech (audio time) comes before the detection
    timeline = TurnTimeline(1, 100.0, wake=100.0, detected=102.0, speech_end=101.5, transcript=102.1, reply=102.2,
                            first_audio=102.5, ended=104.0)
    latencies = timeline.latencies()
    assert all(ms >= 0 for ms in latencies.values()), latencies
    assert list(latencies)[:3] == ["started->speech_end", "speech_end->detected", "detected->transcript"]
    assert "ok" in timeline.summary() and "-" not in timeline.summary().replace("->", "")


async def test_an_stt_that_replies_itself_needs_no_responder():
    engine, probe, result = await run_engine(
        {"stt": {"backend": "scripted", "replies": True, "reply_template": "It is noon."}, "responder": None}, turns=1
    )
    assert [a["reply"].text for a in probe.of("reply")] == ["It is noon."]
    assert result.timelines[0].outcome is Outcome.OK
    assert engine.player.last_instance.plays, "the reply was spoken"


async def test_without_a_responder_an_stt_that_does_not_reply_cannot_start():
    engine, probe, result = await run_engine({"responder": None}, turns=1)
    assert result.exit_code == 1
    assert "[responder]" in result.fatal


# ---- plugins misbehaving ------------------------------------------------------------------------


class RaisingPlugin:
    """Raises from a sync and from an async event hook."""

    @staticmethod
    @hookimpl
    def magoo_on_wake(wake):
        raise RuntimeError("servo on fire")

    @staticmethod
    @hookimpl
    async def magoo_on_reply(reply):
        raise ValueError("led strip unplugged")


async def test_a_raising_event_hook_does_not_stop_the_others_or_the_turn():
    engine, probe, result = await run_engine({}, RaisingPlugin, turns=1)
    assert probe.of("wake") and probe.of("reply"), "the other plugins still got both events"
    assert result.timelines[0].outcome is Outcome.OK
    failures = [a["failure"] for a in probe.of("error")]
    assert {f.backend for f in failures} == {"RaisingPlugin"}, "the failure names the plugin"
    messages = " | ".join(f.message for f in failures)
    assert "servo on fire" in messages and "led strip unplugged" in messages
    assert "magoo_on_wake" in messages and "magoo_on_reply" in messages


# ---- an actuator that cannot start ------------------------------------------------------------------


async def test_an_actuator_that_cannot_start_is_reported_once_and_the_assistant_works_without_it():
    engine, probe, result = await run_engine(
        {"actuators": [{"backend": "unplugged"}, {"backend": "log"}]}, TestBackends, turns=1
    )
    assert result.fatal is None
    assert [t.outcome for t in result.timelines] == [Outcome.OK]
    (failure,) = [a["failure"] for a in probe.of("error")]
    assert failure.role == "actuators" and failure.backend == "unplugged"
    assert "sudo systemctl start pigpiod" in failure.message
    (log_actuator,) = [slot.last_instance for slot in engine.actuators]  # the other actuator still ran
    assert "turn_end" in [name for name, _ in log_actuator.events]


class LitActuator(Backend):
    """An LED that is switched on when entered and off when left."""

    name: ClassVar[str] = "lit"
    lit: ClassVar[bool] = False

    class Config(BackendConfig):
        pass

    async def __aenter__(self):
        type(self).lit = True
        return self

    async def __aexit__(self, *exc_info):
        type(self).lit = False

    @hookimpl
    def magoo_on_wake(self, wake):
        pass


async def test_an_actuator_dropped_after_it_was_entered_is_left_so_it_rests(monkeypatch):
    from magoo_core.errors import PluginError
    from magoo_core.plugins import Plugins

    register = Plugins.register_instance

    def refuse_the_led(self, instance, name):
        if isinstance(instance, LitActuator):
            raise PluginError(f"{name}: magoo_on_wake has an argument the hook does not have")
        return register(self, instance, name)

    monkeypatch.setattr(Plugins, "register_instance", refuse_the_led)
    LitActuator.lit = False
    engine, probe, result = await run_engine({"actuators": [{"backend": "lit"}]}, _WithLed, turns=1)
    assert [t.outcome for t in result.timelines] == [Outcome.OK]
    assert [a["failure"].backend for a in probe.of("error")] == ["lit"]
    assert engine.actuators == []
    assert LitActuator.lit is False, "the dropped actuator's __aexit__ ran: its LED is off"


class _WithLed:
    @staticmethod
    @hookimpl
    def magoo_register_actuators(register):
        register(LitActuator)


# ---- a backup for a backend that cannot start ------------------------------------------------------


async def test_a_player_that_cannot_start_gives_way_to_its_backup_for_the_whole_run(tmp_path, caplog):
    backup = {"backend": "wav", "path": str(tmp_path / "reply-{n}.wav")}
    engine, probe, result = await run_engine(
        {"player": {"backend": "soundless", "backup": backup}, "audio_source": LOOPING_SOURCE}, TestBackends, turns=2
    )
    assert result.fatal is None
    assert [t.outcome for t in result.timelines] == [Outcome.OK, Outcome.OK]
    assert engine.player.spec.backend == "wav" and engine.player.spec.section == "[player.backup]"
    assert engine.player.configured.backend == "soundless"
    assert "check [player] audio_device" in engine.player.replaced
    assert sorted(p.name for p in tmp_path.iterdir()) == ["reply-1.wav", "reply-2.wav"]
    (warning,) = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert "[player] soundless: cannot open the audio output" in warning and "using [player.backup] wav" in warning
    assert probe.of("error") == [], "a backup that works is no error"


async def test_without_a_backup_a_player_that_cannot_start_stops_the_run():
    _, _, result = await run_engine({"player": {"backend": "soundless"}}, TestBackends, turns=1)
    assert result.fatal == "could not start [player] soundless: cannot open the audio output: check [player] audio_device"


async def test_when_the_backup_cannot_start_either_its_own_failure_stops_the_run():
    player = {"backend": "soundless", "backup": {"backend": "failing", "nope": 1}}
    with pytest.raises(ProfileError, match=r"\[player.backup\] nope: unknown key"):
        await run_engine({"player": player}, TestBackends, turns=1)
    player["backup"] = {"backend": "soundless"}
    _, _, result = await run_engine({"player": player}, TestBackends, turns=1)
    assert result.fatal.startswith("could not start [player.backup] soundless:")


# ---- the player gets ready for what the TTS yields ---------------------------------------------


async def test_the_player_is_told_once_what_the_tts_will_yield_before_the_first_reply():
    engine, probe, _ = await run_engine({"tts": {"backend": "tone", "sample_rate": 16000}}, turns=2)
    assert engine.player.last_instance.expected == [AudioFormat(16000)]


class UnreadyPlayer(SoundlessPlayer):
    """Plays, but cannot get ready for anything in advance."""

    name: ClassVar[str] = "unready"

    async def __aenter__(self):
        return self

    async def play(self, audio, progress):
        async for _ in audio:
            progress.started()

    async def expect(self, output):
        raise BackendError("no decoder for that here")


async def test_a_player_that_cannot_get_ready_in_advance_is_only_logged(caplog):
    _, _, result = await run_engine({"player": {"backend": "unready"}}, TestBackends, turns=1)
    assert result.fatal is None and [t.outcome for t in result.timelines] == [Outcome.OK]
    (warning,) = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert warning == "[player] unready could not get ready for 22050 Hz, 1 ch, 16-bit: no decoder for that here"


# ---- a backup for a backend that fails for good ---------------------------------------------------


async def test_a_refused_key_in_wake_word_mode_hands_over_to_the_backup_after_one_failed_turn(caplog):
    RevokedSpeechToText.streams = 0
    engine, probe, result = await run_engine(
        {"audio_source": LOOPING_SOURCE, "stt": {"backend": "revoked", "backup": {"backend": "scripted"}}},
        TestBackends, turns=3,
    )
    assert result.fatal is None
    assert [t.outcome for t in result.timelines] == [Outcome.ERROR, Outcome.OK, Outcome.OK]
    assert RevokedSpeechToText.streams == 1, "a refused key was tried again"
    (failure,) = result.failures
    assert failure.message == "[stt] revoked: the API key was refused (401): set a valid MAGOO_TEST_KEY in .env"
    assert engine.stt.spec.section == "[stt.backup]" and engine.stt.replaced == failure.message
    (warning,) = [r.getMessage() for r in caplog.records if "instead" in r.getMessage()]
    assert warning == f"{failure.message}; using [stt.backup] scripted instead for the rest of the run"
    assert [a["transcript"].text for a in probe.of("transcript") if a["transcript"].final] == ["what time is it"] * 2


async def test_the_story_of_magoo_run_says_once_which_backup_took_over():
    import io

    from magoo_core.reporter import ConsoleReporter

    manager = build_plugins(TestBackends)
    stt = {"backend": "revoked", "backup": {"backend": "scripted"}}
    engine = Engine(make_profile({"audio_source": LOOPING_SOURCE, "stt": stt}, manager), manager, max_turns=3)
    story = io.StringIO()
    manager.pm.register(ConsoleReporter(story, engine), name="story")
    await asyncio.wait_for(engine.run(), 30)
    told = [line.split("] ", 1)[1] for line in story.getvalue().splitlines() if "backup" in line]
    assert told == ["[stt] revoked failed for good (the log says why); its backup scripted runs instead"]


async def test_a_refused_key_in_conversation_mode_hands_over_to_the_backup_instead_of_stopping():
    RevokedSpeechToText.streams = 0
    stt = {"backend": "revoked", "backup": {"backend": "scripted", "transcripts": ["one", "two"]}}
    engine, probe, result = await run_engine({"wake": None, "audio_source": LOOPING_SOURCE, "stt": stt}, TestBackends, turns=2)
    assert result.fatal is None
    assert RevokedSpeechToText.streams == 1
    assert [a["reply"].text for a in probe.of("reply")] == ["You said: one", "You said: two"]
    assert [t.outcome for t in result.timelines][-2:] == [Outcome.OK, Outcome.OK]


async def test_without_a_backup_a_refused_key_in_conversation_mode_stops_the_run_for_the_service_manager():
    _, _, result = await run_engine({"wake": None, "audio_source": LOOPING_SOURCE, "stt": {"backend": "revoked"}}, TestBackends)
    assert result.fatal == "[stt] revoked: the API key was refused (401): set a valid MAGOO_TEST_KEY in .env"


# ---- every way out of speaking unmutes --------------------------------------------------------------


@pytest.mark.parametrize(
    "overrides, failed_role",
    [
        ({}, None),
        ({"tts": {"backend": "tone", "fail": [1]}}, "tts"),
        ({"player": {"backend": "failing", "fail": [1]}}, "player"),
    ],
    ids=["ok", "tts-raises", "player-raises"],
)
async def test_the_microphone_is_unmuted_after_speaking_however_it_ends(overrides, failed_role):
    engine, probe, result = await run_engine(
        {"audio_source": LOOPING_SOURCE, **overrides}, TestBackends, turns=2
    )
    assert probe.muted_during("speak_start") == [True] * len(probe.of("speak_start"))
    assert probe.muted_during("turn_end") == [False, False]
    outcomes = [t.outcome for t in result.timelines]
    if failed_role is None:
        assert outcomes == [Outcome.OK, Outcome.OK]
    else:
        assert outcomes == [Outcome.ERROR, Outcome.OK], "the next turn works: the mic was not left muted"
        (failure,) = [a["failure"] for a in probe.of("error")]
        assert failure.role == failed_role and failure.turn == 1
    assert engine.muted is False


async def test_cancelling_while_speaking_unmutes(tmp_path):
    engine, probe, result = await run_engine(
        {
            "engine": {"shutdown_timeout": 0.2, "mute_post": 5.0},
            "tts": {"backend": "tone", "max_seconds": 10, "seconds_per_char": 1.0},
            "player": {"backend": "wav", "realtime": True, "path": str(tmp_path / "reply.wav")},
        },
        stop_on="speak_start",
    )
    (timeline,) = result.timelines
    assert timeline.outcome is Outcome.CANCELLED
    assert probe.muted_during("speak_start") == [True]
    assert probe.muted_during("turn_end") == [False]
    assert probe.of("speak_end")[0]["interrupted"] is True
    assert engine.muted is False


# ---- half-duplex: the assistant does not hear itself --------------------------------------------------


def _echo_profile(echo_at: float, folder: Path) -> dict:
    """Continuous mode, live audio: a command, then 'the assistant's own voice' at ``echo_at`` s."""
    command_end = 0.3 + 0.6
    return {
        "wake": None,
        "engine": {"mute_post": 0.5},
        "audio_source": segments((0.3, None), (0.6, 440), (echo_at - command_end, None), (0.6, 440), (1.5, None)),
        "tts": {"backend": "tone", "seconds_per_char": 1.0, "max_seconds": 3.0},
        "player": {"backend": "wav", "realtime": True, "path": str(folder / "reply.wav")},
    }


async def test_speech_while_the_assistant_speaks_is_not_heard(tmp_path):
    # speaking starts ~0.5 s after the command ends (end of utterance) and lasts 3 s + mute_post
    engine, probe, result = await run_engine(_echo_profile(echo_at=2.6, folder=tmp_path))
    assert [t.outcome for t in result.timelines] == [Outcome.OK]
    assert len([a for a in probe.of("transcript") if a["transcript"].final]) == 1
    assert engine.counters["muted_frames"] > 0


async def test_speech_after_the_assistant_finished_is_heard(tmp_path):
    # the control for the test above: the same audio, later, is a second turn
    engine, probe, result = await run_engine(_echo_profile(echo_at=6.0, folder=tmp_path))
    assert [t.outcome for t in result.timelines] == [Outcome.OK, Outcome.OK]


async def test_barge_in_stops_the_reply_and_starts_a_new_turn(tmp_path):
    source = segments(
        (0.3, None), (0.4, 660), (0.2, None), (0.6, 440), (1.4, None),  # wake, command, reply starts
        (0.4, 660), (0.2, None), (0.6, 440), (1.5, None),  # wake again while it speaks
    )
    engine, probe, result = await run_engine(
        {
            "audio_source": source,
            "engine": {"barge_in": True},
            "tts": {"backend": "tone", "seconds_per_char": 1.0, "max_seconds": 4.0},
            "player": {"backend": "wav", "realtime": True, "path": str(tmp_path / "reply.wav")},
        },
        turns=2,
    )
    outcomes = [t.outcome for t in result.timelines]
    assert outcomes[0] is Outcome.INTERRUPTED
    assert len(probe.of("wake")) == 2
    assert probe.of("speak_end")[0]["interrupted"] is True
    assert len(result.timelines) == 2


# ---- continuous mode -----------------------------------------------------------------------------


async def test_continuous_mode_streams_to_stt_and_takes_turn_after_turn():
    source = {
        "backend": "scripted",
        "realtime": False,
        "segments": [{"seconds": 0.3}, {"seconds": 0.8, "tone": 440.0}, {"seconds": 1.0},
                     {"seconds": 0.8, "tone": 440.0}, {"seconds": 1.0}],
    }
    engine, probe, result = await run_engine(
        {"wake": None, "audio_source": source, "stt": {"backend": "scripted", "transcripts": ["one", "two"]}}
    )
    assert not probe.of("wake")
    assert [a["reply"].text for a in probe.of("reply")] == ["You said: one", "You said: two"]
    assert [t.outcome for t in result.timelines] == [Outcome.OK, Outcome.OK]
    assert probe.of("speech_start")[0]["turn"] == 1


# ---- failures -----------------------------------------------------------------------------------


async def test_a_backend_error_drops_the_turn_and_the_engine_keeps_listening():
    engine, probe, result = await run_engine(
        {"audio_source": LOOPING_SOURCE, "stt": {"backend": "scripted", "fail": [1]}}, turns=2
    )
    assert [t.outcome for t in result.timelines] == [Outcome.ERROR, Outcome.OK]
    (failure,) = result.failures
    assert failure.role == "stt" and "scripted failure" in failure.message and failure.turn == 1
    assert "scripted failure" in result.timelines[0].error


async def test_a_backend_that_works_again_after_a_failure_is_announced_as_recovered():
    engine, probe, result = await run_engine(
        {"audio_source": LOOPING_SOURCE, "stt": {"backend": "scripted", "fail": [1]}}, turns=2
    )
    assert in_order(probe.names(), ["error", "turn_end", "recovered", "turn_end"])
    (recovered,) = probe.of("recovered")
    assert (recovered["role"], recovered["backend"], recovered["failures"]) == ("stt", "scripted", 1)
    assert engine.stt.unrecovered == 0


async def test_a_silent_stt_does_not_hang_the_turn():
    engine, probe, result = await run_engine(
        {"stt": {"backend": "hanging"}, "engine": {"capture_timeout": 0.3, "reply_timeout": 0.3}}, TestBackends, turns=1
    )
    (timeline,) = result.timelines
    assert timeline.outcome is Outcome.ERROR
    assert "gave no final transcript or reply within" in timeline.error
    assert probe.of("error")[0]["failure"].role == "stt"


async def test_a_backend_that_keeps_failing_is_restarted_with_backoff():
    FlakyResponder.failures_left = 3
    FlakyResponder.instances = 0
    engine, probe, result = await run_engine(
        {
            "audio_source": LOOPING_SOURCE,
            "responder": {"backend": "flaky"},
            "engine": {"max_failures": 3, "restart_backoff": 0.01, "restart_backoff_max": 0.05},
        },
        TestBackends,
        turns=4,
    )
    assert [t.outcome for t in result.timelines] == [Outcome.ERROR] * 3 + [Outcome.OK]
    assert FlakyResponder.instances == 2, "a fresh instance after three failures in a row"
    assert engine.status().counters["restarts"] == 1


async def test_restarts_that_keep_coming_make_magoo_exit_for_its_service_manager(caplog):
    FlakyResponder.failures_left = 1000
    fast = {"max_failures": 1, "restart_backoff": 0.01, "restart_backoff_max": 0.02}
    overrides = {"audio_source": LOOPING_SOURCE, "responder": {"backend": "flaky"}}
    _, _, result = await run_engine({**overrides, "engine": {**fast, "exit_after_restarts": 3}}, TestBackends, timeout=30)
    assert result.fatal == (
        "3 backend restarts within 600 s ([responder] flaky ×3): exiting, so the service manager starts magoo"
        " afresh ([engine] exit_after_restarts)"
    )
    assert result.exit_code == 1
    assert len(result.timelines) >= 3 and all(t.outcome is Outcome.ERROR for t in result.timelines)
    assert [r.levelname for r in caplog.records if "backend restarts within" in r.getMessage()] == ["ERROR"]
    # 0: never; and restarts spread wider than the window do not add up
    for engine_options in ({"exit_after_restarts": 0}, {"exit_after_restarts": 3, "restart_window": 0.001}):
        _, _, result = await run_engine({**overrides, "engine": {**fast, **engine_options}}, TestBackends, turns=6)
        assert result.fatal is None and len(result.timelines) == 6


async def test_a_device_whose_stream_ends_is_reopened_and_the_failure_reported():
    DroppingSource.opened = 0
    manager = build_plugins(TestBackends)
    profile = make_profile(
        {"audio_source": {"backend": "dropping"}, "engine": {"restart_backoff": 0.01, "restart_backoff_max": 0.02}},
        manager,
    )
    engine = Engine(profile, manager)
    run = asyncio.create_task(engine.run())
    while DroppingSource.opened < 3:
        await asyncio.sleep(0.01)
    engine.request_stop()
    result = await asyncio.wait_for(run, 30)
    assert result.exit_code == 0, "a vanished microphone never ends the process"
    assert result.failures and all(f.role == "audio_source" for f in result.failures)
    assert "stopped delivering audio" in result.failures[0].message


async def test_a_stalled_consumer_never_blocks_the_capture_callback():
    manager = build_plugins(TestBackends)
    profile = make_profile(
        {"audio_source": {"backend": "threaded", "queue_size": 16}, "wake": {"backend": "stalling"}}, manager
    )
    engine = Engine(profile, manager)
    run = asyncio.create_task(engine.run())
    while engine.source.instance is None or engine.wake.instance is None:
        await asyncio.sleep(0.01)
    source, detector = engine.source.instance, engine.wake.instance
    frame = bytes(2 * 1280)

    source.callback(frame)  # the engine takes it, and its wake worker stalls on it
    assert await asyncio.to_thread(detector.entered.wait, 10)

    driver = threading.Thread(target=lambda: [source.callback(frame) for _ in range(500)])
    driver.start()
    await asyncio.to_thread(driver.join, 10)
    assert not driver.is_alive(), "the driver thread finished although nothing consumed its audio"
    assert engine.status().counters["overflows"] == 500 - 16, "every lost chunk is counted"

    detector.release.set()
    engine.request_stop()
    await asyncio.wait_for(run, 30)
    assert detector.threads and all(name.startswith("magoo-wake") for name in detector.threads)


async def test_heartbeat_reports_counters(caplog):
    caplog.set_level("INFO", logger="magoo.engine")
    engine, probe, result = await run_engine(
        {
            "audio_source": {"backend": "silence", "seconds": 0.6, "realtime": True},
            "engine": {"heartbeat_interval": 0.1},
        }
    )
    statuses = [a["status"] for a in probe.of("heartbeat")]
    assert statuses, "heartbeats while running"
    last = statuses[-1]
    assert last.counters["frames"] > 0 and last.state is State.LISTENING
    assert "audio_source:silence" in last.backends
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("listening; up 0h00m; 0 turns")]
    assert len(statuses) >= 3 and len(lines) == 1, "the stats line at most every 10 s, however fast the heartbeat"
    assert lines[-1].endswith("0 overflows; input silent")


def test_a_wake_turn_records_when_the_detection_arrived():
    run = run_turn({})

    (timeline,) = run.timelines
    wake = run.of("wake")[0]["wake"]
    assert timeline.started == timeline.wake == wake.timestamp
    assert timeline.wake <= timeline.detected <= timeline.speech_end
    assert list(timeline.latencies())[:2] == ["started->detected", "detected->speech_end"]


async def test_a_detector_is_never_left_while_its_worker_still_uses_it():
    engine, _, result = await run_engine({"wake": {"backend": "slow-reset"}}, TestBackends, turns=1)

    assert result.fatal is None
    detector = engine.wake.last_instance
    assert detector.resets >= 1
    assert detector.left_while_busy is False


# ---- what the engine tells and asks of a speech-to-text backend -----------------------------------


class ReplyOnlySpeechToText(ScriptedSpeechToText):
    """Replies without ever giving a transcript (transcription off); records the streams' kind and pre-roll."""

    name: ClassVar[str] = "reply-only"
    kinds: ClassVar[list[bool]] = []
    prerolls: ClassVar[list[float]] = []

    def __init__(self, config):
        super().__init__(config)
        self.replies = True

    async def transcribe(self, audio):
        ReplyOnlySpeechToText.kinds.append(audio.continuous)
        ReplyOnlySpeechToText.prerolls.append(audio.preroll)
        async for item in super().transcribe(audio):
            if isinstance(item, Reply):
                yield Reply("**Noon**, see https://example.com/time")


class SelfHealingSpeechToText(ScriptedSpeechToText):
    """Fails like a client whose connection is down and reconnects by itself."""

    name: ClassVar[str] = "self-healing"
    instances: ClassVar[int] = 0

    def __init__(self, config):
        super().__init__(config)
        SelfHealingSpeechToText.instances += 1

    async def transcribe(self, audio):
        await asyncio.sleep(0.01)
        raise BackendError("not connected; next attempt in 5 s", restart=False)
        yield  # pragma: no cover - never reached


class SpeechToTextKinds:
    @staticmethod
    @hookimpl
    def magoo_register_stt(register):
        register(ReplyOnlySpeechToText)
        register(SelfHealingSpeechToText)


@pytest.mark.parametrize("continuous", [False, True])
async def test_a_reply_without_a_transcript_is_spoken_cleaned_for_speech(continuous):
    ReplyOnlySpeechToText.kinds, ReplyOnlySpeechToText.prerolls = [], []
    overrides = {"stt": {"backend": "reply-only"}, "responder": None}
    if continuous:
        overrides["wake"] = None
    engine, probe, result = await run_engine(overrides, SpeechToTextKinds, turns=1)
    assert [t.outcome for t in result.timelines] == [Outcome.OK]
    assert not [a for a in probe.of("transcript") if a["transcript"].final]
    assert [a["reply"].text for a in probe.of("reply")] == ["**Noon**, see https://example.com/time"]
    assert [a["text"] for a in probe.of("speak_start")] == ["Noon, see example.com"]
    assert ReplyOnlySpeechToText.kinds[0] is continuous  # AudioStream.continuous tells the backend
    # AudioStream.preroll: the audio up to the wake word's frame, at most the engine's preroll
    preroll = ReplyOnlySpeechToText.prerolls[0]
    if continuous:
        assert preroll == 0.0
    else:
        assert 0.0 < preroll <= engine.settings.preroll + 1e-6


async def test_speakable_replies_can_be_turned_off():
    engine, probe, result = await run_engine(
        {"stt": {"backend": "reply-only"}, "responder": None, "engine": {"speakable_replies": False}},
        SpeechToTextKinds, turns=1,
    )
    assert [a["text"] for a in probe.of("speak_start")] == ["**Noon**, see https://example.com/time"]


async def test_a_backend_that_heals_itself_is_never_restarted_by_the_engine():
    SelfHealingSpeechToText.instances = 0
    manager = build_plugins(SpeechToTextKinds)
    profile = make_profile(
        {"wake": None, "audio_source": {**LOOPING_SOURCE, "realtime": True}, "stt": {"backend": "self-healing"},
         "engine": {"max_failures": 2, "restart_backoff": 0.05, "restart_backoff_max": 0.05}},
        manager,
    )
    engine = Engine(profile, manager)
    run = asyncio.create_task(engine.run())
    while len(engine.failures) < 6:
        await asyncio.sleep(0.02)
    engine.request_stop()
    result = await asyncio.wait_for(run, 10)
    assert SelfHealingSpeechToText.instances == 1, "max_failures did not restart a self-healing backend"
    assert engine.status().counters["restarts"] == 0
    assert all("next attempt in 5 s" in f.message and f.retryable for f in result.failures)


# ---- status --------------------------------------------------------------------------------------


def test_the_input_level_is_the_rms_of_the_last_second():
    import numpy as np

    from magoo_core.audio import chunk_from_samples
    from magoo_core.status import InputLevel

    def steady(rms: float) -> AudioChunk:  # 40 ms whose RMS is exactly ``rms``
        return chunk_from_samples(np.full(640, round(rms * 32768), dtype=np.int16), 16000)

    level = InputLevel()
    for _ in range(50):  # 2 s of 40 ms chunks at RMS 0.5, then 1 s at 0.1
        level.add(steady(0.5))
    assert level.value == pytest.approx(0.5)
    for _ in range(25):
        level.add(steady(0.1))
    assert level.value == pytest.approx(0.1, abs=0.02)


async def test_status_counts_wakes_per_word_and_knows_each_backends_health(tmp_path, monkeypatch):
    monkeypatch.setattr(FlakyResponder, "failures_left", 1)
    status_file = tmp_path / "status.json"
    engine, probe, result = await run_engine(
        {
            "audio_source": LOOPING_SOURCE,
            "engine": {"status_file": str(status_file), "status_interval": 0.05},
            "responder": {"backend": "flaky"},
        },
        TestBackends,
        turns=2,
    )
    status = engine.status()
    assert status.wakes == {"hey_magoo": 2}
    assert status.last_wake is not None and status.last_wake.label == "hey_magoo"
    assert status.input_level > 0.05  # the test source's tones
    document = json.loads(status_file.read_text())
    assert document["running"] is False and document["wakes"] == {"hey_magoo": 2}
    assert document["last_wake"]["label"] == "hey_magoo" and document["errors"] == 1
    assert document["backends"]["responder:flaky"]["health"] == "stopped"  # the run is over


async def test_a_backend_used_twice_has_two_entries_in_the_status():
    engine, probe, result = await run_engine({"actuators": [{"backend": "log"}, {"backend": "log"}]}, turns=1)
    status = engine.status()
    assert {"actuators:log", "actuators:log#2"} <= set(status.backends) == set(status.health)


def test_the_status_line_names_what_is_not_ok():
    from magoo_core.status import status_line
    from magoo_core.types import EngineStatus

    status = EngineStatus(
        State.SPEAKING, 3 * 3600 + 7 * 60 + 5, 41, 2, {"restarts": 1, "audio_seconds": 11225.4, "overflows": 3},
        health={"audio_source:pyaudio": "ok", "stt:openai-realtime": "restarting"}, input_level=0.01,
    )
    assert status_line(status) == (
        "speaking; up 3h07m; 41 turns, 2 errors, 1 restarts; audio 11225 s, 3 overflows; input -40 dBFS;"
        " not ok: stt:openai-realtime restarting"
    )
