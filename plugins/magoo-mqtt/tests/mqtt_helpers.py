"""A real mosquitto broker per test, an MQTT client that records what it sees, and an engine run
with the MQTT actuator that lasts until the test is done with it.

(A module of its own, not conftest.py: plugin test folders are not packages, so two conftest
modules would shadow each other when tested together.)
"""

from __future__ import annotations

import asyncio
import contextlib
import getpass
import json
import re
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiomqtt
import pytest

from magoo_core.engine import Engine
from magoo_core.event_recorder import EventRecorder
from magoo_core.testing import TEST_PROFILE, build_plugins, make_profile
import magoo_mqtt

#: the test profile's source, in real time and looping: the run lasts until the test stops it
LIVE_SOURCE = {**TEST_PROFILE["audio_source"], "realtime": True, "loop": True}
#: real time: seconds a test waits for a message from the broker at most
WAIT = 15.0


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Broker:
    """``mosquitto -c conf`` on a port from the OS, its config and log in ``folder``.

    :param users: user -> password; when given, anonymous clients are refused.
    """

    def __init__(self, folder: Path, users: Mapping[str, str] | None = None) -> None:
        if shutil.which("mosquitto") is None:
            pytest.fail("mosquitto is not installed: run scripts/setup.sh (Debian package mosquitto)")
        self.folder = folder
        self.port = free_port()
        self.log = folder / "mosquitto.log"
        lines = [
            # run as root, mosquitto would become the user 'mosquitto', who cannot read this folder
            f"user {getpass.getuser()}",
            f"listener {self.port} 127.0.0.1", "persistence false", f"log_dest file {self.log}", "log_type all",
        ]
        if users:
            passwords = folder / "passwords"
            passwords.write_text("")
            for user, password in users.items():
                subprocess.run(["mosquitto_passwd", "-b", str(passwords), user, password], check=True, capture_output=True)
            lines += ["allow_anonymous false", f"password_file {passwords}"]
        else:
            lines.append("allow_anonymous true")
        self.conf = folder / "mosquitto.conf"
        self.conf.write_text("\n".join(lines) + "\n")
        self.process: subprocess.Popen | None = None
        self._restarted = False

    def start(self) -> Broker:
        self.process = subprocess.Popen(["mosquitto", "-c", str(self.conf)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 10  # real time: mosquitto's start-up
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                error = self.process.stderr.read().decode()
                if "Address already in use" in error and not self._restarted:  # another test took the port meanwhile
                    self._restarted = True
                    self.port = free_port()
                    self.conf.write_text(re.sub(r"listener \d+", f"listener {self.port}", self.conf.read_text()))
                    return self.start()
                raise RuntimeError(f"mosquitto did not start: {error}")
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                return self
            time.sleep(0.05)
        raise RuntimeError("mosquitto did not listen within 10 s")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)
        self.process = None

    def __enter__(self) -> Broker:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


@dataclass
class Seen:
    topic: str
    payload: str
    retain: bool


@dataclass
class Watcher:
    """An MQTT client subscribed to every topic; :attr:`seen` in the order received."""

    port: int
    username: str | None = None
    password: str | None = None
    seen: list[Seen] = field(default_factory=list)
    _client: aiomqtt.Client | None = None
    _task: asyncio.Task | None = None
    _arrived: asyncio.Event = field(default_factory=asyncio.Event)

    async def __aenter__(self) -> Watcher:
        self._client = aiomqtt.Client("127.0.0.1", self.port, username=self.username, password=self.password)
        await self._client.__aenter__()
        await self._client.subscribe("#", qos=1)
        self._task = asyncio.get_running_loop().create_task(self._read())
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError, aiomqtt.MqttError):
            await self._task
        with contextlib.suppress(aiomqtt.MqttError):
            await self._client.__aexit__(None, None, None)

    async def _read(self) -> None:
        async for message in self._client.messages:
            payload = message.payload.decode() if isinstance(message.payload, bytes) else str(message.payload or "")
            self.seen.append(Seen(str(message.topic), payload, bool(message.retain)))
            self._arrived.set()

    async def publish(self, topic: str, payload: str, *, retain: bool = False) -> None:
        await self._client.publish(topic, payload, qos=1, retain=retain)

    def values(self, topic: str) -> list[str]:
        return [message.payload for message in self.seen if message.topic == topic]

    def last(self, topic: str) -> str | None:
        values = self.values(topic)
        return values[-1] if values else None

    async def wait_for(self, test: Callable[[], Any], what: str, timeout: float = WAIT) -> Any:
        """Wait until ``test()`` is truthy (checked on each message and every 0.1 s); its value."""
        deadline = time.monotonic() + timeout
        while not (result := test()):
            if time.monotonic() > deadline:
                raise AssertionError(f"no {what} within {timeout} s; seen: {[(m.topic, m.payload[:60]) for m in self.seen][-30:]}")
            self._arrived.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._arrived.wait(), 0.1)
        return result

    async def value(self, topic: str, payload: str, timeout: float = WAIT) -> None:
        await self.wait_for(lambda: self.last(topic) == payload, f"{payload!r} on {topic}", timeout)

    def discovery(self, prefix: str = "homeassistant") -> dict[str, dict[str, Any]]:
        return {m.topic: json.loads(m.payload) for m in self.seen if m.topic.startswith(f"{prefix}/") and m.payload}


def mqtt(port: int, **options: Any) -> dict[str, Any]:
    """An ``[[actuators]]`` table for the MQTT actuator at a local broker."""
    return {"backend": "mqtt", "host": "127.0.0.1", "port": port, **options}


@dataclass
class Run:
    engine: Engine
    recorder: EventRecorder
    task: asyncio.Task

    @property
    def actuator(self) -> magoo_mqtt.MqttActuator:
        [slot] = [slot for slot in self.engine.actuators if slot.spec.backend == "mqtt"]
        return slot.instance or slot.last_instance

    def of(self, event: str) -> list[dict[str, Any]]:
        return [arguments for name, arguments in self.recorder.events if name == event]


@contextlib.asynccontextmanager
async def running(overrides: Mapping[str, Any], *, environ: Mapping[str, str] | None = None) -> AsyncIterator[Run]:
    """The engine running ``overrides`` (over the test profile, its source live and looping) until
    the block ends; then it is stopped and must stop cleanly."""
    plugins = build_plugins(magoo_mqtt)
    recorder = EventRecorder()
    plugins.pm.register(recorder, name="mqtt-tests.recorder")
    with tempfile.TemporaryDirectory() as scratch:
        profile = make_profile({"magoo": {"name": "Test Puppet"}, "audio_source": LIVE_SOURCE, **overrides}, plugins,
                               base_dir=Path(scratch), environ=environ)
        engine = Engine(profile, plugins, stop_at_source_end=False)
        task = asyncio.get_running_loop().create_task(engine.run())
        run = Run(engine, recorder, task)
        try:
            yield run
        finally:
            engine.request_stop()
            result = await asyncio.wait_for(task, 30)
    assert result.fatal is None, result.fatal
