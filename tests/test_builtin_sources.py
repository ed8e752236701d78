"""The built-in audio sources: wav, tone, silence and scripted."""

from __future__ import annotations

import numpy as np
import pytest
from pydantic import ValidationError

from magoo_core import audio
from magoo_core.testing import signals
from magoo_core.default_plugins import sources
from magoo_core.default_plugins.sources import (
    ScriptedSource,
    Segment,
    SilenceSource,
    ToneSource,
    WavFileSource,
    paced,
)
from magoo_core.errors import BackendError
from magoo_core.testing.contracts import AudioSourceContract
from magoo_core.types import AudioChunk, AudioFormat


async def collect(source, limit: int | None = None) -> list[AudioChunk]:
    out = []
    async with source:
        stream = source.stream()
        async for chunk in stream:
            out.append(chunk)
            if limit is not None and len(out) == limit:
                await stream.aclose()
                break
    return out


def make(cls, **config):
    return cls(cls.Config(realtime=False, **config))


def joined(chunks: list[AudioChunk]) -> AudioChunk:
    return audio.concatenate(chunks, chunks[0].format)


def dominant_frequency(chunk: AudioChunk) -> float:
    return signals.dominant_frequency(audio.samples(chunk)[:, 0], chunk.sample_rate)


@pytest.fixture
def speech_wav(tmp_path):
    """A 0.5 s stereo 22050 Hz file: a 300 Hz tone on the left, silence on the right."""
    left = audio.samples(audio.tone(300, 0.5, 22050, amplitude=0.4))[:, 0]
    clip = audio.chunk_from_samples(np.stack([left, np.zeros_like(left)], axis=1), 22050)
    return audio.write_wav(tmp_path / "speech.wav", [clip], clip.format), clip


# ---- registration and config --------------------------------------------------------------------


def test_all_four_register_through_the_hook():
    registered = []
    sources.magoo_register_audio_sources(register=registered.append)
    assert [cls.name for cls in registered] == ["wav", "tone", "silence", "scripted"]
    for cls in registered:
        assert cls.__doc__.splitlines()[0].endswith(".")
        assert all(field.description for field in cls.Config.model_fields.values())


REQUIRED = {"wav": {"path": "x.wav"}, "scripted": {"segments": [{"seconds": 1.0}]}}


@pytest.mark.parametrize("cls", [WavFileSource, ToneSource, SilenceSource, ScriptedSource])
def test_config_rejects_unknown_keys(cls):
    cls.Config.model_validate(REQUIRED.get(cls.name, {}))
    with pytest.raises(ValidationError, match="volume"):
        cls.Config.model_validate({**REQUIRED.get(cls.name, {}), "volume": 3})


def test_config_validates_ranges():
    with pytest.raises(ValidationError):
        ToneSource.Config(amplitude=1.5)
    with pytest.raises(ValidationError):
        SilenceSource.Config(chunk_ms=0)
    with pytest.raises(ValidationError):
        WavFileSource.Config(path="x.wav", tail_silence=-1)


# ---- pacing -------------------------------------------------------------------------------------


class FakeClock:
    """A clock that advances only when slept on, oversleeping by a fixed jitter each time."""

    def __init__(self, start: float = 100.0, jitter: float = 0.004) -> None:
        self.now = start
        self.jitter = jitter
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds + self.jitter


async def test_realtime_pacing_follows_an_absolute_schedule_without_drift():
    clock = FakeClock()
    chunks = [audio.silence(AudioFormat(16000), 0.08)] * 100
    stamps = [c.timestamp async for c in paced(chunks, True, clock=clock, sleep=clock.sleep)]
    # each late wake-up is made up on the next sleep, so lateness never accumulates
    expected = [100.0 + 0.08 * (i + 1) + clock.jitter for i in range(100)]
    assert stamps == pytest.approx(expected)
    assert clock.sleeps[1:] == pytest.approx([0.08 - clock.jitter] * 99)


async def test_not_realtime_still_yields_to_the_loop_between_chunks():
    clock = FakeClock(jitter=0.0)
    chunks = [audio.silence(AudioFormat(16000), 0.08)] * 5
    stamps = [c.timestamp async for c in paced(chunks, False, clock=clock, sleep=clock.sleep)]
    assert clock.sleeps == [0.0] * 5
    assert stamps == [100.0] * 5


