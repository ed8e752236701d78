"""The mpv player on a real PulseAudio server: what comes out of the speaker, and when.

Each test records the null sink's monitor (``speaker.monitor``) while the player plays real
speech (espeak-ng, encoded with lame), and checks the recording, not just the exit code.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
import time

import numpy as np
import pytest

from magoo_core.errors import BackendError
from magoo_core.types import AudioFormat
from magoo_core.testing.signals import best_match, match_in_pieces
from magoo_mpv import MpvPlayer, output_check

from mpv_helpers import RATE, Progress, audible_span, envelope, pcm_pieces, pieces, player_children, reference

pytestmark = pytest.mark.usefixtures("virtual_audio")


async def record_play(virtual_audio, player: MpvPlayer, audio, progress: Progress, *, tail: float = 0.5):
    """Play ``audio`` while recording; returns (recording, samples when play() returned, all samples)."""
    with virtual_audio.record() as recording:
        await asyncio.to_thread(recording.wait_for_data)
        await player.play(audio, progress)
        at_return = recording.samples()
        await asyncio.sleep(tail)
        return recording, at_return, recording.samples()


async def test_streamed_mp3_comes_out_whole_with_real_start_end_and_envelope(virtual_audio, speech_files):
    ref = reference()
    progress = Progress()
    async with MpvPlayer(MpvPlayer.Config()) as player:
        recording, at_return, recorded = await record_play(virtual_audio, player, pieces(speech_files["mp3"].read_bytes(), "mp3"), progress)

    # the content: the speech, whole, at its own length
    _, correlation = best_match(recorded, ref)
    assert correlation > 0.8
    start, end = audible_span(recorded)
    ref_start, ref_end = audible_span(ref)
    assert abs((end - start) - (ref_end - ref_start)) <= 0.05 * (ref_end - ref_start)
    # "ended" means the sound had ended: the recording already held all of it when play() returned
    assert audible_span(at_return)[1] >= end - 0.05
    # "started" came before the sound (mpv's audio clock, not the first write)
    assert progress.started_at is not None
    assert recording.index_at(progress.started_at) <= round(start * RATE) + 0.02 * RATE
    # the envelope: 20–60 levels a second, covering the reply, following what was heard
    seconds = len(ref) / RATE
    assert 20 <= len(progress.levels) / seconds <= 60
    assert sum(d for _, _, d in progress.levels) == pytest.approx(seconds, rel=0.1)
    assert _envelope_alignment(recording, recorded, progress) > 0.6


def _envelope_alignment(recording, recorded: np.ndarray, progress: Progress) -> float:
    """Correlation of the reported levels with the speaker's energy at the moment each was reported."""
    heard = envelope(recorded)
    levels = np.array([level for _, level, _ in progress.levels])
    at = [min(len(heard) - 1, max(0, recording.index_at(moment) // 160)) for moment, _, _ in progress.levels]
    return float(np.corrcoef(levels, heard[at])[0, 1])


async def test_pcm_and_wav_streams_play_too(virtual_audio, speech_files):
    ref = reference()
    async with MpvPlayer(MpvPlayer.Config()) as player:
        for audio in (pcm_pieces(ref), pieces(speech_files["wav"].read_bytes(), "wav", size=8192)):
            progress = Progress()
            _, _, recorded = await record_play(virtual_audio, player, audio, progress)
            assert best_match(recorded, ref)[1] > 0.9
            assert progress.started_at is not None and progress.levels


async def test_the_next_reply_finds_mpv_already_waiting(virtual_audio, speech_files):
    data = speech_files["mp3"].read_bytes()
    async with MpvPlayer(MpvPlayer.Config()) as player:
        waiting = player._spare
        assert waiting is not None and waiting.alive  # started with the backend, before any reply
        assert player_children() == [waiting.proc.pid]  # the start check's mpv has ended
        await player.play(pieces(data[:6000], "mp3", delay=0), Progress())
        await asyncio.gather(player._preparing or asyncio.sleep(0))  # the next one starts in the background
        assert player._spare is not None and player._spare.alive and player._spare is not waiting
        assert player.stats() == {"plays": 1, "processes": 2}


async def test_told_what_the_tts_yields_the_first_reply_finds_an_mpv_waiting_for_it(virtual_audio):
    ref = reference()
    async with MpvPlayer(MpvPlayer.Config()) as player:
        started_for_mp3 = player._spare
        await player.expect("mp3")  # what it waits for already: nothing changes
        assert player._spare is started_for_mp3
        await player.expect(AudioFormat(RATE))  # espeak-ng's PCM, say
        await asyncio.gather(player._preparing or asyncio.sleep(0))
        waiting = player._spare
        assert waiting is not None and waiting.alive and waiting is not started_for_mp3
        assert player_children() == [waiting.proc.pid]  # the mp3 one was ended, not left behind
        progress = Progress()
        playing = asyncio.create_task(player.play(pcm_pieces(ref), progress))
        while progress.started_at is None:
            await asyncio.sleep(0.01)
        assert player._current is waiting  # no new mpv started for the first reply
        await playing
        await player.expect("speex")  # nothing here reads it: ignored, the first such reply says why
        assert player._spare_kind.codec == "pcm"


async def test_stop_silences_at_once_and_play_returns_normally(virtual_audio, speech_files):
    data = speech_files["mp3"].read_bytes()
    progress = Progress()

    async def endless():
        while True:
            async for piece in pieces(data, "mp3"):
                yield piece

    async with MpvPlayer(MpvPlayer.Config()) as player:
        with virtual_audio.record() as recording:
            await asyncio.to_thread(recording.wait_for_data)
            playing = asyncio.create_task(player.play(endless(), progress))
            await asyncio.sleep(1.5)
            stopped_at = time.monotonic()
            await player.stop()
            await asyncio.wait_for(playing, 5)  # returns, does not raise
            await asyncio.sleep(0.6)
            recorded = recording.samples()
    assert audible_span(recorded[: recording.index_at(stopped_at)])  # it was speaking
    after = recorded[recording.index_at(stopped_at) + int(0.1 * RATE) :]
    assert envelope(after).max() < 100  # and silent from 100 ms after the stop


async def test_a_killed_mpv_is_an_error_for_that_reply_and_the_next_reply_plays(virtual_audio, speech_files):
    data = speech_files["mp3"].read_bytes()
    async with MpvPlayer(MpvPlayer.Config()) as player:
        progress = Progress()
        playing = asyncio.create_task(player.play(pieces(data, "mp3"), progress))
        while progress.started_at is None:
            await asyncio.sleep(0.02)
        os.kill(player._current.proc.pid, signal.SIGKILL)
        with pytest.raises(BackendError, match="mpv was killed by SIGKILL while playing"):
            await asyncio.wait_for(playing, 5)
        _, _, recorded = await record_play(virtual_audio, player, pieces(data, "mp3"), Progress())
        assert match_in_pieces(recorded, reference()) > 0.8


async def test_a_stuck_output_is_an_error_not_a_hang(speech_files):
    data = speech_files["mp3"].read_bytes()
    async with MpvPlayer(MpvPlayer.Config(stall_timeout=1.0)) as player:
        progress = Progress()
        playing = asyncio.create_task(player.play(pieces(data, "mp3", delay=0), progress))
        while progress.started_at is None:
            await asyncio.sleep(0.02)
        os.kill(player._current.proc.pid, signal.SIGSTOP)  # frozen: holds the audio, plays nothing
        with pytest.raises(BackendError, match="the output is stuck"):
            await asyncio.wait_for(playing, 10)


async def test_a_dead_waiting_mpv_is_replaced_quietly(virtual_audio, speech_files):
    data = speech_files["mp3"].read_bytes()
    async with MpvPlayer(MpvPlayer.Config()) as player:
        player._spare.proc.kill()
        await player._spare.proc.wait()
        _, _, recorded = await record_play(virtual_audio, player, pieces(data, "mp3"), Progress())
        assert match_in_pieces(recorded, reference()) > 0.8


FIX = "check [player] audio_device (`mpv --audio-device=help` lists them) and that a sound server or a speaker is there"


async def start_fails(config: MpvPlayer.Config) -> BackendError:
    """The error that stops the player's start; no player process may be left behind."""
    with pytest.raises(BackendError) as caught:
        async with MpvPlayer(config):
            pytest.fail("the player started")
    assert player_children() == []
    assert "\n" not in str(caught.value)
    return caught.value


@pytest.mark.parametrize(
    ("device", "reason"),
    [
        ("pulse/no_such_sink", "Failed to initialize audio driver 'pulse'"),
        ("alsa/plughw:CARD=NoSuchCard", "alsa: Playback open error: No such file or directory; alsa-lib: Unknown PCM plughw:CARD=NoSuchCard"),
    ],
    ids=["pulse", "alsa"],
)
async def test_an_audio_device_that_does_not_exist_stops_the_start_naming_it_and_the_fix(device, reason):
    error = await start_fails(MpvPlayer.Config(audio_device=device))
    assert str(error) == f"mpv cannot open the audio output '{device}' ({reason}): {FIX}"
    assert error.retryable  # the device may be plugged in


async def test_no_sound_output_at_all_stops_the_start(virtual_audio, monkeypatch, tmp_path):
    assert "ALSA_CONFIG_PATH" in virtual_audio.env  # ALSA's only device is the PulseAudio server
    monkeypatch.setenv("PULSE_SERVER", f"unix:{tmp_path / 'no-server'}")
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path))  # no PipeWire either
    error = await start_fails(MpvPlayer.Config())
    assert str(error).startswith("mpv cannot open the audio output 'auto' (alsa: Playback open error: ")
    assert "Connection refused" in str(error) and str(error).endswith(f"): {FIX}")
    assert error.retryable


@pytest.fixture
def hung_sound_server(monkeypatch, tmp_path):
    """A PulseAudio socket that takes connections and never answers, and no PipeWire."""
    with socket.socket(socket.AF_UNIX) as server:
        server.bind(str(tmp_path / "native"))
        server.listen()
        monkeypatch.setenv("PULSE_SERVER", f"unix:{tmp_path / 'native'}")
        monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path))
        yield


