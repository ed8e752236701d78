"""The built-in ``wav`` player, which records what it would play."""

from __future__ import annotations

import asyncio
import struct

import numpy as np
import pytest

from magoo_core import audio
from magoo_core.default_plugins import recorder
from magoo_core.default_plugins.recorder import WavRecorderPlayer
from magoo_core.errors import BackendError
from magoo_core.testing.contracts import PlayerContract
from magoo_core.types import AudioChunk, AudioFormat, EncodedAudio


class Progress:
    """Records every progress call in order."""

    def __init__(self) -> None:
        self.calls: list[tuple] = []

    def started(self) -> None:
        self.calls.append(("started",))

    def played(self, level: float, duration: float) -> None:
        self.calls.append(("played", level, duration))

    @property
    def pieces(self) -> list[tuple]:
        return [c for c in self.calls if c[0] == "played"]


async def stream(*items):
    for item in items:
        yield item


def player(tmp_path, **config) -> WavRecorderPlayer:
    config.setdefault("path", tmp_path / "reply.wav")
    return WavRecorderPlayer(WavRecorderPlayer.Config(**config))


def wav_bytes(chunk: AudioChunk) -> bytes:
    body = struct.pack("<HHIIHH", 1, chunk.channels, chunk.sample_rate, chunk.sample_rate * 2 * chunk.channels, 2 * chunk.channels, 16)
    header = b"RIFF" + struct.pack("<I", 0xFFFFFFFF) + b"WAVE" + b"fmt " + struct.pack("<I", 16) + body
    return header + b"data" + struct.pack("<I", 0xFFFFFFFF) + chunk.pcm


def stereo_tone(seconds: float, rate: int) -> AudioChunk:
    left = audio.samples(audio.tone(440, seconds, rate, amplitude=0.5))[:, 0]
    return audio.chunk_from_samples(np.stack([left, left], axis=1), rate)


def test_registers_as_the_wav_player():
    registered = []
    recorder.magoo_register_players(register=registered.append)
    assert registered == [WavRecorderPlayer] and WavRecorderPlayer.name == "wav"
    assert all(f.description for f in WavRecorderPlayer.Config.model_fields.values())


async def test_pcm_of_any_format_is_recorded_mono_at_the_chosen_rate(tmp_path):
    rec = player(tmp_path, sample_rate=16000)
    progress = Progress()
    source = stereo_tone(1.0, 22050)
    await rec.play(stream(*audio.split(source, 4410)), progress)
    fmt, pcm = audio.read_wav(rec.last_path)
    assert fmt == AudioFormat(16000)
    assert len(pcm) // 2 == pytest.approx(16000, rel=0.01)
    assert rec.played_seconds == pytest.approx(1.0, rel=0.01)
    assert sum(c[2] for c in progress.pieces) == pytest.approx(rec.played_seconds)


async def test_without_a_rate_the_first_chunk_decides(tmp_path):
    rec = player(tmp_path)
    await rec.play(stream(audio.tone(440, 0.2, 24000), audio.tone(440, 0.2, 48000)), Progress())
    fmt, pcm = audio.read_wav(rec.last_path)
    assert fmt == AudioFormat(24000)
    assert len(pcm) // 2 == pytest.approx(9600, rel=0.01)


async def test_started_comes_once_before_the_first_piece_and_pieces_are_short(tmp_path):
    rec = player(tmp_path)
    progress = Progress()
    await rec.play(stream(audio.tone(440, 0.33, 16000), audio.tone(440, 0.01, 16000)), progress)
    assert progress.calls[0] == ("started",)
    assert progress.calls.count(("started",)) == 1
    durations = [c[2] for c in progress.pieces]
    assert max(durations) <= 0.05 + 1e-9
    assert durations == pytest.approx([0.05] * 6 + [0.03, 0.01])


async def test_levels_are_the_rms_of_each_piece(tmp_path):
    loud = audio.tone(1000, 0.05, 16000, amplitude=0.5)
    quiet = audio.tone(1000, 0.05, 16000, amplitude=0.1)
    progress = Progress()
    await player(tmp_path).play(stream(loud, audio.silence(AudioFormat(16000), 0.05), quiet), progress)
    levels = [c[1] for c in progress.pieces]
    assert levels == pytest.approx([audio.rms_level(loud), 0.0, audio.rms_level(quiet)])
    assert levels[0] == pytest.approx(0.3536, abs=1e-3)


