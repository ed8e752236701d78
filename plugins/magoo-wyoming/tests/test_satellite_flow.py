"""magoo as a Home Assistant satellite, driven by a Home Assistant stand-in on the ``wyoming``
client that follows ``assist_satellite.py`` step by step, through magoo's real engine."""

from __future__ import annotations

import asyncio

from magoo_core import Outcome

from satellite_helpers import ANSWER, HEARD, TTS_RATE, connect, run_satellite, satellite_profile


async def test_a_full_turn_goes_through_home_assistant_and_played_follows_the_real_end_of_sound():
    run = await run_satellite(satellite_profile(2), connect, turns=2, ping_delay=0.2)
    ha = run.ha

    assert [t.outcome for t in run.result.timelines] == [Outcome.OK, Outcome.OK], run.result.failures
    assert ha.info is not None and ha.info.satellite.installed and ha.info.satellite.name == "magoo"
    assert [m.phrase for m in ha.info.wake[0].models] == ["hey magoo"]
    assert ha.pongs >= 1, "pings are answered"
    assert len(ha.pipelines) == 2
    for pipeline in ha.pipelines:
        assert (pipeline.run.start_stage.value, pipeline.run.end_stage.value) == ("asr", "tts")
        assert pipeline.detection == "hey_magoo", "a detection comes before run-pipeline"
        assert pipeline.played_at is not None
    assert ha.types()[:3] == ["info", "detection", "run-pipeline"]
    assert ha.types().count("played") == 2
    # what magoo did with Home Assistant's answer
    assert [a["transcript"].text for a in run.events.of("transcript") if a["transcript"].final] == [HEARD] * 2
    assert [a["reply"].text for a in run.events.of("reply")] == [ANSWER] * 2
    played = run.engine.player.last_instance.plays
    assert [sum(len(c.pcm) for c in play) for play in played] == [2 * round(0.4 * TTS_RATE)] * 2
    assert {c.sample_rate for play in played for c in play} == {TTS_RATE}
    # played is sent after the speaker finished the reply, never before
    speak_ends = [t for t, a in zip(run.events.when("speak_end"), run.events.of("speak_end"), strict=True) if a["turn"] is not None]
    for pipeline, ended in zip(ha.pipelines, speak_ends, strict=True):
        assert pipeline.played_at >= ended
    assert not run.muted_at_end


async def test_without_home_assistant_the_backup_answers_and_home_assistant_takes_over_when_it_connects():
    async def late(ha, engine):
        await asyncio.sleep(2.5)  # after the first turn (wake at 1.0 s), before the second (at 3.9 s)
        await ha.connect()

    run = await run_satellite(satellite_profile(2, source_options={"gap": 1.5}), late, turns=2, ping_delay=0.2)

    assert [t.outcome for t in run.result.timelines] == [Outcome.OK, Outcome.OK], run.result.failures
    assert [a["reply"].text for a in run.events.of("reply")] == ["You said: heard by the backup", ANSWER]
    assert run.events.of("error") == [], "a backup answering is no error"
    assert len(run.ha.pipelines) == 1
    backup_line = "[services.house] homeassistant was not available: its backup scripted answered for [stt]"
    assert run.story.count(backup_line) == 1, run.story
    assert run.story.count("Home Assistant answered") == 1, "the second turn's story says Home Assistant answered"
    assert not run.muted_at_end


async def test_home_assistant_error_ends_the_turn_with_its_line_and_the_next_turn_works():
    async def script(ha, engine):
        await ha.connect()
        while not ha.pipelines:
            await asyncio.sleep(0.05)
        ha.error = None  # the second pipeline goes through

    run = await run_satellite(satellite_profile(2), script, turns=2, ping_delay=0.2,
                              error=("No text recognized", "stt-no-text-recognized"))

    assert [t.outcome for t in run.result.timelines] == [Outcome.ERROR, Outcome.OK]
    (failure,) = [a["failure"] for a in run.events.of("error")]
    assert failure.message == "[services.house] homeassistant: Home Assistant: No text recognized (stt-no-text-recognized)"
    assert not run.muted_at_end
