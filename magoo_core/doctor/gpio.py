"""The machine's GPIO: the devices, and whether this user may open them.

Whether a backend needs GPIO is that backend's own row (see ``gpio_problem``, which it may call).
"""

from __future__ import annotations

import grp
import os
from pathlib import Path

from .context import Context
from .rows import Check, ok, warn

DEV = Path("/dev")
JOIN_GPIO = "sudo usermod -aG gpio $USER, then log in again"


def gpio_devices() -> list[Path]:
    return sorted(DEV.glob("gpiochip*")) + sorted(DEV.glob("gpiomem*"))


def gpio_problem() -> tuple[str, str] | None:
    """Why this process cannot drive local GPIO pins, and the fix; None when it can.

    For a backend's ``doctor`` that uses real pins: it FAILs with these words, the machine's own
    ``GPIO`` row only WARNs.
    """
    devices = gpio_devices()
    if not devices:
        return f"no GPIO here (not a Raspberry Pi?): no {DEV}/gpiochip* or {DEV}/gpiomem*", "run it on the Raspberry Pi"
    closed = [str(d) for d in devices if not os.access(d, os.R_OK | os.W_OK)]
    if closed:
        names = ", ".join(d.name for d in devices)
        return f"{names}; this user may not open {', '.join(closed)} ({gpio_group()})", JOIN_GPIO
    return None


def gpio_group() -> str:
    try:
        gid = grp.getgrnam("gpio").gr_gid
    except KeyError:
        return "there is no group gpio"
    member = gid in os.getgroups() or gid == os.getgid()
    return "in group gpio" if member else "not in group gpio"


async def check_gpio(context: Context) -> list[Check]:
    problem = gpio_problem()
    if problem is None:
        names = ", ".join(d.name for d in gpio_devices())
        return [ok("GPIO", f"{names}: readable and writable ({gpio_group()})")]
    found, fix = problem
    if fix != JOIN_GPIO:
        fix = "nothing to do unless a backend needs GPIO (its own row says so)"
    return [warn("GPIO", found, fix)]
