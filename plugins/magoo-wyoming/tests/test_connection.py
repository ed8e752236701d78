"""The frame reader and addresses shared by the Wyoming clients: bounded, and never crashed by a peer."""

from __future__ import annotations

import asyncio
import json
import random
import tracemalloc

import pytest
from wyoming.audio import AudioChunk
from wyoming.event import Event

from magoo_wyoming.connection import MAX_PAYLOAD, Address, MalformedFrame, parse_uri, read_event

from wyoming_servers import raw_event


def test_addresses_parse_and_bad_ones_say_the_form():
    assert parse_uri("tcp://192.168.1.20:10200") == Address("tcp", "192.168.1.20", 10200)
    assert parse_uri("tcp://[::1]:10300") == Address("tcp", "::1", 10300)
    assert str(parse_uri("unix:///run/piper.sock")) == "unix:///run/piper.sock"
    for bad in ("192.168.1.20:10200", "tcp://host", "tcp://host:99999", "http://host:10200", "unix://"):
        with pytest.raises(ValueError, match='must be "tcp://host:port"'):
            parse_uri(bad)


async def read_all(data: bytes) -> list[Event | str]:
    """Every event in ``data``, or the reason the reader stopped."""
    reader = asyncio.StreamReader(limit=64 * 1024 + 1)
    reader.feed_data(data)
    reader.feed_eof()
    found: list[Event | str] = []
    while True:
        try:
            event = await read_event(reader)
        except MalformedFrame as exc:
            found.append(str(exc))
            return found
        if event is None:
            return found
        found.append(event)


async def test_a_good_stream_reads_back_event_by_event():
    chunk = AudioChunk(rate=16000, width=2, channels=1, audio=b"\x01\x02" * 100).event()
    events = await read_all(raw_event(Event("describe")) + raw_event(chunk) + raw_event(Event("transcript", {"text": "hé"})))
    assert [e.type for e in events] == ["describe", "audio-chunk", "transcript"]
    assert events[1].payload == b"\x01\x02" * 100 and events[1].data["rate"] == 16000
    assert events[2].data == {"text": "hé"}


@pytest.mark.parametrize(
    ("wire", "says"),
    [
        (b"not json\n", "not JSON"),
        (b"[1, 2]\n", "without a type"),
        (b'{"type": ""}\n', "without a type"),
        (b'{"type": "x", "data": 3}\n', "data is not an object"),
        (b'{"type": "x", "payload_length": -1}\n', "payload_length -1"),
        (b'{"type": "x", "payload_length": "9"}\n', "payload_length 9"),
        (b'{"type": "x", "data_length": 99999999999}\n', "data_length"),
        (b'{"type": "x", "data_length": 4}\n[12]', "extra data is not an object"),
        (b'{"type": "x", "data_length": 4}\n[1,2', "extra data is not JSON"),
        (b'{"type": "x", "payload_length": 10}\nabc', "closed inside a x event"),
        (b'{"type": "x"', "closed inside an event header"),
        (b"x" * 70000 + b"\n", "longer than 65536 bytes"),
    ],
)
async def test_each_kind_of_malformed_frame_is_named(wire, says):
    assert says in (await read_all(wire))[-1]


async def test_ten_thousand_malformed_frames_never_crash_the_reader_nor_grow_its_memory():
    """A fuzz: real frames with bytes flipped, cut, repeated or replaced by random lengths. Every
    stream ends in events, a clean end or one MalformedFrame; nothing else is raised, and nothing
    near an announced multi-gigabyte payload is ever allocated."""
    rng = random.Random(20)
    chunk = raw_event(AudioChunk(rate=16000, width=2, channels=1, audio=bytes(640)).event())
    transcript = raw_event(Event("transcript", {"text": "turn on the light"}))
    seeds = [chunk, transcript, raw_event(Event("describe")), raw_event(Event("detection", {"name": "ok_nabu", "timestamp": 80}))]
    tracemalloc.start()
    outcomes = {"events": 0, "malformed": 0}
    for _ in range(10_000):
        frame = bytearray(rng.choice(seeds))
        kind = rng.randrange(5)
        if kind == 0:  # flip bytes
            for _ in range(rng.randint(1, 4)):
                frame[rng.randrange(len(frame))] = rng.randrange(256)
        elif kind == 1:  # cut
            frame = frame[: rng.randrange(len(frame))]
        elif kind == 2:  # a header with random lengths
            header = {"type": "audio-chunk", rng.choice(["payload_length", "data_length"]): rng.choice(
                [-5, 0, 3, 2**31, 2**62, 1.5, "10", None, True, MAX_PAYLOAD + 1])}
            frame = bytearray(json.dumps(header).encode() + b"\n" + bytes(rng.randrange(50)))
        elif kind == 3:  # random bytes
            frame = bytearray(rng.randbytes(rng.randrange(1, 200)))
        else:  # a good frame, then garbage
            frame += rng.randbytes(rng.randrange(1, 30))
        for item in await read_all(bytes(frame)):
            outcomes["events" if isinstance(item, Event) else "malformed"] += 1
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert outcomes["malformed"] > 5000 and outcomes["events"] > 1000, outcomes
    assert peak < 16 * 1024 * 1024, f"the reader allocated {peak} bytes at its peak"
