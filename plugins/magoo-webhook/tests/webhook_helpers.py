"""Helpers for the webhook plugin's tests: a real HTTP receiver on localhost, and a run of the
engine that keeps the running actuator for inspection.

A module of its own, not conftest.py: several plugins' tests have a conftest.py, and ``from
conftest import ...`` gets whichever was loaded last when they are tested together."""

from __future__ import annotations

import json
import socket
import tempfile
import threading
import time
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from magoo_core.engine import Engine
from magoo_core.testing import EventRecorder, RunRecord, build_plugins, make_profile
import magoo_webhook

TOKEN = "Bearer hook-secret-0123456789abcdefWXYZ"
#: The repository's test profile: fake devices, one whole turn, an assistant called "test".
EXAMPLE_PROFILE = Path(__file__).resolve().parents[3] / "examples" / "test.toml"


def example_with(*actuators: dict[str, Any]) -> dict[str, Any]:
    """examples/test.toml with these actuators after its own (the log actuator)."""
    import pytest

    if not EXAMPLE_PROFILE.is_file():
        pytest.skip("examples/test.toml is in the magoo repository, not in this distribution")
    data = tomllib.loads(EXAMPLE_PROFILE.read_text(encoding="utf-8"))
    return {**data, "actuators": [*data.get("actuators", []), *actuators]}


@dataclass
class Answer:
    """What the receiver answers to one request.

    :param hold: answer only after :meth:`Receiver.release` (called when the receiver closes).
    """

    status: int = 200
    body: bytes = b""
    content_type: str = "application/json"
    hold: bool = False
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Received:
    """One request as the receiver saw it."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    at: float = field(default_factory=time.monotonic)

    @property
    def json(self) -> Any:
        return json.loads(self.body)


class Receiver:
    """An HTTP server in a thread that records every request and answers from a script.

    ``script`` answers the first requests in order; after it runs out, ``default`` answers.
    Use as a context manager; ``url`` is where it listens.
    """

    def __init__(self, *script: Answer, default: Answer | None = None) -> None:
        self.script = list(script)
        self.default = default or Answer(204)
        self.requests: list[Received] = []
        self._released = threading.Event()
        self._arrived = threading.Condition()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                data = self.rfile.read(length)
                with receiver._arrived:
                    receiver.requests.append(Received(self.command, self.path, dict(self.headers), data))
                    answer = receiver.script.pop(0) if receiver.script else receiver.default
                    receiver._arrived.notify_all()
                if answer.hold:
                    receiver._released.wait()  # the client has usually given up by then
                self.send_response(answer.status)
                if answer.body:
                    self.send_header("Content-Type", answer.content_type)
                for name, value in answer.headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(answer.body)))
                self.end_headers()
                self.wfile.write(answer.body)

            do_POST = do_PUT = _handle

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = _QuietServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self._thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    def __enter__(self) -> Receiver:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.release()
        self.server.shutdown()
        self.server.server_close()
        self._thread.join(5)

    def release(self) -> None:
        """Answer every held request (and every later one at once)."""
        self._released.set()

    def wait_for(self, count: int, timeout: float = 10.0) -> list[Received]:
        """Block until ``count`` requests arrived; returns them all."""
        with self._arrived:
            if not self._arrived.wait_for(lambda: len(self.requests) >= count, timeout):
                raise AssertionError(f"the receiver got {len(self.requests)} requests, not {count}, within {timeout} s")
            return list(self.requests)

    def events(self, name: str) -> list[dict[str, Any]]:
        """The bodies of the requests for event ``name``."""
        return [r.json for r in self.requests if r.json.get("event") == name]


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client that gave up on a held request: writing the late answer fails, as expected


def json_answer(data: Any, status: int = 200) -> Answer:
    return Answer(status, json.dumps(data).encode())


def unused_port() -> int:
    """A port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def dead_url() -> str:
    return f"http://127.0.0.1:{unused_port()}/hook"


def webhook(url: str, **options: Any) -> dict[str, Any]:
    """An ``[[actuators]]`` table for the webhook actuator."""
    return {"backend": "webhook", "url": url, **options}


async def run_engine(
    overrides: Mapping[str, Any], *, environ: Mapping[str, str] | None = None, turns: int = 1, timeout: float = 30.0
) -> tuple[RunRecord, list[Any]]:
    """Like :func:`magoo_core.testing.run_profile`, also returning the webhook actuators it ran.

    Relative paths of the profile (the example's out/ folder) land in a scratch folder.
    """
    import asyncio

    plugins = build_plugins(magoo_webhook)
    recorder = EventRecorder()
    plugins.pm.register(recorder, name="webhook-tests.recorder")
    with tempfile.TemporaryDirectory() as scratch:
        profile = make_profile(overrides, plugins, base_dir=Path(scratch), environ=environ)
        engine = Engine(profile, plugins, max_turns=turns)
        async with asyncio.timeout(timeout):
            result = await engine.run()
    hooks = [slot.last_instance for slot in engine.actuators if slot.spec.backend == "webhook"]
    return RunRecord(recorder.events, result), hooks
