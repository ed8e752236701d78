"""A whole turn through magoo's engine with every role a Wyoming client: wake, stt, responder and
tts all served by the scripted loopback server."""

from __future__ import annotations

import pytest

import magoo_wyoming
from magoo_core.testing import run_profile

from clients_helpers import QUESTION
from wyoming_servers import Script, ScriptedServer


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
