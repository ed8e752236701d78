"""[wake] wyoming against openWakeWord's real models behind the wyoming package's server classes
(openwakeword_server.py says why not wyoming-openwakeword itself), on recorded wake words."""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np
import pytest

import magoo_wyoming
from magoo_core.audio import read_wav
from magoo_core.testing import run_profile
from magoo_wyoming.clients.wake import WyomingWakeDetector

from clients_helpers import chunks, quiet
from openwakeword_server import OpenWakeWordServer
from wyoming_servers import Script, ScriptedServer

ROOT = Path(__file__).resolve().parents[3]
HEY_JARVIS_QUESTION = ROOT / "examples" / "audio" / "hey_jarvis_what_time_is_it.wav"
WAKE = ROOT / "tests" / "data" / "wake"
NEGATIVE = WAKE / "openWakeWord" / "turn_on_the_office_lights_test_clip.wav"


def pcm(path: Path) -> bytes:
    fmt, audio = read_wav(path)
    assert (fmt.sample_rate, fmt.channels) == (16000, 1), path
    return audio


async def detections(server: OpenWakeWordServer, audio: bytes, names: list[str]) -> tuple[list, list]:
    """Frames fed as the wake worker does (its thread, one at a time), yielding to the loop between
    them as a live microphone would; then quiet frames, as a microphone goes on delivering, until
    the server has scored ten frames past the clip (bounded: scoring is slow on a busy machine)."""
    async with WyomingWakeDetector(WyomingWakeDetector.Config(uri=server.uri, names=names)) as detector:
        frames = chunks(audio)
        events = []
        for frame in frames:
            events.append(await asyncio.to_thread(detector.process, frame))
            await asyncio.sleep(0.002)
        for frame in chunks(quiet(30.0)):
            events.append(await asyncio.to_thread(detector.process, frame))
            await asyncio.sleep(0.04)
            if server.scored >= len(frames) + 10:
                break
    return [event for event in events if event is not None], frames


@pytest.mark.parametrize(("clip", "name"), [
    ("wyoming-openwakeword/hey_jarvis.wav", "hey_jarvis"),
    ("wyoming-openwakeword/okay_nabu.wav", "okay_nabu"),
])
async def test_a_recorded_wake_word_is_detected_once_at_its_frame(clip, name):
    audio = quiet(1.0) + pcm(WAKE / clip) + quiet(1.0)
    async with OpenWakeWordServer() as server:
        found, frames = await detections(server, audio, [name])
    assert [event.label for event in found] == [name]
    # the timestamp is that of a frame of the clip (not of the frame being fed when it came back)
    clip_frames = [f.timestamp for f in frames[12:-12]]
    assert found[0].timestamp in clip_frames
    assert server.received[:3] == ["describe", "detect", "audio-start"]


async def test_speech_that_is_not_the_wake_word_is_not_detected():
    async with OpenWakeWordServer() as server:
        found, _ = await detections(server, pcm(NEGATIVE), ["hey_jarvis"])
    assert found == []


async def test_a_turn_woken_by_a_remote_openwakeword_hears_the_whole_command():
    """"Hey Jarvis, what time is it?" from a recording: openWakeWord on the server wakes magoo, and
    the command after it reaches the speech-to-text server whole."""
    async with OpenWakeWordServer() as wake, ScriptedServer(Script(transcripts=["what time is it"])) as stt:
        overrides = {
            "audio_source": {"backend": "wav", "path": str(HEY_JARVIS_QUESTION), "realtime": True, "lead_silence": 0.5, "tail_silence": 1.5},
            "wake": {"backend": "wyoming", "uri": wake.uri, "names": ["hey_jarvis"]},
            "stt": {"backend": "wyoming", "uri": stt.uri},
        }
        record = await run_profile(overrides, plugins=[magoo_wyoming], turns=1, timeout=60)
    assert record.failures == []
    assert [event["wake"].label for event in record.of("wake")] == ["hey_jarvis"]
    assert record.transcripts == ["what time is it"]
    sent = stt.audio_bytes / 32000
    assert sent > 0.8, f"only {sent:.2f} s of the command reached the speech-to-text server"
