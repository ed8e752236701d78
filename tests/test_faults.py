"""The fault matrix, part 1: devices, players and actuators, each broken while the real engine runs.

Every test runs whole turns and checks, through :func:`fault_helpers.assert_recovered`, that the
engine recovered by itself or reported the fault in one readable line, that the microphone was
muted only while a reply played (sampled every 10 ms), that every turn ended with an outcome, and
that a turn after the fault was OK. Real parts wherever they run here: PyAudio on the private
PulseAudio server's virtual microphone, openWakeWord and pocketsphinx hearing a real recording,
espeak-ng and mpv on the virtual speaker, magoo-servo on gpiozero's mock pins. Fakes stand in
where the fault is the engine's business (a wake detector or a TTS that misbehaves).

Network services break in tests/test_faults_services.py; the table in docs/operations.md
summarises both.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pytest

import magoo_espeak
import magoo_mpv
import magoo_openwakeword
import magoo_pocketsphinx
import magoo_pyaudio
import magoo_servo
from magoo_core import AudioChunk, AudioFormat, Backend, BackendConfig, Outcome, Reply, hookimpl
from magoo_core.audio import convert, read_wav, samples
from magoo_core.default_plugins.fakes import ScriptedWakeDetector, ToneSpeech
from magoo_core.engine import Engine
from magoo_core.plugins import MAX_SLOW_CALLS
from magoo_core.testing.signals import match_in_pieces
from magoo_core.testing.virtual_audio import VirtualAudio, no_sound_environment
from magoo_servo import ServoConfig, pins

from fault_helpers import (
    EVENT_TIMEOUT, FaultRun, TimedProbe, assert_recovered, audio_flowing, logged_tracebacks, run_with_faults,
)
from probe import LOOPING_SOURCE, wake_turns

EXAMPLES = Path(__file__).parent.parent / "examples"
HEY_JARVIS = EXAMPLES / "audio" / "hey_jarvis_what_time_is_it.wav"  # "hey jarvis", then "what time is it"
RATE = 16000
FAST_RESTARTS = {"restart_backoff": 0.1, "restart_backoff_max": 0.5}


async def until(check: Callable[[], Any], timeout: float = EVENT_TIMEOUT) -> Any:
    """Poll the blocking ``check`` (in a thread) every 50 ms until it returns something truthy."""
    deadline = time.monotonic() + timeout
    while not (found := await asyncio.to_thread(check)):
        if time.monotonic() > deadline:
            raise AssertionError(f"{check} stayed false for {timeout:g} s")
        await asyncio.sleep(0.05)
    return found


# ---- the check itself ----------------------------------------------------------------------------


class MuteLeak:
    """A broken engine, simulated: the microphone is muted again when a turn ends, for good
    (``seconds`` None) or for a moment."""

    def __init__(self, seconds: float | None) -> None:
        self.seconds = seconds
        self.engine: Engine | None = None

    async def attach(self, engine: Engine, probe: TimedProbe) -> None:
        self.engine = engine

    @hookimpl
    def magoo_on_turn_end(self):
        if self.seconds is None:
            self.engine.speaker.mute()
            return None
        return self._mute_for_a_moment()

    async def _mute_for_a_moment(self) -> None:
        self.engine.speaker.mute()
        await asyncio.sleep(self.seconds)
        self.engine.speaker.release()


@pytest.mark.parametrize(
    ("seconds", "caught"),
    # Muted for good, the first check to look wins: the sampler or the turn-end record (it is a
    # race which one saw it first); muted for a moment, only the sampler can see it.
    [(None, "the microphone was (muted|left muted)"), (0.2, "the microphone was muted with no reply playing")],
)
async def test_the_check_fails_when_the_microphone_is_muted_outside_a_reply(seconds, caught):
    leak = MuteLeak(seconds)
    run = await run_with_faults({}, leak, fault=leak.attach, turns=1)
    with pytest.raises(AssertionError, match=caught):
        assert_recovered(run)


# ---- 1-3: the microphone: unplugged, stalled, flat ------------------------------------------------


class RoomNoise:
    """A faint hiss (-64 dBFS) playing into the virtual microphone, as a real room and preamp give.

    Without it the idle virtual microphone delivers exact digital zeros, which the stuck-level
    check rightly takes for a dead device; with it only a real fault makes the level flat.
    """

    def __init__(self, audio: VirtualAudio, seconds: float = 120.0) -> None:
        hiss = np.random.default_rng(7).normal(0, 20, int(seconds * RATE)).astype("<i2")
        self.audio = audio
        self.pcm = hiss.tobytes()
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        self.stop()
        self.process = self.audio.play((self.pcm, RATE), wait=False)

    def go_flat(self) -> None:
        """The signal goes flat: the hiss gives way to a constant level (DC), until :meth:`start`."""
        self.stop()
        self.process = self.audio.play((np.full(60 * RATE, 1000, dtype="<i2").tobytes(), RATE), wait=False)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self.process = None


@dataclass(frozen=True)
class MicFault:
    """How a microphone fault is made and repaired, and what the capture layer must say about it."""

    inject: Callable[[VirtualAudio, RoomNoise], Any]
    repair: Callable[[VirtualAudio, RoomNoise], Any]
    says: tuple[str, ...]
    source: dict[str, Any]


MIC_FAULTS = {
    # PulseAudio moves the stream to the speaker's monitor (exact zeros) without any error
    "unplugged": MicFault(
        lambda audio, noise: audio.unplug(), lambda audio, noise: audio.replug(),
        ("exactly 0.000000 for 1 s", "unplugged", "reopening"), {"stuck_after": 1.0},
    ),
    # suspended: no data and no error
    "stalled": MicFault(
        lambda audio, noise: audio.stall(True), lambda audio, noise: audio.stall(False),
        ("no audio from 'default' for 1 s", "stalled or unplugged", "reopening"), {"stall_timeout": 1.0},
    ),
    "flat": MicFault(
        lambda audio, noise: noise.go_flat(), lambda audio, noise: noise.start(),
        ("has been exactly 0.030518 for 1 s", "Set stuck_after = 0 if"), {"stuck_after": 1.0},
    ),
}


def listening_desk(source: dict[str, Any]) -> dict[str, Any]:
    """PyAudio on the virtual microphone, openWakeWord for "hey jarvis", pocketsphinx for the command."""
    return {
        "engine": {**FAST_RESTARTS, "mute_pre": 0.1, "mute_post": 0.3, "preroll": 0.3},
        "audio_source": {"backend": "pyaudio", "sample_rate": 16000, **source},
        "wake": {"backend": "openwakeword", "models": [{"name": "hey_jarvis", "threshold": 0.5}]},
        "stt": {"backend": "pocketsphinx", "commands": ["what time is it", "what day is it", "hello"]},
        "tts": {"backend": "tone", "realtime": True},
    }


async def settled(audio: VirtualAudio, probe: TimedProbe, quiet: float) -> None:
    """Wait until the capture stream is on the microphone again and ``quiet`` s passed with no new
    source failure (a reopen may still be under way when the repair lands)."""
    deadline = time.monotonic() + EVENT_TIMEOUT
    while time.monotonic() < deadline:
        await until(lambda: audio.source_state() == "RUNNING")
        since = time.monotonic()
        await asyncio.sleep(quiet)
        if not [a for m, name, a in probe.timed if name == "error" and m >= since]:
            return
    raise AssertionError("the capture did not settle after the repair")


@pytest.mark.parametrize("name", list(MIC_FAULTS))
async def test_a_microphone_fault_is_reported_the_capture_reopens_and_the_next_wake_word_works(
    name, fresh_virtual_audio: VirtualAudio, caplog
):
    """Real openWakeWord ("hey jarvis") and pocketsphinx on PyAudio, on the virtual microphone."""
    audio, case = fresh_virtual_audio, MIC_FAULTS[name]
    noise = RoomNoise(audio)
    moments: dict[str, float] = {}
    playing: list[subprocess.Popen] = []

    async def fault(engine: Engine, probe: TimedProbe) -> None:
        await audio_flowing(engine, 1.5)  # longer than stuck_after: the hissing microphone is not taken for dead
        assert not probe.of("error"), [a["failure"].message for a in probe.of("error")]
        moments["fault"] = time.monotonic()
        await asyncio.to_thread(case.inject, audio, noise)
        await probe.wait_for("error", lambda a: a["failure"].role == "audio_source", after=moments["fault"])
        await asyncio.sleep(2.0)  # the fault lasts: the source keeps reopening meanwhile
        moments["repairing"] = time.monotonic()
        await asyncio.to_thread(case.repair, audio, noise)
        moments["repaired"] = time.monotonic()
        await settled(audio, probe, quiet=1.5)
        # the script ends as the clip starts: the turn may be over before the clip's silent tail is
        playing.append(audio.play(HEY_JARVIS, wait=False))

    noise.start()
    try:
        run = await run_with_faults(
            listening_desk(case.source), magoo_pyaudio, magoo_openwakeword, magoo_pocketsphinx,
            fault=fault, turns=1, timeout=90,
        )
    finally:
        noise.stop()
        for player in playing:
            player.kill()
            player.wait(timeout=10)
    failures = assert_recovered(run, role="audio_source", message_has=case.says)
    assert all(f.retryable and f.turn is None for f in failures)
    assert not logged_tracebacks(caplog.records)
    assert run.outcomes == [Outcome.OK]
    assert [a["transcript"].text for a in run.probe.of("transcript") if a["transcript"].final] == ["what time is it"]
    # the capture layer reopened the device and said so: the last source event is a recovery
    source_events = [
        event for _, event, a in run.probe.timed
        if (event == "recovered" and a["role"] == "audio_source") or (event == "error" and a["failure"].role == "audio_source")
    ]
    assert source_events[-1] == "recovered"
    # while the fault lasted the source kept reopening, onto silence or nothing: none of that is a recovery
    recoveries = [t for t, event, a in run.probe.timed if event == "recovered" and a["role"] == "audio_source"]
    assert not [t for t in recoveries if moments["fault"] < t < moments["repairing"]], source_events
    # the capture layer reopened the device, or after max_failures reopens in a row the engine restarted it
    reopens, restarts = run.engine.source.last_instance.stats()["reopens"], run.engine.source.restarts
    assert reopens + restarts >= 1
    reported = run.probe.moments("error")[0] - moments["fault"]
    print(f"\n{name}: reported {reported:.1f} s after the fault; {len(failures)} report(s), {reopens} reopen(s), {restarts} restart(s)")


# ---- 4: the player killed in the middle of a reply -------------------------------------------------

LONG_REPLY = "It is twelve o'clock. Time for lunch, and then a walk in the park."


async def test_mpv_killed_mid_reply_errors_the_turn_unmuted_and_the_next_reply_plays(
    virtual_audio: VirtualAudio, tmp_path, caplog
):
    """espeak-ng speaks through mpv on the virtual speaker; mpv gets SIGKILL at the first level report."""
    killed: list[int] = []

    async def fault(engine: Engine, probe: TimedProbe) -> None:
        await probe.wait_for("speak_chunk")
        process = engine.player.instance._current
        killed.append(process.proc.pid)
        os.kill(process.proc.pid, signal.SIGKILL)

    profile = {
        "engine": {"mute_pre": 0.1, "mute_post": 0.3},
        "audio_source": wake_turns(2, gap=3.0, tail=8.0),
        "responder": {"backend": "echo", "template": LONG_REPLY},
        "tts": {"backend": "espeak", "voice": "en-us"},
        "player": {"backend": "mpv"},
    }
    with virtual_audio.record() as recording:
        await asyncio.to_thread(recording.wait_for_data)
        run = await run_with_faults(profile, magoo_espeak, magoo_mpv, fault=fault, turns=2, timeout=60)
        await asyncio.sleep(0.3)
        heard = recording.samples()
        second = run.result.timelines[1]
        start = recording.index_at(second.first_audio) - RATE // 2

    (failure,) = assert_recovered(run, role="player", errors=1, message_has=["mpv was killed by SIGKILL while playing"])
    assert run.outcomes == [Outcome.ERROR, Outcome.OK] and failure.turn == 1
    assert killed and not _alive(killed[0])
    assert not logged_tracebacks(caplog.records)
    # the second reply came out of the speaker, whole: it matches espeak-ng's own rendering
    reference = tmp_path / "reference.wav"
    subprocess.run(["espeak-ng", "-v", "en-us", "-s", "160", "-w", str(reference), LONG_REPLY], check=True, timeout=30)
    fmt, pcm = read_wav(reference)
    spoken = samples(convert(AudioChunk(pcm, fmt.sample_rate, fmt.channels), AudioFormat(RATE))).reshape(-1)
    correlation = match_in_pieces(heard[start:], spoken)  # in pieces: a dropout under load shifts the rest
    assert correlation > 0.8, correlation
    assert run.engine.player.last_instance.stats()["processes"] >= 3  # the killed one, the next reply's, a waiting one


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


# ---- 5: the player cannot start ------------------------------------------------------------------


MISSING_MPV_PROFILE = """\
[engine]
mute_pre = 0.0
mute_post = 0.0

