"""Remote wake (``wake = "remote"``): the microphone streams to Home Assistant while magoo listens
and Home Assistant's wake word engine detects, driven by the Home Assistant stand-in on the
``wyoming`` client (``run-pipeline`` from the wake stage, ``detect``, ``detection``, the same
stream as the command, ``restart_on_end``), through magoo's real engine; failover of the wake role
to ``[wake.backup]``, and no audio reaching Home Assistant while it has paused the satellite.

The scripted microphone plays a short tone for each wake word; the stand-in's wake engine takes a
loud chunk for the wake word, the backup wake detector a loud frame. The microphone runs in real
time (a few seconds a test): Home Assistant is a peer on a socket, and what it hears, and when,
is the point (what streams while it listens, is paused, or the reply plays).
"""

from __future__ import annotations

import asyncio

import pytest

from magoo_core import Outcome, ProfileError
from magoo_core.testing import build_plugins, make_profile
from magoo_core.wake_worker import LATE_DETECTION

import magoo_wyoming
from satellite_helpers import ANSWER, HEARD, run_satellite, satellite_profile

BACKUP = "You said: heard by the backup"
#: the microphone: 1 s of quiet, then per turn a 0.3 s tone (the wake word) and ``gap`` s of quiet
LEAD, TONE = 1.0, 0.3


def remote_profile(turns: int, *, gap: float = 1.5, lead: float = LEAD, **config) -> dict:
    options = {"gap": gap, "command": TONE, "lead": lead}
    profile = satellite_profile(turns, source_options=options, wake="remote", **config)
    profile["wake"] = {"service": "house", "backup": {"backend": "scripted", "level": 0.05}}
    return profile


def tone_at(turn: int, gap: float = 1.5, lead: float = LEAD) -> float:
    return lead + turn * (TONE + gap)


def audio_seconds(ha, since: float = 0.0, until: float = float("inf")) -> float:
    return sum(len(e.payload) / 32000 for t, e in ha.received if e.type == "audio-chunk" and since <= t <= until)


async def until(condition, timeout: float = 10.0) -> None:
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.01)


async def test_home_assistant_hears_the_wake_word_and_the_same_stream_is_the_command():
    async def connect(ha, engine):
        await ha.connect()
        await ha.timer("started", "t1", total_seconds=300, name="pasta")

    run = await run_satellite(remote_profile(2), connect, turns=2, ping_delay=0.2)
    ha = run.ha

    assert [t.outcome for t in run.result.timelines] == [Outcome.OK, Outcome.OK], run.result.failures
    # the satellite asked once, for a pipeline from the wake stage that Home Assistant restarts itself
    asked = [e for _, e in ha.received if e.type == "run-pipeline"]
    assert len(asked) == 1 and asked[0].data["start_stage"] == "wake" and asked[0].data["restart_on_end"] is True
    assert asked[0].data["end_stage"] == "tts"
    assert "detection" not in ha.types(), "the wake word is Home Assistant's to detect, not the satellite's"
    woke = [p for p in ha.pipelines if p.detection is not None]
    assert len(woke) == 2 and all(p.played_at is not None for p in woke)
    # magoo's turns: woken by Home Assistant's detection, answered with its transcript and sound
    assert [a["wake"].label for a in run.events.of("wake")] == ["hey_magoo", "hey_magoo"]
    assert [a["transcript"].text for a in run.events.of("transcript") if a["transcript"].final] == [HEARD] * 2
    assert [a["reply"].text for a in run.events.of("reply")] == [ANSWER] * 2
    # the detection's timestamp (ms into Home Assistant's wake stage) is mapped back to the capture
    # time of that audio: before the detection reached magoo, by less than the engine keeps
    for wake, emitted in zip((a["wake"] for a in run.events.of("wake")), run.events.when("wake"), strict=True):
        assert 0 < emitted - wake.timestamp < LATE_DETECTION
    # each moment of the microphone reached Home Assistant once (the turn's pre-roll was not sent again)
    total = LEAD + 2 * (TONE + 1.5)
    assert audio_seconds(ha) <= total + 0.1, f"{audio_seconds(ha):.2f} s of audio sent for {total:.2f} s captured"
    # the service serves [wake] and [stt]: its story is told once a turn, not once a role
    assert run.story.count("timers: pasta") == 2, run.story
    # the local wake words are not offered to Home Assistant: it detects with its own
    assert ha.info is not None and ha.info.wake == [] and not ha.info.satellite.active_wake_words
    assert not run.muted_at_end