def test_schedule_counts_frames_across_rate_changes():
    schedule = sources.Schedule(10.0)
    assert schedule.due(audio.silence(AudioFormat(16000), 0.5)) == 10.5
    assert schedule.due(audio.silence(AudioFormat(8000), 0.25)) == 10.75
    assert schedule.due(audio.silence(AudioFormat(8000), 0.25)) == 11.0


async def test_a_realtime_source_streams_the_same_audio():
    source = ToneSource(ToneSource.Config(seconds=0.16, chunk_ms=40))
    chunks = await collect(source)
    assert len(chunks) == 4
    assert joined(chunks).pcm == audio.tone(440, 0.16, 16000, amplitude=0.3).pcm


# ---- tone and silence ---------------------------------------------------------------------------


async def test_tone_has_the_right_length_frequency_and_level():
    chunks = await collect(make(ToneSource, frequency=1000, amplitude=0.5, seconds=1.0, chunk_ms=80))
    assert [c.frames for c in chunks[:-1]] == [1280] * 12 and chunks[-1].frames == 640
    whole = joined(chunks)
    assert whole.frames == 16000 and whole.format == AudioFormat(16000)
    assert dominant_frequency(whole) == pytest.approx(1000, abs=2)
    assert audio.peak_level(whole) == pytest.approx(0.5, abs=1e-3)


async def test_tone_phase_is_continuous_across_chunks():
    chunks = await collect(make(ToneSource, frequency=440, seconds=2.5, chunk_ms=30))
    assert joined(chunks).pcm == audio.tone(440, 2.5, 16000, amplitude=0.3).pcm


async def test_endless_tone_keeps_going():
    chunks = await collect(make(ToneSource, chunk_ms=100), limit=50)
    assert len(chunks) == 50 and sum(c.frames for c in chunks) == 80000


async def test_silence_length_and_stats():
    source = make(SilenceSource, seconds=0.3, sample_rate=8000, chunk_ms=100)
    chunks = await collect(source)
    assert [c.frames for c in chunks] == [800, 800, 800]
    assert joined(chunks).pcm == bytes(4800)
    assert source.stats() == {"chunks": 3, "seconds": 0.3}


async def test_timestamps_increase():
    chunks = await collect(make(SilenceSource, seconds=0.5))
    stamps = [c.timestamp for c in chunks]
    assert all(t > 0 for t in stamps) and stamps == sorted(stamps)


# ---- wav ----------------------------------------------------------------------------------------


async def test_wav_source_delivers_the_file_mixed_to_mono(speech_wav):
    path, clip = speech_wav
    chunks = await collect(make(WavFileSource, path=path, tail_silence=0.0))
    assert {c.format for c in chunks} == {AudioFormat(22050)}
    assert joined(chunks).pcm == audio.mix_to_mono(clip).pcm


async def test_wav_source_keeps_channels_when_asked(speech_wav):
    path, clip = speech_wav
    chunks = await collect(make(WavFileSource, path=path, tail_silence=0.0, mono=False))
    assert joined(chunks).pcm == clip.pcm


async def test_wav_source_adds_lead_and_tail_silence(speech_wav):
    path, clip = speech_wav
    chunks = await collect(make(WavFileSource, path=path, lead_silence=0.2, tail_silence=1.0))
    whole = audio.samples(joined(chunks))[:, 0]
    lead, tail = round(0.2 * 22050), 22050
    assert len(whole) == lead + clip.frames + tail
    assert not whole[:lead].any() and not whole[-tail:].any()
    assert whole[lead:-tail].tolist() == audio.samples(audio.mix_to_mono(clip))[:, 0].tolist()


async def test_wav_source_resamples(speech_wav):
    path, _ = speech_wav
    chunks = await collect(make(WavFileSource, path=path, tail_silence=0.0, sample_rate=16000))
    whole = joined(chunks)
    assert whole.sample_rate == 16000
    assert whole.frames == pytest.approx(8000, rel=0.01)
    assert dominant_frequency(whole) == pytest.approx(300, abs=3)
    assert {c.frames for c in chunks[:-1]} == {1280}


async def test_wav_source_loops(speech_wav):
    path, clip = speech_wav
    chunks = await collect(make(WavFileSource, path=path, tail_silence=0.0, loop=True, chunk_ms=50), limit=40)
    data = joined(chunks).pcm
    once = audio.mix_to_mono(clip).pcm
    assert len(chunks) == 40 and len(data) > 3 * len(once)
    assert data[: 3 * len(once)] == once * 3