@pytest.mark.usefixtures("hung_sound_server")
async def test_a_hung_sound_server_stops_the_start_after_the_timeout(monkeypatch):
    monkeypatch.setattr(output_check, "TIMEOUT", 1.0)
    started = time.monotonic()
    error = await start_fails(MpvPlayer.Config(audio_device="pulse"))
    assert time.monotonic() - started < 3
    assert str(error) == (
        f"mpv did not finish 50 ms of silence on the audio output 'pulse' within 1 s (a hung sound server or device): {FIX}"
    )
    assert error.retryable


@pytest.mark.usefixtures("hung_sound_server")
async def test_a_cancelled_start_leaves_no_mpv_running():
    starting = asyncio.create_task(MpvPlayer(MpvPlayer.Config()).__aenter__())
    for _ in range(100):  # until the waiting mpv and the check, which hangs, both run
        await asyncio.sleep(0.05)
        if len(player_children()) == 2:
            break
    await asyncio.sleep(0.2)
    assert len(player_children()) == 2 and not starting.done()
    starting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await starting
    assert player_children() == []


async def test_the_check_plays_with_the_replies_options():
    error = await start_fails(MpvPlayer.Config(extra_args=["--no-such-option"]))
    assert str(error) == (
        "mpv exited with code 1 at start (Error parsing option no-such-option (option not found)"
        " | Setting commandline option --no-such-option= failed.)"
    )
    assert not error.retryable


