"""The satellite's parts on their own: bounded frame reading (a fuzz of 10 000 malformed frames),
the allow-list, the profile section, ``magoo doctor``'s row, the ``info`` answered to ``describe``."""

from __future__ import annotations

import asyncio
import json
import random
import tracemalloc

import pytest

import magoo_wyoming
from magoo_core import ProfileError
from magoo_core.doctor.rows import Result
from magoo_core.testing import build_plugins, make_profile
from magoo_wyoming.satellite.config import SatelliteConfig
from magoo_wyoming.satellite.frames import FrameError, read_event
from magoo_wyoming.satellite.peers import AllowList
from magoo_wyoming.satellite.throttle import EVERY as REFUSED_LOG_EVERY
from magoo_wyoming.satellite.service import HomeAssistantSatellite, info_event

from test_satellite_faults import garbage

LIMIT = 1024 * 1024


async def _read_all(raw: bytes) -> tuple[int, int]:
    """(events, errors) reading ``raw`` until the end or the first FrameError."""
    reader = asyncio.StreamReader(limit=64 * 1024)
    reader.feed_data(raw)
    reader.feed_eof()
    events = 0
    try:
        while await read_event(reader, LIMIT) is not None:
            events += 1
    except FrameError:
        return events, 1
    return events, 0


async def test_ten_thousand_malformed_frames_each_end_in_a_frame_error_never_another_exception_nor_their_size_in_memory():
    rng = random.Random(7)
    tracemalloc.start()
    try:
        errors = 0
        for _ in range(10_000):
            _, failed = await _read_all(garbage(rng))
            errors += failed
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    # one kind in nine is well framed (its garbage is in the meaning: the session's fuzz covers it)
    assert errors >= 8_500
    assert peak < 4 * 1024 * 1024, f"peak {peak} bytes"


@pytest.mark.parametrize(
    ("raw", "why"),
    [
        (b'{"type": "audio-chunk", "payload_length": 2000000}\n', "over the limit"),
        (b'{"type": "x", "data_length": 1.5}\n', "data_length is not a non-negative integer"),
        (b'{"type": "x", "payload_length": true}\n', "payload_length is not a non-negative integer"),
        (b'{"type": "audio-chunk", "payload_length": 10}\nabc', "ended in the middle of a audio-chunk"),
        (b'{"type": "x"', "in the middle of a header"),
        (b"x" * 70_000 + b"\n", "a header line longer than"),
        (b"\xff\xfe\n", "not JSON"),
        (b'{"type": "x", "data_length": 2}\n[]', "x data that is not a JSON object"),
    ],
)
async def test_each_kind_of_bad_frame_says_what_was_wrong(raw, why):
    reader = asyncio.StreamReader(limit=64 * 1024)
    reader.feed_data(raw)
    reader.feed_eof()
    with pytest.raises(FrameError, match=why):
        await read_event(reader, LIMIT)


async def test_a_good_event_with_extra_data_and_payload_is_read_whole():
    data = json.dumps({"width": 2, "channels": 1}).encode()
    raw = json.dumps({"type": "audio-chunk", "data": {"rate": 16000}, "data_length": len(data), "payload_length": 4}).encode()
    reader = asyncio.StreamReader()
    reader.feed_data(raw + b"\n" + data + b"\x01\x02\x03\x04")
    reader.feed_eof()
    event = await read_event(reader, LIMIT)
    assert (event.type, event.data, event.payload) == ("audio-chunk", {"rate": 16000, "width": 2, "channels": 1}, b"\x01\x02\x03\x04")
    assert await read_event(reader, LIMIT) is None


def test_the_allow_list_takes_addresses_and_networks_and_says_a_refused_peer_once_a_minute(caplog):
    allow = AllowList(["192.168.1.10", "10.0.0.0/24"])
    assert allow.allows("192.168.1.10") and allow.allows("10.0.0.77") and allow.allows("::ffff:10.0.0.5")
    assert not allow.allows("192.168.1.11") and not allow.allows("not an address")
    assert AllowList([]).allows("203.0.113.9"), "empty: the bind address is the only fence"
    for second in range(10):
        allow.refused("192.168.1.11", now=100.0 + second)
    allow.refused("192.168.1.11", now=100.0 + REFUSED_LOG_EVERY + 1)
    assert caplog.text.count("refused a connection from 192.168.1.11") == 2
    assert allow.refusals == 11


def test_the_profile_must_say_where_the_satellite_listens():
    manager = build_plugins(magoo_wyoming)
    with pytest.raises(ProfileError) as caught:
        make_profile({"services": {"house": {"backend": "homeassistant"}}, "stt": {"service": "house"}}, manager)
    assert any("[services.house] host" in str(issue) for issue in caught.value.issues)
    with pytest.raises(ProfileError) as caught:
        make_profile({"services": {"house": {"backend": "homeassistant", "host": "0.0.0.0", "allow": ["kitchen"]}},
                      "stt": {"service": "house"}}, manager)
    assert any("'kitchen' is not an address or a network" in str(issue) for issue in caught.value.issues)


@pytest.mark.parametrize(
    ("host", "allow", "result"),
    [("127.0.0.1", [], Result.OK), ("0.0.0.0", ["192.168.1.5"], Result.OK), ("0.0.0.0", [], Result.WARN),
     ("192.168.1.20", [], Result.WARN)],
)
def test_doctor_warns_when_the_microphone_is_open_to_the_network_without_an_allow_list(host, allow, result):
    (row,) = HomeAssistantSatellite.doctor(SatelliteConfig(host=host, allow=allow), "[services.house]")
    assert row.result is result
    if result is Result.WARN:
        assert "allow" in row.fix and "no password" in row.found


