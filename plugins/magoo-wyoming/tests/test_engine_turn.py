"""A whole turn through magoo's engine with every role a Wyoming client: wake, stt, responder and
tts all served by the scripted loopback server."""

from __future__ import annotations

import pytest

import magoo_wyoming
from magoo_core.testing import run_profile

from clients_helpers import QUESTION
from wyoming_servers import Script, ScriptedServer, free_port


def profile(uri: str, *, realtime: bool) -> dict:
    return {
        "audio_source": {
            "backend": "scripted",
            "realtime": realtime,
            "segments": [
                {"seconds": 0.8},
                {"seconds": 0.4, "tone": 500.0, "amplitude": 0.5},  # what the scripted server "detects"
                {"seconds": 0.2},
                {"file": str(QUESTION)},
                {"seconds": 1.5},
            ],
        },
        "wake": {"backend": "wyoming", "uri": uri, "names": ["ok_nabu"]},
        "stt": {"backend": "wyoming", "uri": uri},
        "responder": {"backend": "wyoming", "uri": uri},
        "tts": {"backend": "wyoming", "uri": uri, "sample_rate": 16000},
    }


@pytest.mark.parametrize("realtime", [True, False], ids=["live source", "lock-step source"])
async def test_a_turn_with_every_role_on_a_wyoming_server(realtime):
    """Live: the detector is scored on the wake worker thread while the source paces itself (real
    time, about 3.5 s of audio). Lock-step: the file is read as fast as the engine takes it, so the
    detection comes back some frames after the tone; the pre-roll is anchored on its timestamp."""
    async with ScriptedServer(Script(transcripts=["what time is it"], answer="It is noon.")) as server:
        record = await run_profile(profile(server.uri, realtime=realtime), plugins=[magoo_wyoming], turns=1, timeout=60)
    assert record.failures == []
    assert [wake["wake"].label for wake in record.of("wake")] == ["ok_nabu"]
    assert record.transcripts == ["what time is it"]
    assert record.replies == ["It is noon."]
    assert record.audio and all(chunk.sample_rate == 16000 for chunk in record.audio)


async def test_a_server_that_is_not_there_at_start_leaves_the_turn_to_the_backups(caplog):
    """Failover to local: nothing listens at the Wyoming address, so [stt] and [tts] start their
    backups (the test kit's scripted STT and tone TTS) and the turn is answered all the same."""
    dead = f"tcp://127.0.0.1:{free_port()}"
    overrides = {
        "stt": {"backend": "wyoming", "uri": dead, "backup": {"backend": "scripted", "transcripts": ["what time is it"]}},
        "tts": {"backend": "wyoming", "uri": dead, "backup": {"backend": "tone"}},
    }
    record = await run_profile(overrides, plugins=[magoo_wyoming], turns=1, timeout=60)
    assert record.transcripts == ["what time is it"] and record.replies and record.audio
    assert record.failures == []  # a backend that does not start is no failure of a turn
    said = sorted(r.getMessage() for r in caplog.records if "instead" in r.getMessage())
    assert said == [
        f"[{role}] wyoming: cannot connect to {dead} (Connect call failed ('127.0.0.1', {dead.rsplit(':', 1)[1]}));"
        f" is the server running there?; using [{role}.backup] {backup} instead"
        for role, backup in (("stt", "scripted"), ("tts", "tone"))
    ]


async def test_a_wake_server_that_drops_the_stream_is_reconnected_and_the_next_wake_word_works(caplog):
    """The server closes the wake stream while magoo listens: one line in the log, the engine
    restarts the detector with its backoff (a restart reconnects), and the wake word that comes
    after is detected as usual."""
    async with ScriptedServer(Script(transcripts=["what time is it"], drop_wake_after=5)) as server:
        overrides = profile(server.uri, realtime=True)
        overrides["audio_source"]["segments"][0] = {"seconds": 2.5}  # the drop, then the restart, before the tone
        overrides["engine"] = {"restart_backoff": 0.2}
        record = await run_profile(overrides, plugins=[magoo_wyoming], turns=1, timeout=60)
    assert server.dropped
    assert [wake["wake"].label for wake in record.of("wake")] == ["ok_nabu"]
    assert record.transcripts == ["what time is it"] and record.replies == ["The light is on."]
    lost = [r.getMessage() for r in caplog.records if "[wake] wyoming" in r.getMessage()]
    assert lost and all("\n" not in line for line in lost)
    assert "closed the connection while magoo waited for detections" in lost[0]
    assert server.received.count("detect") >= 2  # a second stream after the restart
