"""gpiozero's side: the pin factory each servo drives its pin through, and what its errors mean.

Every function here blocks (it talks to a GPIO library or a daemon) and runs in a worker thread,
except :func:`check_pigpio_daemon`, which is async.

**One factory per library, shared by the servos of the process.** The GPIO hardware is one per
machine, so every servo with ``pin_factory = "pigpio"`` (same host and port) drives its pin
through one :class:`PiGPIOFactory`, every ``"lgpio"`` servo through one ``LGPIOFactory``, every
``"mock"`` servo through one ``MockFactory``. gpiozero keeps its pin reservations per factory,
so only a shared factory notices that two servos of a profile were given the same pin. The
registry counts its users and closes a factory when the last servo using it leaves, so the next
run (or test) starts from a fresh one. ``"default"`` uses gpiozero's own process-wide factory
(``Device.pin_factory``), which gpiozero closes when Python exits.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Iterator
from typing import Any

from magoo_core import BackendError, require

from .config import ServoConfig

BACKEND = "servo"
INSTALL = "uv pip install magoo-servo  (it brings gpiozero)"
INSTALL_PIGPIO = "sudo apt install python3-pigpio  (or: uv pip install pigpio)"
INSTALL_LGPIO = "sudo apt install python3-lgpio  (or: uv pip install 'magoo-servo[lgpio]')"
START_PIGPIOD = "sudo systemctl start pigpiod"
#: how long to wait for the pigpio daemon to accept a connection
PIGPIO_CONNECT_TIMEOUT = 3.0

_lock = threading.Lock()
_shared: dict[tuple[Any, ...], list[Any]] = {}  # key -> [factory, number of servos using it]


def _key(config: ServoConfig) -> tuple[Any, ...] | None:
    if config.pin_factory == "default":
        return None
    if config.pin_factory == "pigpio":
        return ("pigpio", config.pigpio_host, config.pigpio_port)
    return (config.pin_factory,)


def acquire(config: ServoConfig) -> Any:
    """The factory for ``config``'s library, made on first use; None means gpiozero's default.

    :raises BackendError: naming the library to install, the daemon to start, or what to set.
    """
    key = _key(config)
    if key is None:
        _ensure_default_factory()
        return None
    with _lock:
        entry = _shared.get(key)
        if entry is None:
            entry = _shared[key] = [_make(config), 0]
        entry[1] += 1
        return entry[0]


def release(factory: Any) -> None:
    """One servo stopped using ``factory``; the last one closes it. None (the default) stays open."""
    if factory is None:
        return
    with _lock:
        for key, entry in list(_shared.items()):
            if entry[0] is factory:
                entry[1] -= 1
                if entry[1] <= 0:
                    del _shared[key]
                    factory.close()
                return


@contextlib.contextmanager
def shared_factory(config: ServoConfig) -> Iterator[Any]:
    """Hold the factory servos with ``config``'s library use, while the block runs.

    For tests and tools: with the ``"mock"`` factory held, pins keep their history after the
    servos closed (``factory.pin(18).states``).
    """
    factory = acquire(config)
    try:
        yield factory
    finally:
        release(factory)


def _make(config: ServoConfig) -> Any:
    kind = config.pin_factory
    if kind == "mock":
        from gpiozero.pins.mock import MockFactory, MockPWMPin

        return MockFactory(pin_class=MockPWMPin)
    if kind == "lgpio":
        require("lgpio", backend=BACKEND, install=INSTALL_LGPIO)
        from gpiozero.pins.lgpio import LGPIOFactory

        try:
            return LGPIOFactory()
        except Exception as exc:  # lgpio.error: the chip cannot be opened
            raise BackendError(
                f"lgpio cannot open the GPIO chip ({exc}): run on a Raspberry Pi as a user in the"
                " 'gpio' group (sudo usermod -aG gpio $USER, then log in again)",
                retryable=False,
            ) from None
    require("pigpio", backend=BACKEND, install=INSTALL_PIGPIO)
    from gpiozero.pins.pigpio import PiGPIOFactory

    try:
        return PiGPIOFactory(host=config.pigpio_host, port=config.pigpio_port)
    except OSError:
        raise BackendError(_no_daemon(config), retryable=False) from None


def _ensure_default_factory() -> None:
    from gpiozero import Device
    from gpiozero.exc import BadPinFactory

    try:
        Device.ensure_pin_factory()
    except BadPinFactory as exc:
        raise BackendError(
            f"no GPIO library found ({exc}): on a Pi install python3-lgpio (sudo apt install python3-lgpio)"
            ' or use pin_factory = "pigpio"; elsewhere use pin_factory = "mock"',
            retryable=False,
        ) from None


async def check_pigpio_daemon(config: ServoConfig) -> None:
    """Connect to the pigpio daemon once, so a stopped daemon is one clear error (pigpio itself
    prints a banner and gpiozero raises a bare OSError), and a host that does not answer is a
    timeout instead of a hang.

    :raises BackendError: the daemon cannot be reached.
    """
    try:
        async with asyncio.timeout(PIGPIO_CONNECT_TIMEOUT):
            _, writer = await asyncio.open_connection(config.pigpio_host, config.pigpio_port)
    except (OSError, TimeoutError):
        raise BackendError(_no_daemon(config), retryable=False) from None
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()


def _no_daemon(config: ServoConfig) -> str:
    where = f"{config.pigpio_host}:{config.pigpio_port}"
    if config.pigpio_host in ("localhost", "127.0.0.1", "::1"):
        fix = f"start it with `{START_PIGPIOD}`"
    else:
        fix = f"start it there with `{START_PIGPIOD}` and `sudo pigpiod -n <this machine's address>`"
    return f'cannot reach the pigpio daemon at {where}: {fix} (or use pin_factory = "lgpio")'


def open_servo(config: ServoConfig, factory: Any) -> Any:
    """A gpiozero ``AngularServo`` on ``config.pin``, sending no pulses yet.

    :raises BackendError: the pin is busy, is not a pin, or cannot make pulses.
    """
    from gpiozero import AngularServo
    from gpiozero.exc import GPIOPinInUse, PinInvalidPin, PinPWMUnsupported

    pin = config.pin_label()
    try:
        return AngularServo(
            config.pin,
            initial_angle=None,
            min_angle=config.angle_at_min_pulse,
            max_angle=config.angle_at_max_pulse,
            min_pulse_width=config.min_pulse_width,
            max_pulse_width=config.max_pulse_width,
            frame_width=config.frame_width,
            pin_factory=factory,
        )
    except GPIOPinInUse:
        raise BackendError(_busy(pin), retryable=False) from None
    except PinInvalidPin as exc:
        raise BackendError(
            f"{config.pin!r} is not a GPIO pin ({exc}): give a BCM number such as 18, or a name such as \"GPIO18\"",
            retryable=False,
        ) from None
    except PinPWMUnsupported:
        raise BackendError(
            f"the pin library in use cannot send servo pulses on {pin}:"
            ' set pin_factory = "pigpio" or "lgpio"',
            retryable=False,
        ) from None
    except Exception as exc:
        if "busy" in str(exc).lower():  # lgpio: the kernel says another program holds the line
            raise BackendError(_busy(pin), retryable=False) from None
        raise BackendError(f"cannot drive {pin}: {type(exc).__name__}: {exc}", retryable=False) from None


def _busy(pin: str) -> str:
    return (
        f"{pin} is already in use by another program or another servo in this profile:"
        " give this servo a free pin, or stop the other program"
    )
