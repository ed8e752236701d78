"""sd_notify: READY after the first audio, WATCHDOG only while audio flows and the loop runs,
STATUS with the counters, STOPPING at the end; checked with a real unix datagram socket standing in
for systemd's ``$NOTIFY_SOCKET``."""

from __future__ import annotations

import asyncio
import os
import socket
import threading
import time
from pathlib import Path
from typing import ClassVar

import pytest

from magoo_core import AudioChunk, Backend, BackendConfig, hookimpl
from magoo_core.systemd import Notifier

from probe import run_engine, segments


class SystemdReceiver:
    """A datagram socket where systemd would listen; a thread stamps each message on arrival, so
    a blocked event loop cannot hide or delay what was (not) sent."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.socket = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.socket.bind(path.replace("@", "\0", 1) if path.startswith("@") else path)
        self.socket.settimeout(0.05)
        self.messages: list[tuple[float, dict[str, str]]] = []
        self.raw: list[bytes] = []
        self._running = True
        self._thread = threading.Thread(target=self._receive, daemon=True)
        self._thread.start()

    def _receive(self) -> None:
        while self._running:
            try:
                data = self.socket.recv(65536)
            except TimeoutError:
                continue
            self.raw.append(data)
            fields = dict(line.split("=", 1) for line in data.decode().split("\n"))
            self.messages.append((time.monotonic(), fields))

    def times(self, key: str) -> list[float]:
        return [when for when, fields in self.messages if key in fields]

    def wait_for(self, key: str, timeout: float = 30.0) -> None:
        """Until a message with ``key`` was received: this thread may lag behind the sender under load."""
        deadline = time.monotonic() + timeout
        while not self.times(key) and time.monotonic() < deadline:
            time.sleep(0.01)

    def close(self) -> None:
        self._running = False
        self._thread.join()
        self.socket.close()


@pytest.fixture
def systemd(tmp_path):
    receiver = SystemdReceiver(str(tmp_path / "notify"))
    yield receiver
    receiver.close()


def notifier(receiver: SystemdReceiver, watchdog: float = 0.2) -> Notifier:
    return Notifier(receiver.path, watchdog_usec=int(watchdog * 1e6))


# ---- the protocol ---------------------------------------------------------------------------------


def test_without_a_notify_socket_nothing_is_sent_and_nothing_fails():
    quiet = Notifier.from_environ({})
    assert not quiet.enabled and quiet.watchdog_interval is None
    quiet.ready("x")
    quiet.watchdog()


def test_the_watchdog_is_only_for_the_process_systemd_named():
    mine = Notifier.from_environ({"NOTIFY_SOCKET": "/run/x", "WATCHDOG_USEC": "30000000", "WATCHDOG_PID": str(os.getpid())})
    assert mine.watchdog_interval == 15.0
    other = Notifier.from_environ({"NOTIFY_SOCKET": "/run/x", "WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "1"})
    assert other.enabled and other.watchdog_interval is None


@pytest.mark.parametrize("abstract", [False, True], ids=["path", "abstract"])
def test_datagrams_are_key_value_lines(tmp_path, abstract):
    path = f"@magoo-test-{os.getpid()}" if abstract else str(tmp_path / "notify")
    receiver = SystemdReceiver(path)
    try:
        sender = Notifier(path)
        sender.ready("listening; 0 turns")
        sender.watchdog()
        sender.status("two\nlines")
        sender.stopping()
        deadline = time.monotonic() + 5
        while len(receiver.raw) < 4 and time.monotonic() < deadline:
            time.sleep(0.01)
    finally:
        receiver.close()
    assert receiver.raw == [
        b"READY=1\nSTATUS=listening; 0 turns",
        b"WATCHDOG=1",
        b"STATUS=two lines",
        b"STOPPING=1",
    ]


def test_a_vanished_socket_is_logged_once_and_never_raises(tmp_path, caplog):
    sender = Notifier(str(tmp_path / "gone"))
    for _ in range(3):
        sender.watchdog()
    assert len([r for r in caplog.records if "cannot notify systemd" in r.getMessage()]) == 1


# ---- the engine ---------------------------------------------------------------------------------


async def test_ready_after_the_first_audio_then_watchdog_status_and_stopping(systemd):
    sender = notifier(systemd)
    engine, probe, result = await run_engine(
        {"audio_source": segments((1.0, None), (0.4, 660.0), (0.3, None), (1.0, 440.0), (1.5, None))},
        turns=1,
        notifier=sender,
    )
    assert result.fatal is None and [t.outcome.value for t in result.timelines] == ["ok"]
    systemd.wait_for("STOPPING")
    kinds = [next(iter(fields)) for _, fields in systemd.messages]
    assert kinds[0] == "READY" and kinds[-1] == "STOPPING", kinds
    ready = systemd.messages[0][1]
    assert ready["STATUS"].startswith("listening; up 0h00m; 0 turns, 0 errors, 0 restarts")
    assert len(systemd.times("WATCHDOG")) >= 10, "every 0.1 s while the audio flows (4 s of it)"
    statuses = [fields["STATUS"] for _, fields in systemd.messages if "STATUS" in fields]
    assert any(s.startswith("awake; up 0h00m; 0 turns") for s in statuses), "the state as it changes"
    assert statuses[-1].startswith("stopping (asked to); listening; up 0h00m; 1 turns, 0 errors, 0 restarts; audio ")


class FrozenSource(Backend):
    """Delivers one second of audio, then blocks forever without an error (a frozen driver)."""

    name: ClassVar[str] = "frozen"
    frozen_at: ClassVar[float | None] = None

    class Config(BackendConfig):
        pass

    async def stream(self):
        for _ in range(12):
            await asyncio.sleep(0.08)
            yield AudioChunk(bytes(2 * 1280), 16000)
        type(self).frozen_at = time.monotonic()
        await asyncio.Event().wait()


class BlockingActuator(Backend):
    """On the wake word, blocks the event loop for a second (a plugin doing slow I/O on the loop)."""

    name: ClassVar[str] = "blocking"

    class Config(BackendConfig):
        pass

    blocked: ClassVar[tuple[float, float] | None] = None

    @hookimpl
    def magoo_on_wake(self) -> None:
        start = time.monotonic()
        time.sleep(1.0)
        type(self).blocked = (start, time.monotonic())


class SlowStartSource(Backend):
    """Its first audio comes 0.6 s after it started (a device that takes its time), then flows."""

    name: ClassVar[str] = "slow-start"

    class Config(BackendConfig):
        pass

    async def stream(self):
        await asyncio.sleep(0.6)
        while True:
            await asyncio.sleep(0.08)
            yield AudioChunk(bytes(2 * 1280), 16000)


class Parts:
    @staticmethod
    @hookimpl
    def magoo_register_audio_sources(register):
        register(FrozenSource)
        register(SlowStartSource)

    @staticmethod
    @hookimpl
    def magoo_register_actuators(register):
        register(BlockingActuator)


async def test_a_frozen_source_stops_the_pings_but_not_the_status(systemd, caplog):
    FrozenSource.frozen_at = None
    sender = notifier(systemd)
    task = asyncio.create_task(run_engine({"audio_source": {"backend": "frozen"}}, Parts, notifier=sender))
    await asyncio.sleep(2.5)  # one second of audio, then 1.5 s frozen
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    frozen = FrozenSource.frozen_at
    pings, statuses = systemd.times("WATCHDOG"), systemd.times("STATUS")
    assert [t for t in pings if t < frozen], "fed while the audio flowed"
    assert not [t for t in pings if t > frozen + 0.25], "one interval (0.1 s) after the freeze, no more pings"
    assert [t for t in statuses if t > frozen + 0.5], "STATUS goes on while the watchdog starves"
    assert any("no audio reached the engine" in r.getMessage() for r in caplog.records)


async def test_nothing_goes_to_systemd_before_ready_however_slow_the_start(systemd):
    sender = notifier(systemd)  # a STATUS every 0.1 s: six would come before the first audio
    task = asyncio.create_task(run_engine({"audio_source": {"backend": "slow-start"}}, Parts, notifier=sender))
    deadline = time.monotonic() + 30
    while not systemd.times("WATCHDOG") and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    kinds = [next(iter(fields)) for _, fields in systemd.messages]
    assert kinds[0] == "READY" and "WATCHDOG" in kinds, kinds


async def test_a_blocked_event_loop_sends_no_ping_while_it_is_blocked(systemd):
    BlockingActuator.blocked = None
    sender = notifier(systemd)
    await run_engine(
        {
            "audio_source": segments((1.0, None), (0.4, 660.0), (0.3, None), (1.0, 440.0), (1.5, None)),
            "actuators": [{"backend": "blocking"}],
        },
        Parts,
        turns=1,
        notifier=sender,
    )
    start, end = BlockingActuator.blocked
    pings = systemd.times("WATCHDOG")
    assert [t for t in pings if t < start] and [t for t in pings if t > end], "fed before and after"
    assert not [t for t in pings if start < t < end], "nothing while the loop was blocked"


def test_magoo_run_under_systemd_notifies_the_socket_it_was_given(magoo, systemd, tmp_path):
    profile = tmp_path / "test.toml"
    profile.write_text((Path(__file__).parent.parent / "examples" / "test.toml").read_text())
    result = magoo("run", "--profile", profile, env={"NOTIFY_SOCKET": systemd.path, "WATCHDOG_USEC": "200000"})
    assert result.returncode == 0, result.stderr
    systemd.wait_for("STOPPING")
    kinds = [next(iter(fields)) for _, fields in systemd.messages]
    assert kinds[0] == "READY" and kinds[-1] == "STOPPING", kinds
    assert systemd.messages[-1][1]["STATUS"].startswith("stopping (asked to); listening; up 0h00m; 1 turns, 0 errors")
