"""A reconnect storm over a simulated hour (issue 20): Home Assistant connects every 10 s for an
hour, one connection in two closing and the other going silent (the next replaces it), with a turn
in every connection. No turn is lost, ``played`` always goes back, and the log has at most one
line a minute.

The hour runs on an event loop whose clock jumps to the next timer whenever nothing is ready
(:class:`SimulatedClockLoop`), so it takes seconds; the satellite's :class:`Session` is driven
through in-memory streams (no socket has a simulated clock), with Home Assistant's side written
against the ``wyoming`` package's events.
"""

from __future__ import annotations

import asyncio
import logging
import selectors

from wyoming.audio import AudioChunk as WyomingChunk
from wyoming.audio import AudioStart, AudioStop
from wyoming.event import Event, async_read_event, async_write_event
from wyoming.ping import Ping
from wyoming.satellite import RunSatellite
from wyoming.tts import Synthesize

from magoo_core.types import AudioChunk
from magoo_wyoming.satellite.link import Link
from magoo_wyoming.satellite.session import Session

HOUR = 3600.0
RECONNECT_EVERY = 10.0  # Home Assistant reconnects 10 s after a link is lost
PING_EVERY = 2.0
SILENCE_TIMEOUT = 6.0


class _SimulatedSelector(selectors.DefaultSelector):
    """Never sleeps: when nothing is ready, the loop's clock moves on by the time it would have waited."""

    def __init__(self, loop_clock: list[float]) -> None:
        super().__init__()
        self.clock = loop_clock

    def select(self, timeout=None):
        ready = super().select(0)
        if not ready and timeout is not None and timeout > 0:
            self.clock[0] += timeout
        return ready


class SimulatedClockLoop(asyncio.SelectorEventLoop):
    """An event loop whose ``time()`` is simulated: an hour of timers passes in moments."""

    def __init__(self) -> None:
        self._simulated = [1000.0]
        super().__init__(_SimulatedSelector(self._simulated))

    def time(self) -> float:
        return self._simulated[0]


class _PipeWriter:
    """The write end of an in-memory stream: what is written is fed to ``reader``."""

    def __init__(self, reader: asyncio.StreamReader) -> None:
        self.reader = reader
        self.closed = False

    def write(self, data: bytes) -> None:
        if not self.closed:
            self.reader.feed_data(data)

    def writelines(self, lines) -> None:
        for line in lines:
            self.write(line)

    async def drain(self) -> None:
        if self.closed:
            raise ConnectionResetError("closed")

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self.reader.feed_eof()

    async def wait_closed(self) -> None:
        return None

    def get_extra_info(self, name, default=None):
        return ("192.168.1.10", 51000) if name == "peername" else default


class Connection:
    """One connection of Home Assistant to the satellite, seen from Home Assistant."""

    def __init__(self, session: Session, number: int) -> None:
        to_satellite, to_ha = asyncio.StreamReader(), asyncio.StreamReader()
        self.writer = _PipeWriter(to_satellite)  # Home Assistant writes here
        self.reader = to_ha
        self.link = Link(to_satellite, _PipeWriter(to_ha), f"192.168.1.10 (#{number})", silence_timeout=SILENCE_TIMEOUT,
                         max_frame_bytes=1 << 20, on_event=session.on_event)
        self.serving = asyncio.ensure_future(session.serve(self.link))
        self.received: list[str] = []
        self.pinging = True

    async def send(self, event: Event) -> None:
        if not self.writer.closed:
            await async_write_event(event, self.writer)

    async def ping(self) -> None:
        while self.pinging and not self.writer.closed:
            await self.send(Ping().event())
            await asyncio.sleep(PING_EVERY)

    async def answer(self) -> None:
        """Home Assistant's pipeline: after a second of the command's audio, the transcript and the reply."""
        audio = 0
        while (event := await async_read_event(self.reader)) is not None:
            self.received.append(event.type)
            if event.type == "audio-chunk":
                audio += 1
                if audio == 10:
                    await self.send(Event("transcript", {"text": "turn on the light"}))
                    await self.send(Synthesize(text="Turned on the light").event())
                    await self.send(AudioStart(rate=22050, width=2, channels=1).event())
                    await self.send(WyomingChunk(rate=22050, width=2, channels=1, audio=bytes(4410)).event())
                    await self.send(AudioStop().event())


