"""examples/test.toml with a servo (gpiozero's mock pins) and a webhook to a local HTTP receiver.

The servo and webhook plugins test themselves in depth; this is the run the issue asks for, both
actuators in one real engine run next to the example's own log actuator.
"""

from __future__ import annotations

import json
import threading
import time
import tomllib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

import magoo_servo
import magoo_webhook
from magoo_core import Outcome
from magoo_core.engine import Engine
from magoo_core.testing import build_plugins, make_profile
from magoo_servo.pins import shared_factory

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "test.toml"


class Receiver:
    """A local HTTP endpoint in a thread: records JSON bodies; with ``hang`` it never answers."""

    def __init__(self, *, hang: bool = False) -> None:
        self.bodies: list[dict[str, Any]] = []
        self.release = threading.Event()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                receiver.bodies.append(json.loads(body))
                if hang:
                    receiver.release.wait(30)
                self.send_response(204)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def close(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


async def run_example(receiver: Receiver, tmp_path: Path) -> tuple[Any, list[Any], Any]:
    """One run of examples/test.toml plus a mock-pin servo and a webhook; returns (result, actuators, pin)."""
    data = tomllib.loads(EXAMPLE.read_text(encoding="utf-8"))
    data["tts"] = {**data["tts"], "realtime": True}  # speak at a speaker's pace, so the jaw has time to move
    data["actuators"] = [
        *data["actuators"],
        {"backend": "servo", "pin": 18, "pin_factory": "mock", "speak": {"open_angle": 30}},
        {"backend": "webhook", "url": receiver.url, "events": ["wake", "turn_end"], "timeout": 2.0, "retries": 0},
    ]
    plugins = build_plugins(magoo_servo, magoo_webhook)
    with shared_factory(magoo_servo.ServoConfig(pin=18, pin_factory="mock")) as factory:
        engine = Engine(make_profile(data, plugins, base_dir=tmp_path), plugins, max_turns=1)
        result = await engine.run()
        pin = factory.pin(18)
    return result, [slot.last_instance for slot in engine.actuators], pin


async def test_the_example_with_a_servo_and_a_webhook(tmp_path):
    receiver = Receiver()
    try:
        result, (_, servo, hook), pin = await run_example(receiver, tmp_path)
    finally:
        receiver.close()
    (timeline,) = result.timelines
    assert timeline.outcome is Outcome.OK
    (wake,) = [body for body in receiver.bodies if body["event"] == "wake"]
    assert {"wake_word", "confidence", "threshold", "timestamp", "model_name", "all_scores"} <= set(wake)
    assert wake["wake_word"] == "hey_magoo" and wake["model_name"] == "hey_magoo"
    assert abs(wake["timestamp"] - time.time()) < 60
    assert servo.stats()["moves"] > 0 and servo.stats()["attached"] == 0  # moved, then back at rest, detached
    assert pin.frequency is None  # no pulses left on the pin
    assert hook.stats()["delivered"] == 2


async def test_a_hanging_receiver_does_not_delay_the_turn_and_is_reported(tmp_path, caplog):
    working = Receiver()
    try:
        normal, _, _ = await run_example(working, tmp_path)
    finally:
        working.close()
    hanging = Receiver(hang=True)
    try:
        result, (_, _, hook), _ = await run_example(hanging, tmp_path)
    finally:
        hanging.close()
    (timeline,) = result.timelines
    (normal_timeline,) = normal.timelines
    assert timeline.outcome is Outcome.OK
    # the webhook's 2 s timeout never shows in the turn: wake to end takes as long as with a working receiver
    took, took_normally = timeline.ended - timeline.wake, normal_timeline.ended - normal_timeline.wake
    assert took < took_normally + 1.0
    stats = hook.stats()
    assert stats["delivered"] == 0 and stats["failed"] + stats["dropped"] >= 1
    assert hanging.url in caplog.text
