"""Where one servo should be, step by step: the control law, with no hardware and no clock.

:class:`Motion` is told what is happening (the assistant's mode, a wake word, the level of the
voice being heard) and, for each step of ``dt`` seconds, says where the servo goes next, or
that its pulses stop. Whoever calls :meth:`Motion.step` owns time: the servo's loop calls it
``update_rate`` times a second, tests call it with the ``dt`` they choose.
"""

from __future__ import annotations

import enum
import math

from .config import ServoConfig

#: how long the last reported level still counts when no newer one came (a late progress report)
VOICE_GRACE = 0.1
#: closer than this (degrees) counts as being there
ARRIVED = 1e-6


class Mode(enum.Enum):
    """What the servo is doing, from the assistant's state."""

    IDLE = "idle"  # between turns: rest, then the pulses stop
    LISTENING = "listening"  # awake and thinking: the listening pose
    SPEAKING = "speaking"  # the mouth follows the voice (or, without one, the listening pose)


class Motion:
    """The position of one servo over time: targets, smoothing, the speed limit and the limits.

    Each step moves toward a target: ``rest_angle`` when idle, ``listening_angle`` while awake,
    the mouth's opening while speaking, ``wake.angle`` during the first half of a nod. The mouth
    opening (0..1) follows ``level × gain`` through a one-pole filter, with the ``attack`` time
    constant when it opens and ``release`` when it closes. No step moves further than
    ``max_speed × dt`` and no angle leaves ``min_angle..max_angle``. After ``detach_after``
    seconds at rest while idle, :meth:`step` returns None: stop the pulses.
    """

    def __init__(self, config: ServoConfig) -> None:
        self.config = config
        self.mode = Mode.IDLE
        #: the angle last commanded; the servo is assumed to be there (it is not moved while detached)
        self.angle = config.rest_angle
        #: pulses are being sent; starts True so the first step puts the servo at rest, a known place
        self.attached = True
        self.opening = 0.0  # the mouth, 0 (closed) .. 1 (open_angle)
        self._level = 0.0
        self._voice_left = 0.0
        self._nod_left = 0.0
        self._gesture: list[list[float]] = []  # [angle, seconds left] waypoints of a gesture, in order
        self._resting_for: float | None = None  # seconds at rest while idle, None when not there

    # ---- what is happening ----------------------------------------------------------------------

    def set_mode(self, mode: Mode) -> None:
        self.mode = mode

    def nod(self) -> None:
        """Start a nod (when the profile has one); a nod in progress starts over."""
        if self.config.wake is not None:
            self._nod_left = self.config.wake.seconds

    def gesture(self, waypoints: list[tuple[float, float]]) -> None:
        """Head for each ``(angle, seconds)`` in turn (a nod, a shake), over whatever else the
        servo does; the speed limit and the limits still hold. A gesture in progress is replaced."""
        self._gesture = [[angle, seconds] for angle, seconds in waypoints]

    @property
    def gesturing(self) -> bool:
        return bool(self._gesture)

    def hear(self, level: float, duration: float) -> None:
        """The voice has RMS ``level`` (0..1) for the next ``duration`` seconds."""
        self._level = min(max(level, 0.0), 1.0)
        self._voice_left = max(duration, 0.0) + VOICE_GRACE

    def quiet(self) -> None:
        """The voice stopped: the mouth closes (at the release speed)."""
        self._level = 0.0
        self._voice_left = 0.0

    def rest(self) -> None:
        """Back to rest at once, whatever was going on (an error, the end of the run); the pulses
        stop ``detach_after`` seconds after the servo got there."""
        self.mode = Mode.IDLE
        self._nod_left = 0.0
        self._gesture = []
        self.quiet()

    # ---- time -----------------------------------------------------------------------------------

    def step(self, dt: float) -> float | None:
        """Advance ``dt`` seconds; returns the angle to send, or None for no pulses at all."""
        cfg = self.config
        self._follow_voice(dt)
        target = self.target()
        self._nod_left = max(0.0, self._nod_left - dt)
        if self._gesture:
            self._gesture[0][1] -= dt
            if self._gesture[0][1] <= 0:
                self._gesture.pop(0)
        limit = cfg.max_speed * dt
        moved = self.angle + min(max(target - self.angle, -limit), limit)
        self.angle = min(max(moved, cfg.min_angle), cfg.max_angle)
        if self._resting(target):
            self._resting_for = 0.0 if self._resting_for is None else self._resting_for + dt
            # detach only on a later step than the arrival: the rest position is sent at least once
            if self._resting_for > 0.0 and self._resting_for >= cfg.detach_after:
                self.attached = False
        else:
            self._resting_for = None
            self.attached = True
        return self.angle if self.attached else None

    def target(self) -> float:
        """Where the servo is heading now (before the speed limit)."""
        cfg = self.config
        pose = cfg.rest_angle
        if self.mode is not Mode.IDLE:
            pose = cfg.listening_angle if cfg.listening_angle is not None else cfg.rest_angle
        if self.mode is Mode.SPEAKING and cfg.speak is not None:
            closed = cfg.speak.closed_angle if cfg.speak.closed_angle is not None else cfg.rest_angle
            pose = closed + self.opening * (cfg.speak.open_angle - closed)
        if cfg.wake is not None and self._nod_left > cfg.wake.seconds / 2:
            pose = cfg.wake.angle
        if self._gesture:
            pose = self._gesture[0][0]
        return pose

    def travel_time(self) -> float:
        """Seconds to get from here to rest at ``max_speed``."""
        return abs(self.angle - self.config.rest_angle) / self.config.max_speed

    def _follow_voice(self, dt: float) -> None:
        speak = self.config.speak
        if speak is None:
            return
        wanted = 0.0
        if self._voice_left > 0.0:
            self._voice_left = max(0.0, self._voice_left - dt)
            wanted = min(self._level * speak.gain, 1.0)
        tau = speak.attack if wanted > self.opening else speak.release
        self.opening += (wanted - self.opening) * (1.0 - math.exp(-dt / tau))

    def _resting(self, target: float) -> bool:
        rest = self.config.rest_angle
        return (
            self.mode is Mode.IDLE
            and self._nod_left <= 0.0
            and not self._gesture
            and abs(target - rest) <= ARRIVED
            and abs(self.angle - rest) <= ARRIVED
        )
