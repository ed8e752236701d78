"""The espeak backend with the real espeak-ng: streaming, fidelity, options, barge-in, failures."""

from __future__ import annotations

import signal
import stat

import numpy as np
import pytest

from magoo_core.errors import BackendError
from magoo_core.testing.signals import best_match
from magoo_espeak import ESPEAK_RATE

from espeak_helpers import LONG_TEXT, SHORT_TEXT, backend, fundamental, samples, speak, written_by_espeak


async def test_the_first_chunk_arrives_while_espeak_is_still_synthesizing(tmp_path):
    chunks = []
    async with backend() as tts:
        async for chunk in tts.synthesize(LONG_TEXT):
            if not chunks:
                assert tts.process is not None
                assert tts.process.returncode is None, "espeak-ng had finished before the first chunk was yielded"
            chunks.append(chunk)
        assert tts.process.returncode == 0
    assert all(c.sample_rate == ESPEAK_RATE and c.channels == 1 and c.sample_width == 2 for c in chunks)
    assert max(c.duration for c in chunks) <= 0.1 + 1e-9
    assert len(chunks) > 100

    rate, reference = written_by_espeak(LONG_TEXT, tmp_path, "-v", "en-us", "-s", "160", "-p", "50", "-a", "100")
    streamed = samples(chunks)
    assert rate == ESPEAK_RATE
    assert len(reference) / rate > 20  # the text really is long
    assert len(streamed) == pytest.approx(len(reference), rel=0.01)
    if len(streamed) != len(reference) or not np.array_equal(streamed, reference):
        shorter = min(len(streamed), len(reference)) - 1000
        _, correlation = best_match(streamed, reference[:shorter])
        assert correlation > 0.99


async def test_a_faster_speed_gives_shorter_audio():
    normal = samples(await speak(SHORT_TEXT, speed=160))
    fast = samples(await speak(SHORT_TEXT, speed=320))
    assert len(fast) < 0.75 * len(normal)


async def test_a_higher_pitch_gives_a_higher_voice():
    low = fundamental(samples(await speak(SHORT_TEXT, pitch=25)), ESPEAK_RATE)
    high = fundamental(samples(await speak(SHORT_TEXT, pitch=90)), ESPEAK_RATE)
    assert high > 1.2 * low


async def test_the_voice_and_amplitude_reach_espeak():
    english = samples(await speak(SHORT_TEXT))
    german = samples(await speak(SHORT_TEXT, voice="de"))
    quiet = samples(await speak(SHORT_TEXT, amplitude=30))
    assert len(english) != len(german) or not np.array_equal(english, german)
    assert np.abs(quiet).max() < 0.6 * np.abs(english).max()


async def test_a_gap_lengthens_the_pauses_between_words():
    plain = samples(await speak(SHORT_TEXT))
    spaced = samples(await speak(SHORT_TEXT, gap=20))
    assert len(spaced) > len(plain) + 0.5 * ESPEAK_RATE  # 5 words, 200 ms after each


def test_the_command_carries_every_option_and_no_text():
    tts = backend(voice="en-gb", speed=200, pitch=30, amplitude=120, gap=3)
    command = tts.command()
    assert command[0] == "espeak-ng" and "--stdout" in command

    def after(flag: str) -> str:
        return command[command.index(flag) + 1]

    assert [after(f) for f in ("-v", "-s", "-p", "-a", "-g", "-b")] == ["en-gb", "200", "30", "120", "3", "1"]
    assert len(command) == 14  # the text goes to stdin, never onto the command line


async def test_resampled_output_keeps_its_length():
    native = await speak(SHORT_TEXT)
    resampled = await speak(SHORT_TEXT, sample_rate=16000)
    assert {c.sample_rate for c in resampled} == {16000}
    assert max(c.duration for c in resampled) <= 0.1 + 1e-9
    assert sum(c.duration for c in resampled) == pytest.approx(sum(c.duration for c in native), abs=0.01)


