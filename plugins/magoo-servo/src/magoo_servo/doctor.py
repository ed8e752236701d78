"""``magoo doctor`` rows for a servo: its pin library, the machine's GPIO when it drives real pins,
and the pigpio daemon when gpiozero talks to one."""

from __future__ import annotations

import importlib.util
import os
import socket
from typing import TYPE_CHECKING

from magoo_core.doctor import fail, gpio_problem, ok

from .pins import INSTALL_LGPIO, INSTALL_PIGPIO, START_PIGPIOD

if TYPE_CHECKING:
    from magoo_core.doctor import Check

    from .config import ServoConfig

PIGPIO_TIMEOUT = 1.0
#: the pin factories that open this machine's GPIO devices themselves (pigpio goes through its daemon)
LOCAL_FACTORIES = ("default", "lgpio")


def servo_rows(config: ServoConfig, section: str) -> list[Check]:
    """FAIL rows for what stops this servo; one OK row when nothing does."""
    name = f"servo {config.pin_label()}"
    factory = config.pin_factory
    if factory == "mock":
        return [ok(name, f"{section}: gpiozero's mock pins, no hardware needed")]
    rows = []
    problem = gpio_problem() if factory in LOCAL_FACTORIES else None
    if problem is not None:
        found, fix = problem
        found += f"; {section} servo {config.pin_label()} uses pin_factory {factory!r}"
        rows.append(fail(name, found, f'{fix}, or set pin_factory = "mock" in the servo to try without hardware'))
    if factory == "default":  # gpiozero tries lgpio, RPi.GPIO, then pigpio with the daemon its variables name
        library = next((m for m in ("lgpio", "RPi", "pigpio") if importlib.util.find_spec(m)), None)
        if library is None:
            found = f"{section}: no GPIO library for gpiozero (lgpio, RPi.GPIO or pigpio) is installed"
            return [*rows, fail(name, found, INSTALL_LGPIO)]
        if library != "pigpio":
            return rows or [ok(name, f"{section}: gpiozero picks {'RPi.GPIO' if library == 'RPi' else library}")]
        host, port = os.environ.get("PIGPIO_ADDR", "localhost"), int(os.environ.get("PIGPIO_PORT", "8888"))
        return [*rows, pigpio_daemon(name, f"{section}: gpiozero picks pigpio", host, port)]
    if importlib.util.find_spec(factory) is None:
        found = f"{section} pin_factory {factory!r} needs the Python module {factory}, which is not installed"
        rows.append(fail(name, found, INSTALL_LGPIO if factory == "lgpio" else INSTALL_PIGPIO))
    if factory == "pigpio":
        rows.append(pigpio_daemon(name, section, config.pigpio_host, config.pigpio_port))
    return rows or [ok(name, f"{section}: through {factory}")]


def pigpio_daemon(name: str, what: str, host: str, port: int) -> Check:
    """Whether the pigpio daemon at ``host:port`` takes a TCP connection.

    Blocking, for up to :data:`PIGPIO_TIMEOUT` (and DNS): the doctor runs backends' checks in a thread.
    """
    try:
        with socket.create_connection((host, port), timeout=PIGPIO_TIMEOUT):
            pass
    except ConnectionRefusedError:
        problem = "refuses connections"
    except TimeoutError:
        problem = f"no answer within {PIGPIO_TIMEOUT:g} s (a firewall, or the host is down?)"
    except socket.gaierror as exc:
        problem = f"cannot resolve {host} ({exc.strerror or exc})"
    except OSError as exc:
        problem = exc.strerror or str(exc)
    else:
        return ok(name, f"{what}; the pigpio daemon answers at {host}:{port}")
    remote = "" if host in ("localhost", "127.0.0.1", "::1") else f"on {host}: "
    fix = f'{remote}{START_PIGPIOD}  (or use pin_factory = "lgpio")'
    return fail(name, f"{what}; cannot reach the pigpio daemon at {host}:{port}: {problem}", fix)
