"""Shared pieces for the servo's tests: configs on mock pins, pulse widths read back as angles,
a known speech envelope, and a clock the test moves by hand."""

from __future__ import annotations

import math
import socket
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from magoo_servo import ServoActuator, ServoConfig


def mock_config(**changes: Any) -> ServoConfig:
    """A servo on GPIO18 of gpiozero's MockFactory (with PWM pins), changed by ``changes``."""
    return ServoConfig.model_validate({"pin": 18, "pin_factory": "mock", **changes})


def angle_of(state: float, config: ServoConfig) -> float:
    """The angle a PWM duty cycle (gpiozero pin state) commands: pulse width = state × frame width."""
    width = state * config.frame_width
    share = (width - config.min_pulse_width) / (config.max_pulse_width - config.min_pulse_width)
    return config.angle_at_min_pulse + share * (config.angle_at_max_pulse - config.angle_at_min_pulse)


def width_of(angle: float, config: ServoConfig) -> float:
    """The pulse width (seconds) that commands ``angle``."""
    share = (angle - config.angle_at_min_pulse) / (config.angle_at_max_pulse - config.angle_at_min_pulse)
    return config.min_pulse_width + share * (config.max_pulse_width - config.min_pulse_width)


def pulses(pin: Any, frame_width: float = 0.02) -> list[float]:
    """Every pulse width (seconds) the pin was ever set to, in order; 0 (no pulses) left out."""
    return [s.state * frame_width for s in pin.states if s.state]


def syllables(t: float) -> float:
    """A speech-like RMS envelope: four syllables a second with short gaps, never quite silent."""
    return 0.02 + 0.2 * max(0.0, math.sin(2 * math.pi * 4 * t))


@dataclass
class Trace:
    """What the pin did at each step: (time, envelope level, pin state, pin frequency)."""

    rows: list[tuple[float, float, float, Any]] = field(default_factory=list)

    def angles(self, config: ServoConfig) -> list[float]:
        return [angle_of(state, config) for _, _, state, _ in self.rows]

    def levels(self) -> list[float]:
        return [level for _, level, _, _ in self.rows]


def speak(servo: ServoActuator, seconds: float, envelope=syllables, *, chunk_ms: int = 25) -> Trace:
    """Play ``seconds`` of ``envelope`` into the servo as the engine would, moving time by hand.

    Levels arrive every ``chunk_ms`` (40 a second by default), the servo steps every
    1 / update_rate; the time base is whole milliseconds, so nothing depends on the wall clock.
    """
    step_ms = round(servo.period * 1000)
    trace = Trace()
    for ms in range(round(seconds * 1000)):
        t = ms / 1000
        if ms % chunk_ms == 0:
            servo.magoo_on_speak_chunk(level=envelope(t), duration=chunk_ms / 1000)
        if ms % step_ms == 0:
            servo.tick(servo.period)
            trace.rows.append((t, envelope(t), servo.pin.state, servo.pin.frequency))
    return trace


def ticks(servo: ServoActuator, seconds: float) -> Iterator[float | None]:
    """Step the servo for ``seconds``; yields what each step sent."""
    for _ in range(round(seconds / servo.period)):
        yield servo.tick(servo.period)


def unused_port() -> int:
    """A localhost TCP port nothing listens on (nothing: the socket is closed again)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]
