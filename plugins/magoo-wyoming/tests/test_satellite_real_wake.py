"""One turn with the real local wake word: openWakeWord hears "hey Jarvis" in a recording, the
satellite tells Home Assistant (``detection``, ``run-pipeline``) and streams the question that
follows; Home Assistant's answer is played. And the same with remote wake: the stand-in's wake
stage streams to a real openWakeWord Wyoming server, as Home Assistant's wyoming wake word
provider does, and its detection wakes magoo."""

from __future__ import annotations

from pathlib import Path

import pytest

from magoo_core import Outcome
from magoo_core.audio import rms_level
from magoo_core.types import AudioChunk

from satellite_helpers import ANSWER, run_satellite, satellite_profile

ROOT = Path(__file__).resolve().parents[3]
HEY_JARVIS_QUESTION = ROOT / "examples" / "audio" / "hey_jarvis_what_time_is_it.wav"


async def test_hey_jarvis_on_a_recording_starts_home_assistants_pipeline_with_the_question():
    magoo_openwakeword = pytest.importorskip("magoo_openwakeword")

    async def listen(ha, engine):
        await ha.connect()

    profile = satellite_profile(1, wake_words=["Jarvis"])
    profile["audio_source"] = {"backend": "scripted", "realtime": True, "segments": [
        {"seconds": 1.0}, {"file": str(HEY_JARVIS_QUESTION)}, {"seconds": 2.0}]}
    profile["wake"] = {"backend": "openwakeword", "models": [{"name": "hey_jarvis", "threshold": 0.5, "label": "Jarvis"}]}
    run = await run_satellite(profile, listen, turns=1, plugins=(magoo_openwakeword,), ping_delay=0.5, hear_seconds=1.2)

    assert [t.outcome for t in run.result.timelines] == [Outcome.OK], run.result.failures
    (pipeline,) = run.ha.pipelines
    assert pipeline.detection == "Jarvis" and pipeline.run.wake_word_name == "Jarvis"
    assert pipeline.audio_seconds >= 1.2
    chunks = [e for _, e in run.ha.received if e.type == "audio-chunk"]
    assert max(rms_level(AudioChunk(e.payload, 16000)) for e in chunks) > 0.01, "the question reached Home Assistant"
    assert [a["reply"].text for a in run.events.of("reply")] == [ANSWER]
    assert not run.muted_at_end


async def test_remote_wake_home_assistants_openwakeword_hears_hey_jarvis_and_the_question_follows():
    pytest.importorskip("pyopen_wakeword")
    from openwakeword_server import OpenWakeWordServer

    async def listen(ha, engine):
        await ha.connect()

    profile = satellite_profile(1, wake="remote")
    profile["audio_source"] = {"backend": "scripted", "realtime": True, "segments": [
        {"seconds": 1.0}, {"file": str(HEY_JARVIS_QUESTION)}, {"seconds": 2.0}]}
    profile["wake"] = {"service": "house", "backup": {"backend": "scripted"}}
    async with OpenWakeWordServer() as wake:
        run = await run_satellite(profile, listen, turns=1, ping_delay=0.5, hear_seconds=1.2,
                                  wake_uri=wake.uri, wake_names=["hey_jarvis"])

    assert [t.outcome for t in run.result.timelines] == [Outcome.OK], run.result.failures
    (woke,) = [p for p in run.ha.pipelines if p.detection is not None]
    assert woke.detection == "hey_jarvis" and woke.run.start_stage.value == "wake"
    assert [a["wake"].label for a in run.events.of("wake")] == ["hey_jarvis"]
    assert woke.audio_seconds >= 1.2, "the question after the wake word reached Home Assistant's speech-to-text"
    assert [a["reply"].text for a in run.events.of("reply")] == [ANSWER]
    assert not run.muted_at_end