[audio_source]
backend = "scripted"
segments = [{ seconds = 0.4 }, { seconds = 0.4, tone = 660.0, amplitude = 0.5 }, { seconds = 0.3 },
            { seconds = 1.0, tone = 440.0, amplitude = 0.3 }, { seconds = 1.2 }]

[wake]
backend = "scripted"
level = 0.2

[stt]
backend = "scripted"

[responder]
backend = "echo"

[tts]
backend = "tone"

[player]
backend = "mpv"
mpv = "/nonexistent/mpv"
fallback = "none"
"""


def test_a_missing_player_binary_without_a_backup_stops_the_start_with_one_message(magoo, tmp_path):
    profile = tmp_path / "missing-mpv.toml"
    profile.write_text(MISSING_MPV_PROFILE)
    result = magoo("run", "--profile", profile, "--turns", "1")
    assert result.returncode == 1
    assert "Traceback" not in result.stdout + result.stderr
    why = "could not start [player] mpv: the mpv player needs '/nonexistent/mpv', which is not installed: sudo apt install mpv"
    # Once per channel: the story on stdout ends with what stopped the run, stderr says it for scripts.
    story = [line for line in result.stdout.splitlines() if "/nonexistent/mpv" in line]
    assert len(story) == 1 and story[0].endswith(f"] stopped after 0 turns: {why}"), result.stdout
    assert [line for line in result.stderr.splitlines() if "/nonexistent/mpv" in line] == [f"magoo stopped: {why}"]


@pytest.mark.parametrize(
    ("player", "no_output", "why"),
    [
        ({"mpv": "/nonexistent/mpv", "fallback": "none"}, False, "the mpv player needs '/nonexistent/mpv'"),
        ({}, True, "mpv cannot open the audio output 'auto'"),
    ],
    ids=["mpv-missing", "no-sound-output"],
)
async def test_a_player_that_cannot_start_gives_way_to_its_backup(player, no_output, why, tmp_path, monkeypatch, caplog):
    if no_output:
        for key, value in no_sound_environment(tmp_path).items():
            monkeypatch.setenv(key, value)
    backup = {"backend": "wav", "path": str(tmp_path / "reply-{n}.wav")}
    run = await run_with_faults(
        {"audio_source": LOOPING_SOURCE, "player": {"backend": "mpv", **player, "backup": backup}},
        magoo_mpv, turns=2, timeout=60,
    )
    assert_recovered(run)  # a backup that works is no error
    assert run.outcomes == [Outcome.OK, Outcome.OK]
    assert run.engine.player.spec.section == "[player.backup]"
    assert why in run.engine.player.replaced
    assert sorted(p.name for p in tmp_path.glob("reply-*.wav")) == ["reply-1.wav", "reply-2.wav"]
    (warning,) = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING and "backup" in r.getMessage()]
    assert why in warning and "using [player.backup] wav instead" in warning
    assert not logged_tracebacks(caplog.records)


# ---- 6: an actuator's hook raises, or never returns ----------------------------------------------


class BrokenLights:
    """An actuator plugin whose LED ring fell off the bus: its wake and mouth hooks raise."""

    @staticmethod
    @hookimpl
    def magoo_on_wake(wake):
        raise RuntimeError("LED ring unplugged")

    @staticmethod
    @hookimpl
    def magoo_on_speak_chunk(level):
        raise OSError("I2C write to 0x3c failed")


class StuckLights:
    """An actuator plugin whose async wake hook never returns (a network LED controller gone quiet)."""

    @staticmethod
    @hookimpl
    async def magoo_on_wake(wake):
        await asyncio.Event().wait()


#: opens with the voice (up to 30°) and nods the other way (-20°) on the wake word
MOUTH = {"backend": "servo", "pin": 17, "pin_factory": "mock", "min_angle": -30, "wake": {"angle": -20, "seconds": 0.3}}


def servo_config(spec: dict[str, Any]) -> ServoConfig:
    return ServoConfig.model_validate({k: v for k, v in spec.items() if k != "backend"})


def angle_of(state: float, config: ServoConfig) -> float:
    """The angle a PWM duty cycle (a mock pin's state) commands."""
    share = (state * config.frame_width - config.min_pulse_width) / (config.max_pulse_width - config.min_pulse_width)
    return config.angle_at_min_pulse + share * (config.angle_at_max_pulse - config.angle_at_min_pulse)


async def run_beside_a_servo(plugin: object, **engine: Any) -> tuple[FaultRun, list[float]]:
    """Two turns with a speaking tone, the plugin and a servo mouth on mock pins; the angles it was sent."""
    config = servo_config(MOUTH)
    with pins.shared_factory(config) as factory:  # held, so the pin's history outlives the run
        run = await run_with_faults(
            {"audio_source": LOOPING_SOURCE, "tts": {"backend": "tone", "realtime": True}, "actuators": [MOUTH],
             "engine": engine},
            plugin, magoo_servo, turns=2, timeout=60,
        )
        pin = factory.pin(17)
    return run, [angle_of(s.state, config) for s in pin.states if s.state]


async def test_actuator_hooks_that_raise_are_reported_once_each_and_the_servo_beside_them_moves():
    run, angles = await run_beside_a_servo(BrokenLights)
    failures = assert_recovered(run, role="plugin", errors=2)
    assert run.outcomes == [Outcome.OK, Outcome.OK]
    assert sorted(f.message for f in failures) == [
        "plugin BrokenLights: magoo_on_speak_chunk raised OSError: I2C write to 0x3c failed",
        "plugin BrokenLights: magoo_on_wake raised RuntimeError: LED ring unplugged",
    ]
    assert len(run.probe.of("wake")) == 2 and len(run.probe.of("speak_chunk")) > 20  # raised on every one
    assert min(angles) == pytest.approx(-20) and max(angles) > 20 and angles[-1] == pytest.approx(0)  # nodded, spoke, rested


async def test_an_actuator_hook_that_never_returns_is_left_behind_after_hook_timeout(caplog):
    run, angles = await run_beside_a_servo(StuckLights, hook_timeout=0.3)
    assert_recovered(run)
    assert run.outcomes == [Outcome.OK, Outcome.OK]
    slow = [r.getMessage() for r in caplog.records if "still running after 0.3 s" in r.getMessage()]
    # said once: the second wake call goes straight to the background while the first still hangs
    assert slow == ["plugin StuckLights: magoo_on_wake is still running after 0.3 s; carrying on without it"]
    assert min(angles) == pytest.approx(-20) and max(angles) > 20


class StuckMouthLights:
    """An actuator plugin whose async hook for every level update of the voice never returns."""

    def __init__(self) -> None:
        self.calls: list[asyncio.Future] = []
        self.left_running_at_speak_end: list[int] = []

    @hookimpl
    def magoo_on_speak_chunk(self, level):
        self.calls.append(asyncio.get_running_loop().create_future())  # awaitable, never set
        return self.calls[-1]

    @hookimpl
    def magoo_on_speak_end(self):
        self.left_running_at_speak_end.append(sum(not call.done() for call in self.calls))


async def test_a_hook_that_hangs_on_every_level_update_neither_piles_up_nor_holds_the_reply_back(caplog):
    # Waiting hook_timeout (2 s) for each of the ~50 level updates of each reply would keep the
    # microphone muted for minutes and overrun the run's 60 s guard; only the first call is waited for.
    lights = StuckMouthLights()
    run, angles = await run_beside_a_servo(lights, hook_timeout=2.0)
    assert_recovered(run)
    assert run.outcomes == [Outcome.OK, Outcome.OK]
    assert len(lights.calls) == len(run.probe.of("speak_chunk")) > 20  # every update still reached it
    assert all(0 < running <= MAX_SLOW_CALLS for running in lights.left_running_at_speak_end)
    said = [r.getMessage() for r in caplog.records if r.name == "magoo.plugins"]
    assert said == [
        "plugin StuckMouthLights-1: magoo_on_speak_chunk is still running after 2.0 s; carrying on without it",
        f"plugin StuckMouthLights-1: {MAX_SLOW_CALLS} of its hook calls are still running; cancelling the oldest ones so they do not pile up",
    ]
    assert max(angles) > 20  # the servo beside it moved with the voice


# ---- 7: the GPIO daemon is missing, or the servo stops answering ------------------------------------


async def test_a_servo_without_its_gpio_daemon_is_left_out_with_one_message_and_the_assistant_speaks(caplog):
    with socket.socket() as probe:  # a port nothing listens on: the daemon is not running
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    servo = {"backend": "servo", "pin": 18, "pin_factory": "pigpio", "pigpio_port": port}
    run = await run_with_faults({"actuators": [servo]}, magoo_servo, turns=1, timeout=30)
    (failure,) = assert_recovered(run, role="actuators", errors=1)
    assert f"cannot reach the pigpio daemon at localhost:{port}: start it with `sudo systemctl start pigpiod`" in (
        failure.message
    )
    assert not failure.retryable and run.engine.actuators == []
    assert not logged_tracebacks(caplog.records)
    assert run.engine.player.last_instance.plays, "the reply was spoken"


class FailingWrites:
    """Stands in for the gpiozero servo once the pigpio connection is lost: every move raises."""

    def __init__(self, real: Any) -> None:
        self._real = real

    value = property(lambda self: self._real.value)

    @property
    def angle(self) -> float | None:
        return self._real.angle

    @angle.setter
    def angle(self, value: float) -> None:
        raise OSError("pigpio connection lost")

    def detach(self) -> None:
        self._real.detach()

    def close(self) -> None:
        self._real.close()


async def lose_the_servo_after_the_first_turn(engine: Engine, probe: TimedProbe) -> None:
    await probe.wait_for("turn_end")
    servo = engine.actuators[0].instance
    servo.device = FailingWrites(servo.device)


async def run_losing_the_servo() -> FaultRun:
    return await run_with_faults(
        {"audio_source": LOOPING_SOURCE, "tts": {"backend": "tone", "realtime": True},
         "actuators": [{"backend": "servo", "pin": 18, "pin_factory": "mock"}]},
        magoo_servo, fault=lose_the_servo_after_the_first_turn, turns=3, timeout=60,
    )


async def test_a_servo_whose_writes_start_failing_stops_moving_and_the_turns_go_on(caplog):
    run = await run_losing_the_servo()
    assert_recovered(run, errors=len(run.failures()))  # reported or not: the test below asks for a report
    assert run.outcomes == [Outcome.OK, Outcome.OK, Outcome.OK]
    servo = run.engine.actuators[0].last_instance
    assert servo.stats()["broken"] == 1
    (warning,) = [r.getMessage() for r in caplog.records if r.getMessage().startswith("servo GPIO18 stopped")]
    assert warning.startswith("servo GPIO18 stopped: writing to it failed (OSError: pigpio connection lost)")
    assert not logged_tracebacks(caplog.records)


async def test_a_servo_whose_writes_start_failing_is_reported_through_magoo_on_error():
    run = await run_losing_the_servo()
    (failure,) = [f for f in run.failures() if f.role in ("actuators", "plugin")]
    assert "GPIO18" in failure.message and "pigpio connection lost" in failure.message


# ---- 8: the wake detector raises inside process() ----------------------------------------------------


class BreakingWakeDetector(ScriptedWakeDetector):
    """The scripted detector, whose first instance breaks for good at its 5th frame (a corrupted
    native model): every process() from then on raises. A fresh instance works."""

    name: ClassVar[str] = "breaking"
    instances: ClassVar[int] = 0

    def __init__(self, config: ScriptedWakeDetector.Config) -> None:
        super().__init__(config)
        type(self).instances += 1
        self.broken = type(self).instances == 1
        self.frames = 0

    def process(self, chunk):
        self.frames += 1
        if self.broken and self.frames >= 5:
            raise RuntimeError("model state corrupted")
        return super().process(chunk)


class BreakingWakePlugin:
    @staticmethod
    @hookimpl
    def magoo_register_wake_detectors(register):
        register(BreakingWakeDetector)


async def test_a_wake_detector_raising_in_process_is_reported_restarted_and_wakes_again():
    BreakingWakeDetector.instances = 0
    run = await run_with_faults(
        {"engine": FAST_RESTARTS, "audio_source": wake_turns(2, lead=1.5, gap=1.5, tail=8.0),
         "wake": {"backend": "breaking", "level": 0.2}},
        BreakingWakePlugin, turns=2, timeout=60,
    )
    failures = assert_recovered(
        run, role="wake", errors=3, message_has=["[wake] breaking: RuntimeError: model state corrupted (a bug in"]
    )
    assert all(f.turn is None for f in failures)
    assert run.outcomes == [Outcome.OK, Outcome.OK]
    assert run.engine.wake.restarts == 1 and BreakingWakeDetector.instances == 2
    assert run.probe.of("recovered")[0]["role"] == "wake"


# ---- 9: the responder, the TTS or the player never returns -----------------------------------------


class HangingResponder(Backend):
    """Its first respond() never returns (a service that accepted the request and went silent)."""

    name: ClassVar[str] = "hanging"

    class Config(BackendConfig):
        pass

    calls: ClassVar[int] = 0

    async def respond(self, transcript):
        type(self).calls += 1
        if type(self).calls == 1:
            await asyncio.Event().wait()
        return Reply(f"You said: {transcript.text}")


class HangingSpeech(ToneSpeech):
    """The tone TTS, whose first synthesize() never yields anything."""

    name: ClassVar[str] = "hanging"
    calls_made: ClassVar[int] = 0

    async def synthesize(self, text):
        type(self).calls_made += 1
        if type(self).calls_made == 1:
            await asyncio.Event().wait()
        async for chunk in super().synthesize(text):
            yield chunk


class HangingPlayer(Backend):
    """Takes the whole first reply, reports it played, and then never returns from play()."""

    name: ClassVar[str] = "hanging"
    plays: ClassVar[int] = 0

    class Config(BackendConfig):
        pass

    async def play(self, audio, progress):
        type(self).plays += 1
        async for chunk in audio:
            progress.played(0.1, chunk.duration)
        if type(self).plays == 1:
            await asyncio.Event().wait()

    async def stop(self):
        pass


class HangingPlugin:
    @staticmethod
    @hookimpl
    def magoo_register_responders(register):
        register(HangingResponder)

    @staticmethod
    @hookimpl
    def magoo_register_tts(register):
        register(HangingSpeech)

    @staticmethod
    @hookimpl
    def magoo_register_players(register):
        register(HangingPlayer)


@pytest.mark.parametrize(
    ("role", "message"),
    [
        pytest.param("responder", "[responder] hanging: gave no reply within 1 s", id="responder"),
        pytest.param("tts", "[tts] hanging: gave no audio within 1 s", id="tts"),
        pytest.param("player", "[player] hanging: showed no progress for 1 s while playing the reply", id="player"),
    ],
)
async def test_a_backend_that_never_returns_ends_its_turn_after_reply_timeout_unmuted(role, message, caplog):
    HangingResponder.calls = HangingSpeech.calls_made = HangingPlayer.plays = 0
    run = await run_with_faults(
        {"engine": {"reply_timeout": 1.0, "shutdown_timeout": 1.0}, "audio_source": LOOPING_SOURCE,
         role: {"backend": "hanging"}},
        HangingPlugin, turns=2, timeout=8,
    )
    (failure,) = assert_recovered(run, role=role, errors=1, message_has=[message])
    assert run.outcomes == [Outcome.ERROR, Outcome.OK] and failure.turn == 1
    assert not logged_tracebacks(caplog.records)
