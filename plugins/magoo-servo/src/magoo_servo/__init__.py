"""magoo-servo: hobby servos on a Raspberry Pi's GPIO that move with the assistant.

A mouth or jaw follows the voice while the assistant speaks, a head nods on the wake word and
holds a listening pose during the turn, and every servo rests, then stops its pulses, when the
assistant is idle, after an error and at shutdown. gpiozero is imported when a servo starts,
never when this module is imported.
"""

from __future__ import annotations

import asyncio
import logging
import math
import threading
from typing import TYPE_CHECKING, Any, ClassVar

from magoo_core import Backend, BackendError, BackendFailure, State, hookimpl, require

from . import pins
from .config import Gestures, ServoConfig, SpeakMotion, WakeNod
from .gestures import gesture_tools
from .motion import Mode, Motion

if TYPE_CHECKING:
    from magoo_core.doctor import Check

__all__ = ["Gestures", "Mode", "Motion", "ServoActuator", "ServoConfig", "SpeakMotion", "WakeNod"]

log = logging.getLogger("magoo.servo")

MODES = {
    State.LISTENING: Mode.IDLE,
    State.AWAKE: Mode.LISTENING,
    State.THINKING: Mode.LISTENING,
    State.SPEAKING: Mode.SPEAKING,
}
_UNSENT = object()


