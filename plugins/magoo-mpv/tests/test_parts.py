"""The mpv player's pure parts: level parsing, envelope pacing, stream kinds, mpg123 options."""

from __future__ import annotations

import asyncio

import pytest

from magoo_core import AudioChunk
from magoo_core.errors import BackendError
from magoo_core.testing.contracts import PlayerContract
from magoo_core.types import EncodedAudio
from magoo_mpv import MpvPlayer
from magoo_mpv.envelope import EnvelopePacer, Level, LevelParser
from magoo_mpv.fallback import output_args
from magoo_mpv.output_check import output_reasons
from magoo_mpv.streams import StreamKind

PRINTED = (
    b"frame:0    pts:0       pts_time:0\nlavfi.astats.Overall.RMS_level=-inf\n"
    b"frame:1    pts:800     pts_time:0.0362812\nlavfi.astats.Overall.RMS_level=-20.000000\n"
    b"frame:2    pts:1600    pts_time:0.0725624\nlavfi.astats.Overall.RMS_level=0.000000\n"
)


def test_levels_are_parsed_from_any_split_of_the_printed_text():
    for cut in (1, 7, 50, 90, len(PRINTED) - 1):
        parser = LevelParser()
        levels = parser.feed(PRINTED[:cut]) + parser.feed(PRINTED[cut:])
        assert levels == [Level(0.0, 0.0), Level(0.0362812, pytest.approx(0.1)), Level(0.0725624, 1.0)]


async def test_the_pacer_releases_each_level_when_its_audio_is_heard():
    emitted: list[tuple[float, float, float]] = []
    loop = asyncio.get_running_loop()
    pacer = EnvelopePacer(lambda level, duration: emitted.append((loop.time(), level, duration)))
    running = asyncio.create_task(pacer.run())
    pacer.add([Level(0.0, 0.1), Level(0.2, 0.2), Level(5.0, 0.3)])  # decoded ahead of the speaker
    await asyncio.sleep(0.05)
    assert emitted == []  # nothing is heard before the player's clock starts
    start = loop.time()
    pacer.heard(0.0)
    await asyncio.sleep(0.3)
    assert [level for _, level, _ in emitted] == [0.1, 0.2]  # 5 s is not heard yet
    assert emitted[1][0] - start >= 0.2 - 0.01  # not before its time
    pacer.flush()  # the end: the rest is out
    assert [level for _, level, _ in emitted] == [0.1, 0.2, 0.3]
    assert [duration for _, _, duration in emitted] == pytest.approx([0.2, 4.8, 4.8])
    running.cancel()


async def test_the_pacer_ends_when_cancelled_even_as_new_audio_wakes_it():
    # a barge-in: the player cancels the pacer in the same moment mpv reports its clock; with
    # Python 3.11's wait_for the wake-up swallowed the cancellation and the pacer waited for good
    for _ in range(20):
        pacer = EnvelopePacer(lambda level, duration: None)
        pacer.add([Level(5.0, 0.3)])
        pacer.heard(0.0)
        running = asyncio.create_task(pacer.run())
        await asyncio.sleep(0.01)  # waiting for the level 5 s ahead
        pacer.heard(0.01)
        running.cancel()
        done, _ = await asyncio.wait({running}, timeout=1.0)
        assert done and running.cancelled()


def test_stream_kinds():
    assert StreamKind.of(EncodedAudio(b"", "MP3")) == StreamKind("mp3")
    assert StreamKind.of(EncodedAudio(b"", "opus")).demuxer == "ogg"
    assert StreamKind.of(AudioChunk(b"", 24000, 2)) == StreamKind("pcm", 24000, 2)
    with pytest.raises(BackendError, match="cannot stream 'midi'"):
        StreamKind.of(EncodedAudio(b"", "midi"))


def test_mpv_device_names_become_mpg123_options():
    assert output_args("auto") == []
    assert output_args("pulse") == ["-o", "pulse"]
    assert output_args("alsa/plughw:1") == ["-o", "alsa", "-a", "plughw:1"]


def test_the_reasons_an_output_did_not_open_are_the_drivers_own_words():
    no_server = [  # mpv 0.35, audio_device "auto", no PulseAudio server, ALSA's default is PulseAudio
        "[W][23620.998821] pw.conf      | [          conf.c:  939 try_load_conf()] can't load config client.conf",
        "ALSA lib pulse.c:242:(pulse_connect) PulseAudio: Unable to connect: Connection refused",
        "[ao/alsa] Playback open error: Connection refused",
        "[ao/jack] cannot open server",
        "jack server is not running or cannot be started",
        "[ao] Failed to initialize audio driver 'sdl'",
        "Could not open/initialize audio device -> no sound.",
    ]
    assert output_reasons(no_server) == [
        "alsa: Playback open error: Connection refused",
        "jack: cannot open server",
        "alsa-lib: PulseAudio: Unable to connect: Connection refused",
    ]
    no_sink = [  # audio_device "pulse/no_such_sink"
        "[ao] Failed to initialize audio driver 'pulse'",
        "[ao] This audio driver/device was forced with the --audio-device option.",
        "[ao] Try unsetting it.",
        "Could not open/initialize audio device -> no sound.",
    ]
    assert output_reasons(no_sink) == ["Failed to initialize audio driver 'pulse'"]


@pytest.mark.usefixtures("virtual_audio")
class TestMpvContract(PlayerContract):
    backend_class = MpvPlayer