async def satellite_turn(session: Session) -> bool:
    """What the engine does in a turn: stream the command, take the transcript and the reply, play
    it, say played. True when Home Assistant answered it."""
    run = await session.start_run("hey jarvis", (16000, 2, 1))
    chunk = AudioChunk(bytes(3200), 16000)  # 100 ms
    for _ in range(20):
        if run.heard or not await session.send_audio(chunk):
            break
        await asyncio.sleep(0.1)
    text = await run.transcript()
    sound = await run.reply()
    played = [c async for c in sound.chunks()]
    await session.played(run)
    return text == "turn on the light" and run.text == "Turned on the light" and sum(len(c.pcm) for c in played) == 4410


async def storm() -> tuple[int, int, list[tuple[float, str]], Session, list[Connection]]:
    loop = asyncio.get_running_loop()
    session = Session(Event("info", {}), "Home Assistant (test)")
    lines: list[tuple[float, str]] = []

    class Lines(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            lines.append((loop.time(), record.getMessage()))

    handler = Lines(logging.INFO)
    logger = logging.getLogger("magoo.wyoming.satellite")
    logger.addHandler(handler)
    old_level = logger.level
    logger.setLevel(logging.INFO)
    started, answered, connections = loop.time(), 0, []
    try:
        number = 0
        while loop.time() - started < HOUR:
            number += 1
            connection = Connection(session, number)
            connections.append(connection)
            listening = asyncio.ensure_future(connection.answer())
            await connection.send(RunSatellite().event())
            pinging = asyncio.ensure_future(connection.ping())
            await asyncio.sleep(1.0)
            turns = [satellite_turn(session)]
            answered += sum(await asyncio.gather(*turns))
            await asyncio.sleep(max(0.0, 6.0 - (loop.time() - started) % RECONNECT_EVERY))
            if number % 2:
                connection.writer.close()  # Home Assistant closes the connection
            else:
                connection.pinging = False  # Home Assistant goes silent; its next connection replaces this one
            await asyncio.sleep(max(0.0, started + number * RECONNECT_EVERY - loop.time()))
            pinging.cancel()
            listening.cancel()
        await asyncio.sleep(61.0)  # the held line of the last minute is logged
        return number, answered, lines, session, connections
    finally:
        await session.close()
        logger.removeHandler(handler)
        logger.setLevel(old_level)


def test_an_hour_of_reconnects_every_10_s_loses_no_turn_and_logs_at_most_a_line_a_minute():
    loop = SimulatedClockLoop()
    try:
        connections, answered, lines, session, links = loop.run_until_complete(storm())
    finally:
        loop.close()

    assert connections == 360 and answered == 360, "every connection's turn was answered"
    assert session.counters["connections"] == 360 and session.counters["pipelines"] == 360
    assert all(c.received.count("played") == 1 for c in links), "played went back once per turn"
    assert all(c.received[:3] == ["pong", "detection", "run-pipeline"] for c in links)
    assert 55 <= len(lines) <= 62, f"{len(lines)} lines in the hour and its last minute"
    gaps = [b - a for (a, _), (b, _) in zip(lines, lines[1:])]
    assert min(gaps) >= 60.0 - 1e-6, f"two lines {min(gaps):.1f} s apart"
    assert sum("more of its kind in the last minute" in line for _, line in lines) >= 50, "a held line says how many it stands for"
    assert "until it reconnects" in lines[-1][1], "the last line says how the link stands in the end: lost"

