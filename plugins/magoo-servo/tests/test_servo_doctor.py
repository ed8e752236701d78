"""``magoo doctor``'s rows for a servo: mock pins, a pigpio daemon that answers or not (a real
socket), and real pins on a machine without GPIO."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from magoo_core.doctor import Result
from magoo_servo import ServoActuator
from magoo_servo.config import ServoConfig

NO_GPIO = not any(Path("/dev").glob("gpiochip*")) and not any(Path("/dev").glob("gpiomem*"))


def rows_of(**config) -> list:
    return ServoActuator.doctor(ServoConfig(**config), "[[actuators]] #1")


@pytest.fixture
def listening() -> Iterator[int]:
    """A loopback port that takes connections, as a pigpio daemon does."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        yield server.getsockname()[1]


@pytest.fixture
def closed() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_mock_pins_need_nothing():
    assert [(r.check, r.result, r.found) for r in rows_of(pin=19, pin_factory="mock")] == [
        ("servo GPIO19", Result.OK, "[[actuators]] #1: gpiozero's mock pins, no hardware needed")
    ]


def test_a_pigpio_daemon_that_answers_is_ok(listening):
    (row,) = rows_of(pin=18, pin_factory="pigpio", pigpio_host="127.0.0.1", pigpio_port=listening)
    assert (row.check, row.result) == ("servo GPIO18", Result.OK)
    assert row.found == f"[[actuators]] #1; the pigpio daemon answers at 127.0.0.1:{listening}"


def test_a_stopped_pigpio_daemon_fails_with_the_command_that_starts_it(closed):
    (row,) = rows_of(pin=18, pin_factory="pigpio", pigpio_host="127.0.0.1", pigpio_port=closed)
    assert row.result is Result.FAIL
    assert row.found == f"[[actuators]] #1; cannot reach the pigpio daemon at 127.0.0.1:{closed}: refuses connections"
    assert row.fix == 'sudo systemctl start pigpiod  (or use pin_factory = "lgpio")'


@pytest.mark.skipif(not NO_GPIO, reason="this machine has GPIO")
def test_the_default_factory_reads_gpiozeros_variables_for_the_daemon(monkeypatch, closed, listening):
    pytest.importorskip("pigpio")  # without lgpio and RPi.GPIO, gpiozero picks pigpio
    monkeypatch.setenv("PIGPIO_ADDR", "127.0.0.1")
    monkeypatch.setenv("PIGPIO_PORT", str(closed))
    rows = rows_of(pin=18)
    gpio, daemon = rows  # real pins: this machine's missing GPIO is a row of its own
    assert gpio.result is Result.FAIL and gpio.found.startswith("no GPIO here (not a Raspberry Pi?)")
    assert "[[actuators]] #1 servo GPIO18 uses pin_factory 'default'" in gpio.found
    assert daemon.result is Result.FAIL
    assert f"gpiozero picks pigpio; cannot reach the pigpio daemon at 127.0.0.1:{closed}" in daemon.found

    monkeypatch.setenv("PIGPIO_PORT", str(listening))
    assert rows_of(pin=18)[1].result is Result.OK


@pytest.mark.skipif(not NO_GPIO, reason="this machine has GPIO")
def test_real_pins_fail_where_there_is_no_gpio_with_the_mock_as_a_way_out():
    rows = rows_of(pin=18, pin_factory="lgpio")
    assert rows[0].check == "servo GPIO18" and rows[0].result is Result.FAIL
    assert rows[0].found == (
        "no GPIO here (not a Raspberry Pi?): no /dev/gpiochip* or /dev/gpiomem*;"
        " [[actuators]] #1 servo GPIO18 uses pin_factory 'lgpio'"
    )
    assert rows[0].fix == 'run it on the Raspberry Pi, or set pin_factory = "mock" in the servo to try without hardware'
    assert all(r.result is Result.FAIL for r in rows)  # and lgpio itself, when it is not installed
