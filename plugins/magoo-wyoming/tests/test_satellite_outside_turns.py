"""What Home Assistant sends outside a turn: announcements (played through magoo's speech outside a
turn, ``played`` when they ended), timers (a sound when one finishes, the status), ``pause-satellite``
and a reconnect."""

from __future__ import annotations

import asyncio
import time

from magoo_core import Outcome

from satellite_helpers import ANSWER, TTS_RATE, run_satellite, satellite_profile

BACKUP = "You said: heard by the backup"


def service_of(run):
    return run.engine.backends.services["house"].last_instance


async def test_an_announcement_is_played_by_the_speaker_and_answered_with_played():
    outcome: list[bool] = []

    async def announce(ha, engine):
        await ha.connect()
        await asyncio.sleep(0.2)
        outcome.append(await ha.announce(0.5))

    run = await run_satellite(satellite_profile(1, source_options={"lead": 2.5}), announce, turns=1, ping_delay=0.2)

    assert outcome == [True], "played came back"
    first = run.engine.player.last_instance.plays[0]
    assert sum(len(c.pcm) for c in first) == 2 * round(0.5 * TTS_RATE), "the whole announcement reached the speaker"
    starts = run.events.of("speak_start")
    assert starts[0]["turn"] is None, "outside a turn"
    (played_at,) = [t for t, e in run.ha.received if e.type == "played"][:1]
    (ended,) = [t for t, a in zip(run.events.when("speak_end"), run.events.of("speak_end"), strict=True) if a["turn"] is None][:1]
    assert played_at >= ended
    assert service_of(run).stats()["announcements"] == 1
    assert not run.muted_at_end


async def test_timers_are_magoos_remote_timers_in_the_status_and_a_finished_one_rings():
    stats: list[dict] = []
    listed: list[list] = []

    async def timers(ha, engine):
        await ha.connect()
        await ha.timer("started", "t1", total_seconds=300, name="pasta")
        await ha.timer("started", "t2", total_seconds=60)
        await ha.timer("updated", "t1", is_active=False, total_seconds=200)
        await ha.timer("cancelled", "t2")
        await ha.timer("started", "t3", total_seconds=5, name="tea")
        await asyncio.sleep(0.2)
        stats.append(dict(service_of_engine(engine).stats()))
        listed.append([(t.name, round(t.seconds_left(time.time()))) for t in engine.timers.list()])
        await ha.timer("finished", "t3")
        await asyncio.sleep(0.5)
        stats.append(dict(service_of_engine(engine).stats()))

    run = await run_satellite(satellite_profile(1, source_options={"lead": 2.5}), timers, turns=1, ping_delay=0.2)

    assert listed == [[("tea", 5), ("pasta", 200)]], "magoo's timers list them: tea counts down, pasta is paused"
    assert stats[0]["timers"] == 2 and stats[1]["timers"] == 1 and stats[1]["timers_finished"] == 1
    hooks = [(name, a["timer"].name) for name, a in run.events.events if name.startswith("timer_")]
    assert hooks == [("timer_started", "pasta"), ("timer_started", "1 minute"), ("timer_updated", "pasta"),
                     ("timer_cancelled", "1 minute"), ("timer_started", "tea"), ("timer_finished", "tea")]
    said = [a["text"] for a in run.events.of("speak_start") if a["turn"] is None]
    assert said[:2] == ["<sound timer>", "The tea timer is done."], "it rang through magoo's timers: sound, then words"
    assert [t.name for t in service_of(run).session.outside.running_timers()] == ["pasta"]
    assert "timer 'pasta' started (5 minutes); timer '1 minute' started (1 minute)" in run.story, run.story
    assert "timer 'tea' finished" in run.story and "timers: pasta 200 s" in run.story
    assert not run.muted_at_end


def service_of_engine(engine):
    return engine.backends.services["house"].instance


async def test_pause_hands_the_turns_to_the_backup_until_home_assistant_runs_the_satellite_again():
    async def pause_then_resume(ha, engine):
        await ha.connect()
        await asyncio.sleep(0.2)
        await ha.pause()
        await asyncio.sleep(2.8)  # the first turn (wake at 1.0 s) goes to the backup
        from wyoming.satellite import RunSatellite

        await ha.send(RunSatellite().event())

    run = await run_satellite(satellite_profile(2), pause_then_resume, turns=2, ping_delay=0.2)

    assert [t.outcome for t in run.result.timelines] == [Outcome.OK, Outcome.OK], run.result.failures
    assert [a["reply"].text for a in run.events.of("reply")] == [BACKUP, ANSWER]
    assert not run.muted_at_end


async def test_home_assistant_reconnecting_takes_the_turns_again_on_the_new_connection():
    async def reconnect(ha, engine):
        await ha.connect()
        while not any(p.played_at for p in ha.pipelines):
            await asyncio.sleep(0.05)
        await ha.disconnect()
        await asyncio.sleep(0.3)
        await ha.connect()

    run = await run_satellite(satellite_profile(2), reconnect, turns=2, ping_delay=0.2)

    assert [t.outcome for t in run.result.timelines] == [Outcome.OK, Outcome.OK], run.result.failures
    assert [a["reply"].text for a in run.events.of("reply")] == [ANSWER, ANSWER]
    assert service_of(run).session.counters["connections"] == 2
    assert not run.muted_at_end