async def test_wav_source_missing_file_is_a_clear_final_error(tmp_path):
    source = make(WavFileSource, path=tmp_path / "nope.wav")
    with pytest.raises(BackendError, match="nope.wav") as caught:
        await collect(source)
    assert caught.value.retryable is False


async def test_wav_source_refuses_a_non_16_bit_file_when_streamed_without_entering(tmp_path):
    path = tmp_path / "float.wav"
    path.write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunk")
    source = make(WavFileSource, path=path)
    with pytest.raises(BackendError, match="float.wav"):
        async for _ in source.stream():
            pass


def test_wav_path_resolves_against_the_profile_folder(tmp_path):
    (tmp_path / "clips").mkdir()
    (tmp_path / "clips" / "a.wav").write_bytes(b"")  # a profile's input files must exist; read at start
    config = WavFileSource.Config.model_validate({"path": "clips/a.wav"}, context={"base_dir": tmp_path})
    assert config.path == tmp_path / "clips" / "a.wav"


# ---- scripted -----------------------------------------------------------------------------------


async def test_scripted_segments_play_in_order(speech_wav):
    path, clip = speech_wav
    script = [
        {"seconds": 0.5, "tone": 1000.0, "amplitude": 0.5},
        {"seconds": 0.25},
        {"file": str(path)},
    ]
    chunks = await collect(make(ScriptedSource, segments=script))
    data = audio.samples(joined(chunks))[:, 0]
    file_frames = round(clip.frames * 16000 / 22050)
    assert len(data) == pytest.approx(8000 + 4000 + file_frames, abs=2)
    tone_part = audio.chunk_from_samples(data[:8000], 16000)
    assert dominant_frequency(tone_part) == pytest.approx(1000, abs=2)
    assert audio.peak_level(tone_part) == pytest.approx(0.5, abs=1e-3)
    assert not data[8000:12000].any()
    assert dominant_frequency(audio.chunk_from_samples(data[12000:], 16000)) == pytest.approx(300, abs=3)


async def test_scripted_loop_repeats():
    source = make(ScriptedSource, segments=[{"seconds": 0.1, "tone": 500.0}, {"seconds": 0.1}], loop=True, chunk_ms=100)
    chunks = await collect(source, limit=6)
    levels = [audio.peak_level(c) > 0.1 for c in chunks]
    assert levels == [True, False] * 3


def test_segment_validation():
    with pytest.raises(ValidationError, match="either a tone or a file"):
        Segment(tone=440.0, file="x.wav")
    with pytest.raises(ValidationError, match="needs 'seconds'"):
        Segment(tone=440.0)
    with pytest.raises(ValidationError, match="as long as its file"):
        Segment(file="x.wav", seconds=1.0)
    with pytest.raises(ValidationError, match="only applies to a tone"):
        Segment(seconds=1.0, amplitude=0.5)
    with pytest.raises(ValidationError, match="extra"):
        Segment(seconds=1.0, volume=2)


def test_segment_file_paths_resolve_against_the_profile_folder(tmp_path):
    (tmp_path / "clips").mkdir()
    (tmp_path / "clips" / "hi.wav").write_bytes(b"")  # a profile's input files must exist; read at start
    config = ScriptedSource.Config.model_validate(
        {"segments": [{"file": "clips/hi.wav"}, {"seconds": 0.5}]}, context={"base_dir": tmp_path}
    )
    assert config.segments[0].file == tmp_path / "clips" / "hi.wav"


async def test_scripted_missing_file_names_the_segment(tmp_path):
    source = make(ScriptedSource, segments=[{"seconds": 0.1}, {"file": str(tmp_path / "gone.wav")}])
    with pytest.raises(BackendError, match="segment 2.*gone.wav"):
        await collect(source)


# ---- the shared contract ------------------------------------------------------------------------


class TestToneContract(AudioSourceContract):
    backend_class = ToneSource
    config = {"realtime": False}


class TestSilenceContract(AudioSourceContract):
    backend_class = SilenceSource
    config = {"seconds": 1.0}


class TestScriptedContract(AudioSourceContract):
    backend_class = ScriptedSource
    config = {"segments": [{"seconds": 0.2, "tone": 440.0}, {"seconds": 0.2}], "loop": True, "realtime": False}


class TestWavContract(AudioSourceContract):
    backend_class = WavFileSource

    @pytest.fixture(autouse=True)
    def _wav_file(self, speech_wav):
        self.config = {"path": str(speech_wav[0]), "realtime": False}