def test_doctor_says_that_remote_wake_streams_the_microphone_whenever_magoo_listens():
    (row,) = HomeAssistantSatellite.doctor(SatelliteConfig(host="0.0.0.0", allow=["192.168.1.5"], wake="remote"), "[services.house]")
    assert row.result is Result.OK and "the microphone streams whenever magoo listens" in row.found
    (row,) = HomeAssistantSatellite.doctor(SatelliteConfig(host="0.0.0.0", allow=["192.168.1.5"]), "[services.house]")
    assert "streams" not in row.found


def test_describe_answers_an_installed_satellite_with_its_area_and_wake_words():
    from wyoming.info import Info

    info = Info.from_event(info_event(SatelliteConfig(host="127.0.0.1", name="kitchen-pi", area="Kitchen", wake_words=["hey jarvis"])))
    assert info.satellite.installed and info.satellite.name == "kitchen-pi" and info.satellite.area == "Kitchen"
    assert info.satellite.active_wake_words == ["hey jarvis"]
    assert [(m.name, m.phrase) for m in info.wake[0].models] == [("hey jarvis", "hey jarvis")]
    assert not info.asr and not info.tts, "Home Assistant loads no STT/TTS platform from a satellite"


def test_the_example_profile_loads_and_its_satellite_is_fenced_by_an_allow_list():
    from pathlib import Path

    from magoo_core.plugins import create_plugin_manager
    from magoo_core.profile import load_profile

    example = Path(__file__).resolve().parents[3] / "examples" / "homeassistant.toml"
    profile = load_profile(example, create_plugin_manager(), environ={})
    assert (profile.stt.backend, profile.stt.backup.backend) == ("homeassistant", "pocketsphinx")
    (row,) = HomeAssistantSatellite.doctor(profile.stt.config, profile.stt.section)
    assert row.result is Result.OK and "192.168.1.10" in row.found


async def test_a_held_back_line_is_logged_when_its_minute_is_over_so_the_last_state_is_known(caplog, monkeypatch):
    import logging

    from magoo_wyoming.satellite import throttle

    monkeypatch.setattr(throttle, "EVERY", 0.2)  # a minute, shortened
    log = logging.getLogger("magoo.wyoming.test-throttle")
    caplog.set_level(logging.INFO, log.name)
    said = throttle.Throttle(log)
    said.say("link", logging.INFO, "connected")
    said.say("link", logging.WARNING, "lost")
    said.say("link", logging.INFO, "connected")
    assert [r.getMessage() for r in caplog.records] == ["connected"]
    await asyncio.sleep(0.4)
    assert [r.getMessage() for r in caplog.records] == ["connected", "connected (and 1 more of its kind in the last minute)"]


def test_the_examples_remote_wake_variant_loads_as_its_comment_says():
    import tomllib
    from pathlib import Path

    from magoo_core.plugins import create_plugin_manager
    from magoo_core.profile import parse_profile

    example = Path(__file__).resolve().parents[3] / "examples" / "homeassistant.toml"
    data = tomllib.loads(example.read_text())
    data["services"]["house"]["wake"] = "remote"
    data["wake"] = {"service": "house", "backup": data["wake"]}
    profile = parse_profile(data, create_plugin_manager(), base_dir=example.parent, source=str(example), environ={})
    assert (profile.wake.backend, profile.wake.backup.backend) == ("homeassistant", "openwakeword")
    assert profile.wake.config is profile.stt.config and profile.stt.config.wake == "remote"


async def test_remote_wake_sends_each_moment_once_and_maps_a_detection_back_to_its_capture_time():
    import asyncio

    from magoo_core.types import AudioChunk
    from magoo_wyoming.satellite.remote_wake import RemoteWake, Stage

    sent: list[AudioChunk] = []

    async def send_audio(chunk):
        sent.append(chunk)
        return True

    async def request():
        return True

    remote = RemoteWake(request, send_audio, lambda: None, lambda *a: None)

    def chunk(end: float, seconds: float = 0.08) -> AudioChunk:
        return AudioChunk(bytes(round(seconds * 16000) * 2), 16000, timestamp=end)

    remote.offer(chunk(10.08))
    assert remote.stage is Stage.IDLE and not sent, "nothing goes out before a pipeline was asked for"
    await remote.start()
    remote.on_detect()
    for end in (10.08, 10.16, 10.24):  # the wake detector's frames
        remote.offer(chunk(end))
    remote.offer(chunk(10.20))  # the turn's pre-roll: sent already
    remote.offer(chunk(10.28))  # overlaps the last frame by half: only its new half goes
    await asyncio.sleep(0.01)
    assert [round(c.duration, 3) for c in sent] == [0.08, 0.08, 0.08, 0.04]
    wake = remote.on_detection("ok_nabu", 100)  # ms into the wake stage: inside the second frame
    assert wake.timestamp == 10.16 and remote.take() == wake and remote.take() is None
    remote.on_error("Home Assistant: No text recognized")
    assert remote.stage is Stage.WAITING and remote.available, "a turn's error: asked again soon, still available"
    remote.offer(chunk(10.36))
    await asyncio.sleep(0.01)
    assert len(sent) == 4, "nothing is sent between an error and the next request"
    await remote.close()