async def test_the_wake_role_fails_over_to_the_backup_and_back_with_home_assistant():
    async def come_and_go(ha, engine):
        await asyncio.sleep(tone_at(0) + 0.8)  # after the first turn (the backup's)
        await ha.connect()
        await until(lambda: any(p.played_at for p in ha.pipelines))  # Home Assistant answered the second
        await asyncio.sleep(0.2)
        await ha.disconnect()  # the third is the backup's again

    run = await run_satellite(remote_profile(3), come_and_go, turns=3, ping_delay=0.2)

    assert [t.outcome for t in run.result.timelines] == [Outcome.OK] * 3, run.result.failures
    assert [a["reply"].text for a in run.events.of("reply")] == [BACKUP, ANSWER, BACKUP]
    assert run.events.of("error") == [], "the backups answering is no error"
    assert len([p for p in run.ha.pipelines if p.detection]) == 1
    satellite = run.engine.backends.services["house"].last_instance
    assert satellite.stats()["remote_wakes"] == 1
    assert not run.muted_at_end


async def test_no_audio_reaches_home_assistant_while_it_has_paused_the_satellite():
    moments: dict[str, float] = {}

    async def pause_then_resume(ha, engine):
        await ha.connect()
        await until(lambda: audio_seconds(ha) > 0.2)  # its wake stage hears the microphone
        moments["paused"] = asyncio.get_running_loop().time()
        await ha.pause()
        await asyncio.sleep(tone_at(0, lead=2.5) + 0.9 - (moments["paused"] - moments["start"]))  # the backup's turn
        # unmuted in Home Assistant: it connects again and runs the satellite (assist_satellite.py run())
        await ha.disconnect()
        moments["resumed"] = asyncio.get_running_loop().time()
        await ha.connect()

    moments["start"] = asyncio.get_running_loop().time()
    run = await run_satellite(remote_profile(2, lead=2.5), pause_then_resume, turns=2, ping_delay=0.2)
    ha = run.ha

    assert [t.outcome for t in run.result.timelines] == [Outcome.OK, Outcome.OK], run.result.failures
    assert [a["reply"].text for a in run.events.of("reply")] == [BACKUP, ANSWER]
    assert audio_seconds(ha, until=moments["paused"]) > 0.1, "audio streamed before the pause"
    # a chunk already written when the pause was sent may still arrive; nothing after that
    assert audio_seconds(ha, since=moments["paused"] + 0.25, until=moments["resumed"]) == 0
    assert audio_seconds(ha, since=moments["resumed"]) > 0.3, "streaming again once it runs the satellite"
    assert not run.muted_at_end


async def test_a_wake_stage_that_fails_is_asked_again_with_backoff_and_the_backups_answer_meanwhile(caplog):
    async def broken_then_fixed(ha, engine):
        await ha.connect()
        await asyncio.sleep(tone_at(0) + 0.5)
        ha.wake_error = None  # e.g. a wake word engine added to the pipeline

    run = await run_satellite(remote_profile(2, gap=3.0), broken_then_fixed, turns=2, ping_delay=0.2,
                              wake_error=("No wake word engine", "wake-engine-missing"))

    assert [t.outcome for t in run.result.timelines] == [Outcome.OK, Outcome.OK], run.result.failures
    assert [a["reply"].text for a in run.events.of("reply")] == [BACKUP, ANSWER]
    asked = [e for _, e in run.ha.received if e.type == "run-pipeline"]
    assert len(asked) >= 3, "asked again after each error (Home Assistant does not restart a failed pipeline)"
    assert "Home Assistant's wake word pipeline failed (Home Assistant: No wake word engine (wake-engine-missing))" in caplog.text
    assert not run.muted_at_end