async def test_encoded_wav_in_pieces_is_decoded(tmp_path):
    clip = audio.tone(440, 0.5, 24000)
    data = wav_bytes(clip)
    pieces = [EncodedAudio(data[i : i + 1001], "wav") for i in range(0, len(data), 1001)]
    rec = player(tmp_path)
    await rec.play(stream(*pieces), Progress())
    assert audio.read_wav(rec.last_path) == (AudioFormat(24000), clip.pcm)


async def test_other_codecs_are_refused_with_a_hint(tmp_path):
    rec = player(tmp_path)
    with pytest.raises(BackendError) as caught:
        await rec.play(stream(EncodedAudio(b"ID3...", "mp3")), Progress())
    assert str(caught.value) == (
        "the wav recorder player only takes PCM or WAV audio, not 'mp3'; use a player that decodes mp3 (mpv)"
    )
    assert caught.value.retryable is False
    assert rec.last_path is None and list(tmp_path.iterdir()) == []


async def test_what_was_played_before_an_error_is_kept(tmp_path):
    rec = player(tmp_path)
    with pytest.raises(BackendError):
        await rec.play(stream(audio.tone(440, 0.1, 16000), EncodedAudio(b"x", "opus")), Progress())
    assert rec.played_seconds == pytest.approx(0.1)
    assert len(audio.read_wav(tmp_path / "reply.wav")[1]) == 3200


async def test_numbered_paths_give_every_reply_its_own_file(tmp_path):
    rec = player(tmp_path, path=tmp_path / "out" / "reply-{n}.wav")
    for _ in range(3):
        await rec.play(stream(audio.tone(440, 0.1, 16000)), Progress())
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["reply-1.wav", "reply-2.wav", "reply-3.wav"]
    assert rec.last_path == tmp_path / "out" / "reply-3.wav"
    assert rec.stats() == {"plays": 3, "seconds": pytest.approx(0.3)}


async def test_each_reply_is_told_once_for_the_story(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # shown relative to the working folder
    rec = player(tmp_path, path=tmp_path / "out" / "reply-{n}.wav")
    assert rec.describe_turn() is None
    await rec.play(stream(audio.tone(440, 1.25, 16000)), Progress())
    assert rec.describe_turn() == "the reply (1.2 s) is in out/reply-1.wav"
    assert rec.describe_turn() is None, "a turn that played nothing tells nothing"
    await rec.play(stream(), Progress())
    assert rec.describe_turn() is None


async def test_nothing_played_writes_nothing(tmp_path):
    rec = player(tmp_path)
    progress = Progress()
    await rec.play(stream(), progress)
    assert progress.calls == [] and rec.last_path is None and list(tmp_path.iterdir()) == []


async def test_stop_during_a_realtime_play_returns_with_only_what_was_played(tmp_path):
    rec = player(tmp_path, realtime=True)
    progress = Progress()
    full = audio.tone(440, 30.0, 16000)
    playing = asyncio.create_task(rec.play(stream(full), progress))
    while len(progress.pieces) < 3:
        await asyncio.sleep(0.01)
    await rec.stop()
    await asyncio.wait_for(playing, timeout=10)  # a generous bound: without stop() it takes 30 s
    fmt, pcm = audio.read_wav(rec.last_path)
    assert 0 < len(pcm) < len(full.pcm)
    assert len(pcm) // 2 == round(sum(c[2] for c in progress.pieces) * 16000)
    assert pcm == full.pcm[: len(pcm)]


async def test_stop_while_waiting_for_the_next_item_returns(tmp_path):
    rec = player(tmp_path)
    cancelled = asyncio.Event()

    async def slow_tts():
        yield audio.tone(440, 0.1, 16000)
        try:
            await asyncio.Event().wait()  # the next chunk never comes
        except asyncio.CancelledError:
            cancelled.set()
            raise

    progress = Progress()
    playing = asyncio.create_task(rec.play(slow_tts(), progress))
    while len(progress.pieces) < 2:
        await asyncio.sleep(0.01)
    await rec.stop()
    await asyncio.wait_for(playing, timeout=10)
    await asyncio.wait_for(cancelled.wait(), timeout=10)
    assert rec.played_seconds == pytest.approx(0.1)


class TestRecorderContract(PlayerContract):
    backend_class = WavRecorderPlayer

    @pytest.fixture(autouse=True)
    def _output(self, tmp_path):
        self.config = {"path": str(tmp_path / "reply-{n}.wav")}
