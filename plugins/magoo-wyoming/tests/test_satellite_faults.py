"""The satellite's faults: Home Assistant silent (no ping), gone in the middle of a turn, a peer not
on the allow-list, garbage and oversized frames. In every case the microphone is not left muted and
the next turn is answered."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random

import pytest

from magoo_core import Outcome

from satellite_helpers import ANSWER, run_satellite, satellite_profile

BACKUP = "You said: heard by the backup"


async def test_home_assistant_gone_silent_is_dropped_after_the_silence_timeout_and_the_backup_answers(caplog):
    async def silent(ha, engine):
        await ha.connect()
        await asyncio.sleep(0.2)
        ha.silent = True  # connected, and never a word again (no ping, no answer)

    run = await run_satellite(satellite_profile(1, silence_timeout=0.5), silent, turns=1, ping_delay=0.1)

    assert [t.outcome for t in run.result.timelines] == [Outcome.OK]
    assert [a["reply"].text for a in run.events.of("reply")] == [BACKUP]
    assert "silent for 0.5 s (no ping)" in caplog.text
    assert not run.muted_at_end


@pytest.mark.parametrize("moment", ["before the transcript", "in the middle of the reply"])
async def test_home_assistant_gone_in_the_middle_of_a_turn_fails_that_turn_only(moment):
    async def drop(ha, engine):
        if moment == "before the transcript":
            ha.hear_seconds = 1e9  # it never answers: it disconnects once the command streams
            await ha.connect()
            while not ha.pipelines or ha.pipelines[0].first_audio is None:
                await asyncio.sleep(0.01)
        else:
            ha.cut_reply = True
            await ha.connect()
            return
        await ha.disconnect()

    run = await run_satellite(satellite_profile(2), drop, turns=2, ping_delay=0.2)

    story = (run.result.failures, [a["reply"].text for a in run.events.of("reply")])
    assert [t.outcome for t in run.result.timelines] == [Outcome.ERROR, Outcome.OK], story
    (failure,) = [a["failure"] for a in run.events.of("error")]
    assert failure.message.startswith("[services.house] homeassistant: Home Assistant disconnected in the middle of the turn")
    assert [a["reply"].text for a in run.events.of("reply")][-1] == BACKUP
    assert not run.muted_at_end


async def test_a_peer_not_on_the_allow_list_is_closed_at_once_and_logged_once(caplog):
    closed: list[bytes] = []

    async def stranger(ha, engine):
        for _ in range(5):
            reader, writer = await asyncio.open_connection(ha.host, ha.port)
            writer.write(b'{"type": "run-satellite"}\n')
            try:
                closed.append(await reader.read())  # b"": closed by the satellite without a word
            except ConnectionResetError:  # closed with our bytes unread: a reset, as good
                closed.append(b"")
            writer.close()

    caplog.set_level(logging.WARNING, "magoo.wyoming.satellite")
    run = await run_satellite(satellite_profile(1, allow=["10.9.9.9", "192.168.0.0/16"]), stranger, turns=1)

    assert closed == [b""] * 5
    assert [a["reply"].text for a in run.events.of("reply")] == [BACKUP], "the stranger never ran the satellite"
    refusals = [r for r in caplog.records if "not in the satellite's allow list" in r.getMessage()]
    assert len(refusals) == 1, "one line per peer per minute"
    assert run.engine.backends.services["house"].last_instance.stats()["refused"] == 5


def garbage(rng: random.Random) -> bytes:
    """One malformed frame of many kinds."""
    kind = rng.randrange(9)
    if kind == 0:
        return bytes(rng.randrange(256) for _ in range(rng.randrange(1, 200))) + b"\n"
    if kind == 1:
        return b'{"type": "audio-chunk", "payload_length": 99999999999}\n'
    if kind == 2:
        return b'{"type": "describe", "data_length": -5}\n'
    if kind == 3:
        return b'["not", "an", "object"]\n'
    if kind == 4:
        return b'{"type": 42}\n'
    if kind == 5:
        return b'{"type": "audio-chunk", "data_length": 10}\n{"rate": 1\n'
    if kind == 6:
        return b"{" * 5000 + b"\n"
    if kind == 7:
        return b'{"type": "x", "data": "nope"}\n'
    return b'{"type": "audio-start", "data": {"rate": "fast"}}\n{"type": "audio-chunk", "data": {"rate": 0, "width": 9, "channels": 0}, "payload_length": 4}\n\x00\x00\x00\x00'


async def test_a_fuzz_of_malformed_frames_never_crashes_the_satellite_nor_holds_their_memory():
    import tracemalloc

    peaks: list[int] = []

    async def fuzz(ha, engine):
        await ha.connect()  # Home Assistant is there all along: garbage from others must not displace it
        rng = random.Random(20)
        tracemalloc.start()
        try:
            for _ in range(40):
                with contextlib.suppress(ConnectionError):  # the satellite closes on the first bad frame
                    reader, writer = await asyncio.open_connection(ha.host, ha.port)
                    writer.write(b"".join(garbage(rng) for _ in range(25)) + b"x" * 70000)  # and a header past the limit
                    await writer.drain()
                    await asyncio.wait_for(reader.read(), 2.0)
                    writer.close()
            peaks.append(tracemalloc.get_traced_memory()[1])
        finally:
            tracemalloc.stop()

    # tracemalloc slows everything down: a long lead before the wake word
    run = await run_satellite(satellite_profile(1, source_options={"lead": 6.0}), fuzz, turns=1, ping_delay=0.2, timeout=90)

    assert [a["reply"].text for a in run.events.of("reply")] == [ANSWER]
    session = run.engine.backends.services["house"].last_instance.session
    assert session.counters["connections"] == 1 and session.counters["malformed"] == 40
    assert peaks[0] < 8 * 1024 * 1024, f"peak {peaks[0]} bytes while reading garbage"
    assert not run.muted_at_end


def nonsense(rng: random.Random):
    """A well-framed event whose content is wrong: known types with missing, mistyped or absurd fields."""
    from wyoming.event import Event

    kind = rng.choice(["audio-start", "audio-chunk", "audio-stop", "transcript", "synthesize", "error", "timer-started",
                       "timer-updated", "timer-cancelled", "timer-finished", "ping", "describe", "detection", "unknown-thing"])
    value = rng.choice([None, -1, 10**12, "x" * rng.randrange(50), [], {"nested": [1, 2]}, 3.5, True])
    data = {rng.choice(["id", "text", "rate", "width", "channels", "total_seconds", "is_active", "name"]): value}
    payload = bytes(rng.randrange(256) for _ in range(rng.randrange(0, 64))) if kind == "audio-chunk" else None
    return Event(kind, data, payload)


async def test_ten_thousand_well_framed_nonsense_events_keep_the_link_and_the_next_turn_goes_through():
    async def fuzz(ha, engine):
        await ha.connect()
        rng = random.Random(11)
        for _ in range(10_000):
            await ha.send(nonsense(rng))
        ha.events_sent = 10_000

    # the rings and announcements it causes mute the microphone a while: a long tail leaves time to wake
    run = await run_satellite(satellite_profile(1, source_options={"lead": 4.0, "gap": 6.0}), fuzz, turns=1, ping_delay=0.2, timeout=90)

    session = run.engine.backends.services["house"].last_instance.session
    assert session.counters["connections"] == 1, "the link was never dropped for nonsense"
    assert [a["reply"].text for a in run.events.of("reply")] == [ANSWER]
    assert len(session.outside.running_timers()) <= 64
    assert not run.muted_at_end


async def test_a_reconnect_storm_logs_a_line_a_minute_and_loses_no_turn(caplog):
    async def storm(ha, engine):
        for _ in range(100):  # Home Assistant dropping and coming back, again and again
            await ha.connect()
            await ha.disconnect()
        await ha.connect()

    caplog.set_level(logging.INFO, "magoo.wyoming.satellite")
    run = await run_satellite(satellite_profile(1, source_options={"lead": 4.0}), storm, turns=1, ping_delay=0.2)

    assert [a["reply"].text for a in run.events.of("reply")] == [ANSWER], "the turn after the storm is Home Assistant's"
    lines = [r.getMessage() for r in caplog.records if r.name == "magoo.wyoming.satellite"]
    link_lines = [line for line in lines if "connected from" in line or "until it reconnects" in line or "runs the satellite" in line]
    assert len(link_lines) == 2, f"how the link stands: one line in the minute, the last held one when magoo stops: {link_lines}"
    assert link_lines[1].startswith("Home Assistant runs the satellite") and "more of its kind in the last minute" in link_lines[1]
    assert run.engine.backends.services["house"].last_instance.session.counters["connections"] == 101
    assert not run.muted_at_end