async def test_without_the_check_a_wrong_device_fails_at_the_first_reply(speech_files):
    data = speech_files["mp3"].read_bytes()
    config = MpvPlayer.Config(audio_device="alsa/plughw:CARD=NoSuchCard", check_output=False)
    async with MpvPlayer(config) as player:
        with pytest.raises(BackendError, match="mpv") as caught:
            await asyncio.wait_for(player.play(pieces(data, "mp3", delay=0), Progress()), 15)
    assert f"audio output initialization failed; {FIX}" in str(caught.value)


async def test_mpg123_plays_mp3_when_mpv_is_missing(virtual_audio, speech_files, caplog):
    data = speech_files["mp3"].read_bytes()
    caplog.set_level(logging.WARNING, "magoo.mpv")
    progress = Progress()
    async with MpvPlayer(MpvPlayer.Config(mpv="mpv-not-installed")) as player:
        recording, at_return, recorded = await record_play(virtual_audio, player, pieces(data, "mp3"), progress)
        await player.play(pieces(data[:4000], "mp3", delay=0), Progress())
    assert [r.getMessage() for r in caplog.records] == [
        "mpv is not installed; playing MP3 replies with mpg123 (install mpv: sudo apt install mpv)"
    ]  # said once, for two replies
    assert match_in_pieces(recorded, reference()) > 0.8
    start, end = audible_span(recorded)
    assert audible_span(at_return)[1] >= end - 0.05
    assert recording.index_at(progress.started_at) <= round(start * RATE) + 0.02 * RATE
    assert len(progress.levels) / (len(reference()) / RATE) >= 20
    assert _envelope_alignment(recording, recorded, progress) > 0.6


async def test_mpg123_cannot_play_other_formats_and_says_what_to_install(speech_files):
    async with MpvPlayer(MpvPlayer.Config(mpv="mpv-not-installed")) as player:
        with pytest.raises(BackendError, match=r"cannot play wav; install mpv \(sudo apt install mpv\)"):
            await player.play(pieces(speech_files["wav"].read_bytes(), "wav"), Progress())


async def test_neither_player_installed_fails_at_start_naming_the_fix():
    config = MpvPlayer.Config(mpv="mpv-not-installed", mpg123="mpg123-not-installed")
    with pytest.raises(BackendError, match=r"needs 'mpv-not-installed', which is not installed: sudo apt install mpv"):
        async with MpvPlayer(config):
            pass


async def test_set_volume_plays_the_next_sound_quieter_and_the_waiting_process_is_replaced(virtual_audio, speech_files):
    data = speech_files["mp3"].read_bytes()
    async with MpvPlayer(MpvPlayer.Config()) as player:
        _, _, loud = await record_play(virtual_audio, player, pieces(data, "mp3"), Progress())
        waiting = player._spare
        await player.set_volume(50)
        _, _, quiet = await record_play(virtual_audio, player, pieces(data, "mp3"), Progress())
        with pytest.raises(ValueError, match="out of range"):
            await player.set_volume(131)
    assert waiting is not None and not waiting.alive  # started with the old volume: replaced
    rms = lambda samples: float(np.sqrt(np.mean(np.square(samples.astype(np.float64)))))  # noqa: E731
    # mpv's volume is cubic: 50 % is an eighth of the amplitude
    assert 0.08 < rms(quiet) / rms(loud) < 0.2, rms(quiet) / rms(loud)
    assert match_in_pieces(quiet, reference()) > 0.8  # the same speech, quieter
