"""Full duplex in a run: the engine with echo cancellation on a real echo path.

PyAudio captures the virtual microphone, which hears the virtual speaker through PulseAudio's
module-loopback (60 ms, full level) plus the "user" (a recording played into it); openWakeWord
scores "hey jarvis", pocketsphinx hears the command, espeak-ng speaks through mpv. The reply itself
says "hey Jarvis". And the fallback: a canceller that cannot load mutes as before, with one line.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import time

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


# Real time: two wake words said into the virtual microphone and 9 s of a reply (about 25 s;
# a command pocketsphinx missed, or a wake word missed over the reply, on a loaded machine is said again).
@pytest.mark.timeout(200)
async def test_the_wake_word_over_a_reply_interrupts_it_and_the_next_turn_hears_the_user(fresh_virtual_audio: VirtualAudio, caplog):
    audio = fresh_virtual_audio
    moments: dict[str, float] = {}

    async def barge(engine, probe: TimedProbe) -> None:
        await audio_flowing(engine, 1.0)
        moments["reply"] = await first_reply(probe, audio, playing)
        # the canceller measures the delay and converges on the reply's first seconds (the first
        # reply after start is the slowest); the reply says "hey Jarvis" 5-7 s in
        await asyncio.sleep(9.0)
        moments["user"] = time.monotonic()
        for _ in range(3):  # the user's wake word over the reply; a loaded machine may miss it: say it again
            playing.append(audio.play(HEY_JARVIS, wait=False))
            await asyncio.to_thread(playing[-1].wait)
            if any(name == "speak_end" for moment, name, _ in probe.timed if moment >= moments["user"]):
                break  # cut (or, failing the test below, over)
        after = await probe.wait_for("turn_end", lambda a: a["timeline"].outcome is not Outcome.INTERRUPTED, after=moments["user"], timeout=40)
        moments["next"] = after["timeline"].turn
        engine.request_stop()

    with echo_path(audio, 150) as playing, caplog.at_level(logging.INFO, logger="magoo.echo"):
        run = await run_with_faults(
            desk(echo_cancel={"method": "speex", "reference": "speaker.monitor"}),
            magoo_pyaudio, magoo_openwakeword, magoo_pocketsphinx, magoo_espeak, magoo_mpv,
            fault=barge, timeout=150,
        )

    assert not logged_tracebacks(caplog.records)
    by_turn = {t.turn: t for t in run.result.timelines}
    replied = [t for t in run.result.timelines if t.first_audio is not None and t.outcome is Outcome.INTERRUPTED]
    assert len(replied) == 1, run.outcomes  # the reply was cut by the user's wake word
    nxt = by_turn[moments["next"]]
    assert nxt.turn == replied[0].turn + 1 and nxt.outcome is Outcome.OK, run.outcomes
    heard = [a["transcript"].text for a in run.probe.of("transcript") if a["transcript"].final]
    assert heard[-1] == "what time is it"  # the next turn heard the user
    wakes = [m for m in run.probe.moments("wake") if m >= moments["reply"]]
    assert len(wakes) == 1 and wakes[0] >= moments["user"]  # the reply's own "hey Jarvis" woke nothing
    assert not any(muted for _, muted in run.mutes)  # open all along: echo cancellation ran
    assert run.engine.speaker.echo.status()["measures"] >= 2
    assert any("echo delay measured" in r.getMessage() for r in caplog.records)


async def test_a_canceller_that_cannot_load_mutes_as_before_with_one_line(monkeypatch, caplog):
    monkeypatch.setitem(sys.modules, "livekit", None)  # method webrtc without its wheel
    overrides = {
        "audio_source": wake_turns(2, gap=2.0),
        "engine": {"mute_pre": 0.1, "mute_post": 0.2, "echo_cancel": {"method": "webrtc"}},
    }
    with caplog.at_level(logging.INFO, logger="magoo.echo"):
        engine, probe, result = await run_engine(overrides, turns=2)

    assert [t.outcome for t in result.timelines] == [Outcome.OK, Outcome.OK]
    lines = [r.getMessage() for r in caplog.records if r.name == "magoo.echo"]
    assert len(lines) == 1 and lines[0].startswith("echo cancellation off, the microphone is muted while speaking")
    assert probe.muted_during("speak_start") == [True, True]  # half duplex, as without it
    assert probe.muted_during("turn_end") == [False, False] and not engine.muted  # and never left muted
