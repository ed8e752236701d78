"""Speaking, end to end: the engine, Fish Audio (the loopback server) and mpv on a real PulseAudio sink.

Each test runs real turns (scripted microphone, wake and STT; an echo responder), records the
speaker's monitor, and samples the engine's mute state every 10 ms, so "the microphone was
muted while the assistant spoke" is checked against what really came out of the speaker.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from typing import Any

import numpy as np
import pytest

import magoo_fish
import magoo_mpv
from magoo_core import AudioFormat, Outcome
from magoo_core.audio import convert, samples
from magoo_core.engine import Engine
from magoo_core.testing import build_plugins, make_profile
from magoo_core.testing.signals import best_match
from magoo_fish.loopback import LoopbackFishServer
from magoo_fish.loopback.audio import speak

from probe import Probe, wake_turns

pytestmark = pytest.mark.usefixtures("virtual_audio")

KEY = "fish-test-key-0123456789abcdefWXYZ"
ENV = {"FISH_API_KEY": KEY}
RATE = 16000
SHORT_REPLY = "It is twelve o'clock. Time for lunch."
LONG_REPLY = " ".join(
    [
        "Here is the weather for today.",
        "In the morning it will be cloudy with a light breeze from the west.",
        "Around noon the sun comes out and it gets warmer.",
        "In the evening there may be a short shower, so take an umbrella.",
    ]
)


def profile(server: LoopbackFishServer, reply: str, source: dict[str, Any], **overrides: Any) -> dict[str, Any]:
    return {
        "audio_source": source,
        "engine": {"mute_pre": 0.2, "mute_post": 0.5, **overrides.pop("engine", {})},
        "responder": {"backend": "echo", "template": reply},
        "tts": {"backend": "fish", "api_key": {"env": "FISH_API_KEY"}, "base_url": server.base_url, "read_timeout": 5.0},
        "player": {"backend": "mpv"},
        **overrides,
    }


class Run:
    """One recorded run: the probe's events, the mute samples and the speaker's recording."""

    def __init__(self, engine: Engine, probe: Probe, result: Any, mutes: list[tuple[float, bool]], recording: Any) -> None:
        self.engine = engine
        self.probe = probe
        self.result = result
        self.mutes = mutes
        self.recording = recording
        self.audio = recording.samples()

    def muted_between(self, start: float, end: float) -> list[bool]:
        return [muted for moment, muted in self.mutes if start <= moment <= end]

    def sound(self, threshold: float = 300.0) -> tuple[float, float]:
        """Monotonic times of the first and last loud 10 ms of the recording."""
        data = self.audio[: len(self.audio) // 160 * 160].astype(np.float64).reshape(-1, 160)
        loud = np.nonzero(np.sqrt((data * data).mean(axis=1)) > threshold)[0]
        assert loud.size, "nothing came out of the speaker"
        return self.recording.moment_of(loud[0] * 160), self.recording.moment_of((loud[-1] + 1) * 160)


async def run(virtual_audio, overrides: dict[str, Any], *, max_turns: int, on_event=None) -> Run:
    manager = build_plugins(magoo_fish, magoo_mpv)
    engine = Engine(make_profile(overrides, manager, environ=ENV), manager, max_turns=max_turns)
    probe = Probe(engine)
    if on_event is not None:
        original = probe._add

        def add(event: str, **arguments: Any) -> None:
            original(event, **arguments)
            on_event(engine, event, arguments)

        probe._add = add
    manager.pm.register(probe, name="probe")
    mutes: list[tuple[float, bool]] = []

    async def sample() -> None:
        while True:
            mutes.append((time.monotonic(), engine.muted))
            await asyncio.sleep(0.01)

    with virtual_audio.record() as recording:
        await asyncio.to_thread(recording.wait_for_data)
        sampler = asyncio.create_task(sample())
        try:
            result = await asyncio.wait_for(engine.run(), 60)
        finally:
            sampler.cancel()
        await asyncio.sleep(0.3)
        return Run(engine, probe, result, mutes, recording)


async def spoken(server: LoopbackFishServer) -> list[np.ndarray]:
    """What the loopback server spoke for each request, at 16 kHz."""
    return [samples(convert(await speak(record.text), AudioFormat(RATE))) for record in server.requests]


async def test_a_fish_reply_plays_through_mpv_with_the_microphone_muted_around_it(virtual_audio):
    async with LoopbackFishServer(KEY, realtime_factor=3.0) as server:
        result = await run(virtual_audio, profile(server, SHORT_REPLY, wake_turns(1, gap=4.0)), max_turns=1)
        sentences = await spoken(server)
    (timeline,) = result.result.timelines
    assert timeline.outcome is Outcome.OK
    assert [r.text for r in server.requests] == ["It is twelve o'clock.", "Time for lunch."]

    # what came out is the reply: each sentence, in order, at its length (MP3 at 44.1 kHz, heard at 16 kHz)
    matches = [best_match(result.audio, sentence) for sentence in sentences]
    assert all(correlation > 0.8 for _, correlation in matches)
    assert matches[0][0] < matches[1][0]
    onset, offset = result.sound()
    reference_seconds = sum(len(sentence) for sentence in sentences) / RATE
    assert reference_seconds * 0.85 <= offset - onset <= reference_seconds * 1.15

    # half-duplex: muted at least mute_pre before the first sound, through the whole reply,
    # and until at least mute_post after the real end; unmuted when the turn ended
    first_muted = next(moment for moment, muted in result.mutes if muted)
    assert onset - first_muted >= 0.2 - 0.02
    assert all(result.muted_between(first_muted, offset + 0.45))
    assert result.probe.muted_during("turn_end") == [False]
    assert result.engine.muted is False

    # the envelope reached the speak-chunk event at 20–55 Hz while it spoke
    chunks = result.probe.of("speak_chunk")
    covered = sum(c["duration"] for c in chunks)
    assert 20 <= len(chunks) / covered <= 60
    assert covered >= offset - onset
    assert max(c["level"] for c in chunks) > 0.05


async def test_fish_breaking_off_mid_reply_is_reported_unmutes_and_the_next_turn_speaks(virtual_audio):
    async with LoopbackFishServer(KEY, realtime_factor=3.0) as server:
        server.drop_next(after_bytes=12000)
        result = await run(virtual_audio, profile(server, LONG_REPLY, wake_turns(2, gap=9.0)), max_turns=2)
    first, second = result.result.timelines
    assert first.outcome is Outcome.ERROR and second.outcome is Outcome.OK
    (failure,) = [a["failure"] for a in result.probe.of("error")]
    assert failure.role == "tts" and "broke off" in failure.message
    assert result.probe.muted_during("speak_start") == [True, True]
    assert result.probe.muted_during("turn_end") == [False, False]
    assert result.engine.muted is False


async def test_mpv_killed_mid_reply_is_reported_unmutes_and_the_next_turn_speaks(virtual_audio):
    killed: list[int] = []

    def kill_mpv_once(engine: Engine, event: str, arguments: dict) -> None:
        if event == "speak_chunk" and not killed:
            process = engine.player.last_instance._current
            killed.append(process.proc.pid)
            os.kill(process.proc.pid, signal.SIGKILL)

    async with LoopbackFishServer(KEY, realtime_factor=3.0) as server:
        result = await run(
            virtual_audio, profile(server, LONG_REPLY, wake_turns(2, gap=9.0)), max_turns=2, on_event=kill_mpv_once
        )
    first, second = result.result.timelines
    assert killed and first.outcome is Outcome.ERROR and second.outcome is Outcome.OK
    (failure,) = [a["failure"] for a in result.probe.of("error")]
    assert failure.role == "player" and "mpv was killed by SIGKILL while playing" in failure.message
    assert result.probe.muted_during("turn_end") == [False, False]
    assert result.engine.muted is False


async def test_barge_in_silences_mpv_at_once_and_unmutes(virtual_audio):
    source = wake_turns(1, gap=2.5)
    source["segments"] += [  # the wake word again while the long reply is playing, then a command
        {"seconds": 0.4, "tone": 660.0, "amplitude": 0.5},
        {"seconds": 0.2},
        {"seconds": 0.6, "tone": 440.0, "amplitude": 0.3},
        {"seconds": 4.0},
    ]
    async with LoopbackFishServer(KEY, realtime_factor=3.0) as server:
        result = await run(
            virtual_audio,
            profile(server, LONG_REPLY, source, engine={"barge_in": True}, responder={"backend": "echo", "template": LONG_REPLY}),
            max_turns=2,
        )
    first = result.result.timelines[0]
    assert first.outcome is Outcome.INTERRUPTED
    assert result.probe.of("speak_end")[0]["interrupted"] is True
    wakes = result.probe.of("wake")
    assert len(wakes) == 2
    barge_in = wakes[1]["wake"].timestamp
    # the long reply was cut: nothing of turn 1 is heard from 0.3 s after the barge-in until turn 2 speaks
    turn_two_sound = result.result.timelines[1].first_audio or float("inf")
    start = result.recording.index_at(barge_in + 0.3)
    end = result.recording.index_at(min(turn_two_sound, barge_in + 1.0))
    quiet = result.audio[start:end].astype(np.float64)
    assert quiet.size and np.sqrt(np.mean(quiet * quiet)) < 100
    assert result.probe.muted_during("turn_end")[0] is False
    assert result.engine.muted is False


async def test_a_rejected_key_is_one_clear_message_and_the_assistant_keeps_listening(virtual_audio):
    async with LoopbackFishServer("a-different-key") as server:
        result = await run(virtual_audio, profile(server, SHORT_REPLY, wake_turns(2, gap=2.0)), max_turns=2)
    assert [t.outcome for t in result.result.timelines] == [Outcome.ERROR, Outcome.ERROR]
    messages = [a["failure"].message for a in result.probe.of("error")]
    assert len(messages) == 2  # one per turn, not one per retry
    assert all("HTTP 401" in m and "FISH_API_KEY" in m and KEY not in m for m in messages)
    assert len(server.requests) == 2  # one per turn: a rejected key is not retried
    assert result.engine.muted is False