class ServoActuator(Backend):
    """One servo on one GPIO pin, moved by the assistant's events through :class:`Motion`.

    While entered, a task steps the motion ``update_rate`` times a second and sends each new
    position (or "no pulses") to the servo from a worker thread, so a slow pigpio daemon never
    holds up the event loop. Positions are computed with the nominal step (1 / ``update_rate``)
    even when the loop is late, so the servo is never moved faster than ``max_speed``.

    :param drive: False: no task of its own; the caller moves time with :meth:`tick` (tests).
    """

    name: ClassVar[str] = "servo"
    Config: ClassVar[type[ServoConfig]] = ServoConfig

    config: ServoConfig

    @classmethod
    def doctor(cls, config: ServoConfig, section: str) -> list[Check]:
        """``magoo doctor``: the pin library, this machine's GPIO for real pins, the pigpio daemon."""
        from .doctor import servo_rows

        return servo_rows(config, section)

    def __init__(self, config: ServoConfig, *, drive: bool = True) -> None:
        super().__init__(config)
        self.motion = Motion(config)
        self.period = 1.0 / config.update_rate
        self.device: Any = None  # the gpiozero AngularServo, while entered
        self.pin: Any = None  # its gpiozero pin, kept after leaving (tests and tools read its history)
        self._drive = drive
        self._factory: Any = None
        self._task: asyncio.Task | None = None
        self._io = threading.Lock()  # one write at a time, in order, also when leaving
        self._sent: Any = _UNSENT
        self._closing = False
        self._broken: str | None = None
        self._unreported = False  # it broke, and the engine has not been told yet
        self._moves = 0
        self._detaches = 0
        self._turn = _TurnMotion()  # what describe_turn() tells next

    # ---- lifecycle ------------------------------------------------------------------------------

    async def __aenter__(self) -> ServoActuator:
        require("gpiozero", backend=self.name, install=pins.INSTALL)
        if self.config.pin_factory == "pigpio":
            require("pigpio", backend=self.name, install=pins.INSTALL_PIGPIO)
            await pins.check_pigpio_daemon(self.config)
        self._factory = await asyncio.to_thread(pins.acquire, self.config)
        try:
            self.device = await asyncio.to_thread(pins.open_servo, self.config, self._factory)
        except BaseException:
            await asyncio.to_thread(pins.release, self._factory)
            self._factory = None
            raise
        self.pin = self.device.pwm_device.pin
        self._closing = False
        try:
            # the servo could be anywhere: the first pulses put it at rest, a known place to move from
            await asyncio.to_thread(self.tick, 0.0)
            self._turn = _TurnMotion()  # getting to rest is no news for the story
        except Exception as exc:
            device, factory, self.device, self._factory = self.device, self._factory, None, None
            await asyncio.to_thread(self._close, device, factory)
            raise BackendError(f"cannot move the servo on {self.config.pin_label()}: {exc}", retryable=False) from None
        if self._drive:
            self._task = asyncio.create_task(self._run(), name=f"magoo-servo-{self.config.pin_label()}")
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        """Back to rest at ``max_speed``, hold it ``detach_after`` s, stop the pulses, close.

        Cancelled on the way (the engine's ``shutdown_timeout``), it still stops the pulses and
        closes the pin, wherever the servo is.
        """
        if self.device is None:
            return
        self._closing = True
        self.motion.rest()
        budget = self.motion.travel_time() + self.config.detach_after + 3 * self.period
        try:
            if self._task is not None:
                loop = asyncio.get_running_loop()
                deadline = loop.time() + budget
                while self._sent is not None and not self._task.done() and loop.time() < deadline:
                    await asyncio.sleep(self.period)
            elif self._broken is None:
                for _ in range(math.ceil(budget / self.period)):
                    if self.tick(self.period) is None:
                        break
        finally:
            task, self._task = self._task, None
            if task is not None:
                task.cancel()
                await asyncio.wait([task])
            device, factory, self.device, self._factory = self.device, self._factory, None, None
            await asyncio.to_thread(self._close, device, factory)

    def _close(self, device: Any, factory: Any) -> None:
        with self._io:
            try:
                if device.value is not None:  # it did not get to rest in time: stop the pulses anyway
                    device.detach()
                    self._detaches += 1
                device.close()
            except Exception:
                log.warning("servo %s did not close cleanly", self.config.pin_label(), exc_info=True)
            finally:
                pins.release(factory)

    # ---- time -----------------------------------------------------------------------------------

    def tick(self, dt: float) -> float | None:
        """Step the motion by ``dt`` seconds and send the result; returns the angle sent (None:
        no pulses). Blocks for the write: the servo's own task calls :meth:`_send` in a thread."""
        command = self.motion.step(dt)
        self._send(command)
        return command

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        due = loop.time()
        while True:
            due += self.period
            now = loop.time()
            if due < now - self.period:  # the loop was held up: do not rush to catch up
                due = now
            await asyncio.sleep(due - now)
            command = self.motion.step(self.period)
            if command == self._sent:
                continue
            try:
                await asyncio.to_thread(self._send, command)
            except Exception as exc:
                self._broken = f"{type(exc).__name__}: {exc}"
                self._unreported = True
                log.warning(
                    "servo %s stopped: writing to it failed (%s); the assistant goes on without it",
                    self.config.pin_label(), self._broken,
                )
                return

    def _send(self, command: float | None) -> None:
        with self._io:
            if command == self._sent or self.device is None:
                return
            if command is None:
                self.device.detach()
                self._detaches += 1
            else:
                cfg = self.config
                angle = self.device.angle = min(max(command, cfg.min_angle), cfg.max_angle)
                self._moves += 1
                self._turn.moved(angle, self.motion.mode is Mode.SPEAKING)
            self._sent = command

    # ---- events ---------------------------------------------------------------------------------

    @hookimpl
    def magoo_on_state_change(self, new: State) -> None:
        if not self._closing:
            self.motion.set_mode(MODES.get(new, Mode.IDLE))
        if self._unreported:  # once, from the next event: the engine reports it through magoo_on_error
            self._unreported = False
            raise BackendError(
                f"servo {self.config.pin_label()} stopped: writing to it failed ({self._broken}); check its"
                " wiring and the pigpio daemon, then restart magoo to use it again"
            )

    @hookimpl
    def magoo_on_wake(self) -> None:
        if not self._closing:
            self.motion.nod()
            self._turn.nodded = self.config.wake is not None

    @hookimpl
    def magoo_on_speak_chunk(self, level: float, duration: float) -> None:
        self.motion.hear(level, duration)

    @hookimpl
    def magoo_on_speak_end(self) -> None:
        self.motion.quiet()

    @hookimpl
    def magoo_on_error(self, failure: BackendFailure) -> None:
        # a backend failed and its turn was dropped: rest. Another plugin's hook that raised is
        # no reason to freeze a mouth in the middle of a reply.
        if failure.role != "plugin":
            self.motion.rest()

    @hookimpl
    def magoo_register_tools(self, register) -> None:
        """``nod`` and ``shake`` for a language model, when the servo has a ``gestures`` table."""
        for tool in gesture_tools(self):
            register(tool)

    def gesture(self, waypoints: list[tuple[float, float]]) -> None:
        """Start a gesture (a tool's nod or shake); runs on the event loop, returns at once.

        :raises BackendError: the servo is not running, is stopping, or its writes failed.
        """
        if self._broken is not None:
            raise BackendError(f"the servo on {self.config.pin_label()} is not working ({self._broken}); it cannot move")
        if self.device is None or self._closing:
            raise BackendError(f"the servo on {self.config.pin_label()} is not running; it cannot move")
        self.motion.gesture(waypoints)

    @hookimpl
    def magoo_on_shutdown(self) -> None:
        self._closing = True
        self.motion.rest()

    # ---- status ---------------------------------------------------------------------------------

    def describe_turn(self) -> str | None:
        """``servo GPIO18: nodded; moved with the voice, 2°–31° (96 positions); at rest (0°)``."""
        turn, self._turn = self._turn, _TurnMotion()
        if turn.moves == 0 and not turn.nodded:
            return None
        parts = ["nodded"] if turn.nodded else []
        if turn.speaking:
            low, high = turn.speaking_range
            parts.append(f"moved with the voice, {low:.0f}°–{high:.0f}° ({turn.speaking} positions)")
        where = "at rest" if math.isclose(self.motion.angle, self.config.rest_angle, abs_tol=0.5) else "now"
        parts.append(f"{where} ({self.motion.angle:.0f}°)")
        return f"servo {self.config.pin_label()}: " + "; ".join(parts)

    def stats(self) -> dict[str, float]:
        """``moves`` (positions sent), ``detaches`` (times the pulses stopped), ``angle`` (the
        position last sent), ``attached`` (1 while pulses are sent), ``broken`` (1 after a write failed)."""
        return {
            "moves": self._moves,
            "detaches": self._detaches,
            "angle": round(self.motion.angle, 2),
            "attached": 1 if self.device is not None and self._sent is not None else 0,
            "broken": 1 if self._broken else 0,
        }


class _TurnMotion:
    """What one servo did during a turn, for the story; updated from the writer thread."""

    def __init__(self) -> None:
        self.nodded = False
        self.moves = 0
        self.speaking = 0  # positions sent while the mouth followed the voice
        self.speaking_range = (math.inf, -math.inf)

    def moved(self, angle: float, speaking: bool) -> None:
        self.moves += 1
        if speaking:
            self.speaking += 1
            low, high = self.speaking_range
            self.speaking_range = (min(low, angle), max(high, angle))


@hookimpl
def magoo_register_actuators(register):
    register(ServoActuator)
