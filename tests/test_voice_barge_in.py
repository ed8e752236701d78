"""Barge-in by voice on a real echo path: the user speaking over a reply ends it, without the wake word.

The set-up of tests/test_echo_cancel_duplex.py: PyAudio captures the virtual microphone, which
hears the virtual speaker through PulseAudio's module-loopback (60 ms, full level) plus the "user"
(a recording played into it); speex cancels the echo, openWakeWord scores "hey jarvis", pocketsphinx
hears the command, espeak-ng speaks through mpv, and Silero VAD listens for the user's voice.
"""

from __future__ import annotations

import asyncio
import logging
import time
import wave
from pathlib import Path

import numpy as np
import pytest

import magoo_espeak
import magoo_mpv
import magoo_openwakeword
import magoo_pocketsphinx
import magoo_pyaudio
from magoo_core import Outcome
from magoo_core.testing.virtual_audio import VirtualAudio

from echo_path import HEY_JARVIS, desk, echo_path, first_reply
from fault_helpers import TimedProbe, audio_flowing, logged_tracebacks, run_with_faults
from probe import run_engine, wake_turns

COMMAND_AT = 2.25  # seconds into HEY_JARVIS where "what time is it" begins (after the wake word)


def command_only(folder: Path) -> Path:
    """The recording's command without its wake word: the user says "what time is it" and nothing else."""
    with wave.open(str(HEY_JARVIS)) as clip:
        rate = clip.getframerate()
        pcm = np.frombuffer(clip.readframes(clip.getnframes()), "<i2")[int(COMMAND_AT * rate):]
    path = folder / "what_time_is_it.wav"
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(np.concatenate([np.zeros(rate // 2, "<i2"), pcm]).tobytes())
    return path


# Real time: a wake word, 9 s of a reply, the user's command over it, and the whole next reply
# (about 45 s; a command pocketsphinx missed on a loaded machine is said again).
@pytest.mark.timeout(240)
async def test_the_user_speaking_over_a_reply_ends_it_and_the_next_turn_hears_the_command(
    fresh_virtual_audio: VirtualAudio, tmp_path, caplog
):
    audio = fresh_virtual_audio
    command = command_only(tmp_path)
    moments: dict[str, float] = {}

    async def speak_over(engine, probe: TimedProbe) -> None:
        await audio_flowing(engine, 1.0)
        moments["reply"] = await first_reply(probe, audio, playing)
        # the canceller measures the delay and converges on the reply's first seconds; those 9 s
        # of echo, and the whole next reply, must cut nothing
        await asyncio.sleep(9.0)
        moments["user"] = time.monotonic()
        playing.append(audio.play(command, wait=False))
        nxt = (await probe.wait_for("wake", after=moments["user"], timeout=20))["turn"]
        await probe.wait_for("turn_end", lambda a: a["timeline"].turn == nxt, timeout=60)  # the whole next reply
        engine.request_stop()

    with echo_path(audio, 200) as playing, caplog.at_level(logging.INFO, logger="magoo"):
        run = await run_with_faults(
            desk(barge_in="voice", echo_cancel={"method": "speex", "reference": "speaker.monitor"}),
            magoo_pyaudio, magoo_openwakeword, magoo_pocketsphinx, magoo_espeak, magoo_mpv,
            fault=speak_over, timeout=200,
        )

    assert not logged_tracebacks(caplog.records)
    replies = [t for t in run.result.timelines if t.first_audio is not None]
    assert [t.outcome for t in replies] == [Outcome.INTERRUPTED, Outcome.OK], run.outcomes  # cut once, by the user
    assert replies[0].error == "barge-in"
    cut = [m for m, name, a in run.probe.timed if name == "speak_end" and a["interrupted"]]
    assert len(cut) == 1 and cut[0] >= moments["user"]  # 0 false barge-ins: the echo before it cut nothing
    wakes = [a["wake"] for m, name, a in run.probe.timed if name == "wake" and m >= moments["reply"]]
    assert [w.label for w in wakes] == ["voice"]  # the next turn started without the wake word
    heard = [a["transcript"].text for m, name, a in run.probe.timed if name == "transcript" and m >= moments["user"] and a["transcript"].final]
    assert heard == ["what time is it"]  # ... and heard the user's command from its first word
    assert run.engine.wake_worker.voice.count == 1
    assert not any(muted for _, muted in run.mutes)  # the microphone open all along


async def test_with_the_microphone_muted_while_speaking_one_line_says_only_the_wake_word_interrupts(caplog):
    overrides = {"audio_source": wake_turns(2, gap=2.0), "engine": {"mute_pre": 0.1, "mute_post": 0.2, "barge_in": "voice"}}
    with caplog.at_level(logging.WARNING, logger="magoo"):
        engine, probe, result = await run_engine(overrides, turns=2)

    assert [t.outcome for t in result.timelines] == [Outcome.OK, Outcome.OK]  # nothing cut
    lines = [r.getMessage() for r in caplog.records if "barge_in" in r.getMessage()]
    assert lines == ['barge_in = "voice" needs the microphone open while speaking (no [engine.echo_cancel]): '
                     "only the wake word interrupts; turn on [engine.echo_cancel]"]
    assert probe.muted_during("speak_start") == [True, True] and not engine.muted
    assert engine.wake_worker.voice.count == 0
