"""The broker's password: only the MQTT client gets it; no payload, log line or status shows it.
And the last will: a ``magoo run`` killed with SIGKILL shows offline."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import subprocess
import sys
from pathlib import Path

from mqtt_helpers import Broker, Watcher, mqtt, running

PREFIX = "magoo/test_puppet"
PASSWORD = "Pa55-w0rd-of-the-broker"
MAGOO = Path(sys.executable).parent / "magoo"

PROFILE = """
[magoo]
name = "Test Puppet"

[audio_source]
backend = "scripted"
realtime = true
loop = true
segments = [{{ seconds = 0.4 }}, {{ seconds = 0.4, tone = 660.0, amplitude = 0.5 }}, {{ seconds = 0.3 }},
            {{ seconds = 1.0, tone = 440.0, amplitude = 0.3 }}, {{ seconds = 1.2 }}]

[wake]
backend = "scripted"
level = 0.2

[stt]
backend = "scripted"
transcripts = ["what time is it"]

[[actuators]]
backend = "mqtt"
host = "127.0.0.1"
port = {port}
username = "puppet"
password = {{ env = "MQTT_PASSWORD" }}
"""


async def test_the_password_reaches_the_broker_and_no_payload_log_or_status_and_secrets_in_a_reply_are_masked(tmp_path, caplog):
    caplog.set_level(logging.DEBUG)
    with Broker(tmp_path, users={"puppet": PASSWORD, "watcher": "watching"}) as broker:
        async with Watcher(broker.port, "watcher", "watching") as watcher, running(
            {"actuators": [mqtt(broker.port, username="puppet", password={"env": "MQTT_PASSWORD"})],
             "responder": {"backend": "echo", "template": {"env": "TEMPLATE"}}},
            environ={"MQTT_PASSWORD": PASSWORD, "TEMPLATE": "Open-Sesame-4711 heard {text}"},
        ) as run:
            await watcher.value(f"{PREFIX}/reply", "****what time is it")
            status = json.dumps(run.engine.control.snapshot())
            stats = run.actuator.stats()
    assert stats["connections"] == 1, "the broker took the password"
    published = "".join(m.topic + m.payload for m in watcher.seen)
    assert watcher.discovery() and PASSWORD not in published and "Open-Sesame" not in published
    assert PASSWORD not in caplog.text and PASSWORD not in status
    assert "magoo.mqtt.client" in {r.name for r in caplog.records}, "guards the check above: the client logged"


async def test_a_wrong_password_is_one_line_that_does_not_show_it_and_the_run_goes_on(tmp_path, caplog):
    caplog.set_level(logging.DEBUG)
    with Broker(tmp_path, users={"puppet": "the-right-one"}) as broker:
        async with running(
            {"actuators": [mqtt(broker.port, username="puppet", password={"env": "MQTT_PASSWORD"}, reconnect_max=1.0)]},
            environ={"MQTT_PASSWORD": PASSWORD},
        ) as run:
            while not run.of("turn_end"):  # real time: a turn while the broker refuses us
                await asyncio.sleep(0.1)
            healthy = run.actuator.healthy
    warnings = [r.getMessage() for r in caplog.records if r.name == "magoo.mqtt" and r.levelno >= logging.WARNING]
    assert len(warnings) == 1 and "authori" in warnings[0].lower(), warnings
    assert healthy is False and PASSWORD not in caplog.text


async def test_a_magoo_run_killed_with_sigkill_shows_offline_through_its_last_will(tmp_path):
    profile = tmp_path / "puppet.toml"
    with Broker(tmp_path, users={"puppet": PASSWORD, "watcher": "watching"}) as broker:
        profile.write_text(PROFILE.format(port=broker.port))
        env = {k: v for k, v in os.environ.items() if not k.startswith(("MAGOO_", "PYTHON"))}
        async with Watcher(broker.port, "watcher", "watching") as watcher:
            process = subprocess.Popen(
                [str(MAGOO), "run", "-v", "-p", str(profile)], cwd=tmp_path, env={**env, "MQTT_PASSWORD": PASSWORD},
                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            )
            try:
                await watcher.value(f"{PREFIX}/availability", "online", timeout=30)
                await watcher.value(f"{PREFIX}/transcript", "what time is it", timeout=30)
            finally:
                process.send_signal(signal.SIGKILL)
                out, err = process.communicate(timeout=10)
            await watcher.value(f"{PREFIX}/availability", "offline")
    assert process.returncode == -signal.SIGKILL
    assert "MQTT: connected to" in err and PASSWORD not in out + err