@pytest.mark.parametrize("wake", ["local", "remote"])
async def test_without_a_speaker_the_pipeline_ends_at_handle_and_the_transcript_is_the_turn(wake):
    async def connect(ha, engine):
        await ha.connect()

    profile = remote_profile(1) if wake == "remote" else satellite_profile(1)
    profile.update(tts=None, player=None, responder=None)
    profile["stt"]["backup"] = {"backend": "scripted", "transcripts": ["heard by the backup"]}
    run = await run_satellite(profile, connect, turns=1, ping_delay=0.2)

    assert [t.outcome for t in run.result.timelines] == [Outcome.OK], run.result.failures
    assert run.ha.end_stage_seen[0] == "handle"
    assert [a["transcript"].text for a in run.events.of("transcript") if a["transcript"].final] == [HEARD]
    assert run.events.of("reply") == [] and "played" not in run.ha.types()
    assert "Home Assistant handled it" in run.story
    assert not run.muted_at_end


@pytest.mark.parametrize(("wake", "section", "expected"), [
    ("remote", {"backend": "scripted"}, 'wake = "remote" needs [wake] to name this service'),
    ("local", {"service": "house"}, '[wake] names this service, but its wake = "local"'),
])
def test_the_profile_says_when_wake_and_the_wake_section_disagree(wake, section, expected):
    profile = satellite_profile(1, wake=wake)
    profile["wake"] = section
    with pytest.raises(ProfileError) as caught:
        make_profile(profile, build_plugins(magoo_wyoming))
    assert any(expected in str(issue) for issue in caught.value.issues), caught.value.issues


async def test_barge_in_home_assistant_hears_the_wake_word_over_its_reply_and_the_new_turn_is_its(tmp_path):
    async def connect(ha, engine):
        await ha.connect()

    profile = remote_profile(2, gap=0.8)  # the second wake word comes while the first reply plays
    profile["engine"] = {**profile["engine"], "barge_in": True}
    profile["player"] = {"backend": "wav", "realtime": True, "path": str(tmp_path / "reply-{n}.wav")}
    run = await run_satellite(profile, connect, turns=2, ping_delay=0.2, answer_seconds=3.0)

    assert [t.outcome for t in run.result.timelines] == [Outcome.INTERRUPTED, Outcome.OK], run.result.failures
    assert run.result.timelines[0].error == "barge-in"
    woke = [p for p in run.ha.pipelines if p.detection is not None]
    assert len(woke) == 2, "Home Assistant's restarted wake stage heard the microphone while the reply played"
    assert woke[0].played_at is not None, "the interrupted reply's played still went back"
    assert [a["reply"].text for a in run.events.of("reply")] == [ANSWER, ANSWER]
    assert not run.muted_at_end


async def test_without_barge_in_nothing_is_streamed_while_the_microphone_is_muted(tmp_path):
    async def connect(ha, engine):
        await ha.connect()

    profile = remote_profile(1, gap=2.5)
    profile["engine"] = {**profile["engine"], "barge_in": False}
    profile["player"] = {"backend": "wav", "realtime": True, "path": str(tmp_path / "reply-{n}.wav")}
    run = await run_satellite(profile, connect, turns=1, ping_delay=0.2, answer_seconds=1.5)

    assert [t.outcome for t in run.result.timelines] == [Outcome.OK], run.result.failures
    (started,), (ended,) = run.events.when("speak_start"), run.events.when("speak_end")
    assert ended - started > 1.0
    # chunks written before the mute may still be arriving for a moment; none captured while muted
    assert audio_seconds(run.ha, since=started + 0.25, until=ended) == 0
    assert not run.muted_at_end


async def test_after_an_error_in_a_turn_the_satellite_asks_home_assistant_to_listen_again():
    async def error_once(ha, engine):
        await ha.connect()
        await until(lambda: [e.type for _, e in ha.received].count("run-pipeline") == 2)  # asked again
        ha.error = None  # the next pipeline goes through

    run = await run_satellite(remote_profile(2), error_once, turns=2, ping_delay=0.2,
                              error=("No text recognized", "stt-no-text-recognized"))

    assert [t.outcome for t in run.result.timelines] == [Outcome.ERROR, Outcome.OK]
    (failure,) = [a["failure"] for a in run.events.of("error")]
    assert failure.message.endswith("Home Assistant: No text recognized (stt-no-text-recognized)")
    asked = [e for _, e in run.ha.received if e.type == "run-pipeline"]
    assert len(asked) == 2, "Home Assistant does not restart after an error: the satellite asked again, once"
    assert [a["reply"].text for a in run.events.of("reply")] == [ANSWER]
    assert not run.muted_at_end
