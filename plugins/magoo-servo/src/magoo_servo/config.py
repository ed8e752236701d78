"""What a servo is told in the profile: its pin, its calibration, its limits and its motions."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, StrictInt, field_validator, model_validator

from magoo_core import BackendConfig
from magoo_core.fields import Count, Number, Seconds, StrictBool

#: any angle a servo is set to, in degrees: a full turn either way is more than any servo has
Angle = Number(-360, 360)


class SpeakMotion(BackendConfig):
    """The mouth: opens with the level of the voice that is being heard."""

    closed_angle: Angle | None = Field(
        None, description="Angle of the closed mouth, in degrees; unset: `rest_angle`."
    )
    open_angle: Angle = Field(30.0, description="Angle of the mouth opened all the way, in degrees.")
    gain: Number(0, 100, lo_open=True) = Field(
        4.0, description="The voice's RMS level (0..1) times this is how far the mouth opens (0..1, clipped)."
    )
    attack: Seconds(0, 10, lo_open=True) = Field(
        0.03, description="Seconds the mouth takes to follow a louder voice (time constant of the smoothing)."
    )
    release: Seconds(0, 10, lo_open=True) = Field(
        0.12, description="Seconds the mouth takes to follow a quieter voice (time constant of the smoothing)."
    )


class WakeNod(BackendConfig):
    """A nod on the wake word: to ``angle`` and back, in ``seconds``."""

    angle: Angle = Field(20.0, description="Angle the nod goes to, in degrees.")
    seconds: Seconds(0, 10, lo_open=True) = Field(0.4, description="How long the nod takes, there and back.")


class Gestures(BackendConfig):
    """Tools a language model may call to move this servo: ``nod`` and ``shake`` (issue 19)."""

    nod: StrictBool = Field(True, description="Offer the nod tool: to `nod_angle` and back to rest, a few times.")
    shake: StrictBool = Field(
        True, description="Offer the shake tool: `shake_angle` degrees to each side of rest and back, a few times."
    )
    nod_angle: Angle = Field(20.0, description="Angle a nod goes to, in degrees (within min_angle..max_angle).")
    shake_angle: Number(0, 360, lo_open=True) = Field(
        20.0, description="Degrees a shake goes to each side of `rest_angle`; clipped to min_angle..max_angle."
    )
    swing: Seconds(0.05, 5) = Field(0.25, description="Seconds one swing (there, or back) takes; max_speed still holds.")
    prefix: str = Field(
        "",
        pattern=r"^[a-z0-9_]{0,20}$",
        description="Put before the tools' names, for a second servo with gestures: 'neck_' offers neck_nod, neck_shake.",
    )


def _table_or_false(value: Any) -> Any:
    """``false`` turns a motion off (TOML has no null); ``true`` means the defaults."""
    if value is False:
        return None
    if value is True:
        return {}
    return value


class ServoConfig(BackendConfig):
    """One servo on one GPIO pin; a profile may list several, each in its own ``[[actuators]]``."""

    pin: StrictInt | str = Field(
        ...,
        description='The signal pin: a BCM number (18) or a gpiozero pin name ("GPIO18", "BOARD12").',
    )
    pin_factory: Literal["default", "pigpio", "lgpio", "mock"] = Field(
        "default",
        description=(
            "The GPIO library: pigpio (hardware-timed pulses, needs the pigpiod daemon; not on a Pi 5),"
            " lgpio (Raspberry Pi OS bookworm, Pi 5), mock (no hardware, for tests) or default (gpiozero picks)."
        ),
    )
    pigpio_host: str = Field("localhost", description="Host of the pigpio daemon, for pin_factory = 'pigpio'.")
    pigpio_port: Count(1, 65535) = Field(8888, description="Port of the pigpio daemon, for pin_factory = 'pigpio'.")
    min_pulse_width: Seconds(0.00005, 0.1) = Field(
        0.0005, description="Pulse width in seconds at the servo's end that means `angle_at_min_pulse`."
    )
    max_pulse_width: Seconds(0.00005, 0.1) = Field(
        0.0025, description="Pulse width in seconds at the servo's other end, meaning `angle_at_max_pulse`."
    )
    frame_width: Seconds(0.001, 0.1) = Field(0.02, description="Seconds from one pulse to the next (0.02: 50 pulses a second).")
    angle_at_min_pulse: Angle = Field(-90.0, description="The angle that `min_pulse_width` moves the servo to (calibration).")
    angle_at_max_pulse: Angle = Field(90.0, description="The angle that `max_pulse_width` moves the servo to (calibration).")
    min_angle: Angle = Field(-90.0, description="Limit: the servo is never sent below this angle.")
    max_angle: Angle = Field(90.0, description="Limit: the servo is never sent above this angle.")
    rest_angle: Angle = Field(0.0, description="Where the servo rests when the assistant is idle, and at start and stop.")
    max_speed: Number(0, 1e6, lo_open=True) = Field(300.0, description="Fastest the servo is ever moved, in degrees per second (every motion).")
    update_rate: Number(5, 200) = Field(50.0, description="Position updates per second.")
    detach_after: Seconds(0, 3600) = Field(
        0.5, description="Seconds at rest while idle after which the pulses stop (no buzzing, no jitter)."
    )
    speak: SpeakMotion | None = Field(
        default_factory=dict,  # type: ignore[arg-type]
        description="The mouth that follows the voice while speaking: a table (below); false: hold the listening pose instead.",
    )
    wake: WakeNod | None = Field(
        default_factory=dict,  # type: ignore[arg-type]
        description="The nod on the wake word: a table (below); false: no nod.",
    )
    listening_angle: Angle | None = Field(
        None, description="Pose held while awake and thinking, in degrees; unset: `rest_angle`."
    )
    gestures: Gestures | None = Field(
        None,
        description="Tools a language model may call to move this servo (nod, shake): a table (below) or true; unset: none.",
    )

    @field_validator("pin")
    @classmethod
    def _pin_number(cls, value: int | str) -> int | str:
        if isinstance(value, str) and value.strip().isdigit():
            value = int(value)
        if isinstance(value, int) and not 0 <= value <= 53:
            raise ValueError(f"{value} is not a BCM GPIO number (the 40-pin header has GPIO0 to GPIO27)")
        return value

    @field_validator("speak", "wake", "gestures", mode="before")
    @classmethod
    def _switch(cls, value: Any) -> Any:
        return _table_or_false(value)

    @model_validator(mode="after")
    def _within_limits(self) -> ServoConfig:
        problems = []
        if self.max_pulse_width <= self.min_pulse_width:
            problems.append("max_pulse_width must be longer than min_pulse_width")
        if self.max_pulse_width >= self.frame_width:
            problems.append("max_pulse_width must be shorter than frame_width")
        if self.angle_at_min_pulse == self.angle_at_max_pulse:
            problems.append("angle_at_min_pulse and angle_at_max_pulse must differ")
        low, high = sorted((self.angle_at_min_pulse, self.angle_at_max_pulse))
        if self.min_angle >= self.max_angle:
            problems.append(f"min_angle ({self.min_angle:g}) must be less than max_angle ({self.max_angle:g})")
        for key in ("min_angle", "max_angle"):
            value = getattr(self, key)
            if not low <= value <= high:
                problems.append(
                    f"{key} ({value:g}) is outside the calibrated range {low:g}..{high:g}"
                    " (angle_at_min_pulse, angle_at_max_pulse)"
                )
        for key, value in self._poses():
            if value is not None and not self.min_angle <= value <= self.max_angle:
                problems.append(
                    f"{key} ({value:g}) is outside the limits min_angle..max_angle"
                    f" ({self.min_angle:g}..{self.max_angle:g})"
                )
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def _poses(self) -> list[tuple[str, float | None]]:
        poses: list[tuple[str, float | None]] = [("rest_angle", self.rest_angle), ("listening_angle", self.listening_angle)]
        if self.speak is not None:
            poses += [("speak.closed_angle", self.speak.closed_angle), ("speak.open_angle", self.speak.open_angle)]
        if self.wake is not None:
            poses.append(("wake.angle", self.wake.angle))
        if self.gestures is not None and self.gestures.nod:
            poses.append(("gestures.nod_angle", self.gestures.nod_angle))
        return poses

    def pin_label(self) -> str:
        """The pin as people read it: ``GPIO18`` for 18, a name as it was given."""
        return f"GPIO{self.pin}" if isinstance(self.pin, int) else self.pin