async def test_text_starting_with_a_dash_and_non_ascii_text_are_spoken():
    dash = samples(await speak("-v is not an option here, and neither is --help."))
    accents = samples(await speak("Café crème, naïve façade, 5 €.", voice="fr"))
    assert len(dash) / ESPEAK_RATE > 1.5 and np.abs(dash).max() > 1000
    assert len(accents) / ESPEAK_RATE > 1.0


async def test_empty_text_yields_nothing_and_starts_no_process():
    async with backend() as tts:
        assert [c async for c in tts.synthesize("  \n\t ")] == []
        assert tts.process is None


async def test_closing_the_stream_kills_espeak_at_once():
    async with backend() as tts:
        stream = tts.synthesize(LONG_TEXT)
        await anext(stream)
        process = tts.process
        assert process.returncode is None
        await stream.aclose()
        # espeak-ng was blocked on its full stdout pipe, so only the kill can have ended it
        assert process.returncode == -signal.SIGKILL
        # the backend is usable for the next reply
        assert len(samples([c async for c in tts.synthesize(SHORT_TEXT)])) > ESPEAK_RATE


async def test_leaving_the_backend_kills_a_reply_still_running():
    tts = backend()
    async with tts:
        stream = tts.synthesize(LONG_TEXT)
        await anext(stream)
        tts.process.send_signal(signal.SIGSTOP)  # still running when we leave, however fast espeak-ng is
    assert tts.process.returncode == -signal.SIGKILL
    await stream.aclose()


async def test_a_missing_binary_fails_at_start_with_the_install_command():
    with pytest.raises(BackendError, match="espeak-ng-missing is not installed: sudo apt install espeak-ng") as info:
        async with backend(binary="espeak-ng-missing"):
            pass
    assert info.value.retryable is False


async def test_a_wrong_voice_fails_at_start_naming_the_voices_command():
    with pytest.raises(BackendError, match=r"no voice 'xx-nope'.*espeak-ng --voices") as info:
        async with backend(voice="xx-nope"):
            pass
    assert info.value.retryable is False


async def test_a_voice_with_a_variant_is_accepted():
    assert len(samples(await speak(SHORT_TEXT, voice="en-us+f3"))) > ESPEAK_RATE


def fake_espeak(folder, body: str) -> str:
    """An executable standing in for espeak-ng: passes the voice check (-q), then runs ``body``."""
    path = folder / "fake-espeak"
    path.write_text(f'#!/bin/sh\ncase " $* " in *" -q "*) exit 0;; esac\ncat >/dev/null\n{body}\n')
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return str(path)


async def test_a_failing_espeak_raises_with_its_stderr(tmp_path):
    binary = fake_espeak(tmp_path, "echo 'first line' >&2\necho 'ran out of memory' >&2\nexit 3")
    async with backend(binary=binary) as tts:
        with pytest.raises(BackendError, match=r"exit code 3.*ran out of memory"):
            [c async for c in tts.synthesize(SHORT_TEXT)]
        assert tts.stats()["failures"] == 1


async def test_output_that_is_not_wav_is_a_clear_error(tmp_path):
    binary = fake_espeak(tmp_path, "echo 'this is not audio at all'")
    async with backend(binary=binary) as tts:
        with pytest.raises(BackendError, match="espeak-ng wrote unreadable audio"):
            [c async for c in tts.synthesize(SHORT_TEXT)]


async def test_synthesizing_before_start_is_a_clear_error():
    with pytest.raises(BackendError, match="not started"):
        [c async for c in backend().synthesize(SHORT_TEXT)]


def test_out_of_range_options_are_refused():
    from pydantic import ValidationError

    for bad in ({"speed": 50}, {"speed": 500}, {"pitch": 100}, {"amplitude": 201}, {"gap": -1}, {"voice": ""}):
        with pytest.raises(ValidationError):
            backend(**bad)


async def test_the_format_it_announces_is_the_format_of_its_chunks():
    for config in ({}, {"sample_rate": 16000}):
        tts = backend(**config)
        chunks = await speak(SHORT_TEXT, **config)
        assert {chunk.format for chunk in chunks} == {tts.output_format}
