"""The servo's tools for a language model: ``nod`` and ``shake`` (``[[actuators]] gestures``).

A gesture is a few waypoints the servo heads for in turn, over whatever else it does; the
motion's speed limit and ``min_angle..max_angle`` hold as for every move, so a model can never
send a servo past its configured range. A tool call starts the gesture and returns at once (the
head nods while the reply is spoken); a servo that is not running or whose writes failed gives
the model an error it can read, never a failed turn.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict, Field

from magoo_core.tools import Tool

from .config import Gestures

if TYPE_CHECKING:
    from . import ServoActuator

__all__ = ["Times", "gesture_tools", "waypoints"]

#: seconds a gesture tool may take: it only starts the motion
TIMEOUT = 2.0


class Times(BaseModel):
    """The arguments of ``nod`` and ``shake``."""

    model_config = ConfigDict(extra="forbid")

    times: int = Field(2, ge=1, le=4, description="How many times (1 to 4).")


def waypoints(gestures: Gestures, rest: float, kind: str, times: int) -> list[tuple[float, float]]:
    """The ``(angle, seconds)`` a ``nod`` or ``shake`` of ``times`` goes through, ending at rest."""
    swing = gestures.swing
    if kind == "nod":
        return [(gestures.nod_angle, swing), (rest, swing)] * times
    side = gestures.shake_angle
    return [(rest - side, swing), (rest + side, swing)] * times + [(rest, swing)]


def gesture_tools(servo: ServoActuator) -> list[Tool]:
    """The tools ``servo``'s ``gestures`` table turns on (none without one)."""
    gestures = servo.config.gestures
    if gestures is None:
        return []
    where = servo.config.pin_label()

    def tool(kind: str, description: str) -> Tool:
        async def run(arguments: Times) -> str:
            servo.gesture(waypoints(gestures, servo.config.rest_angle, kind, arguments.times))
            return f"{'Nodded' if kind == 'nod' else 'Shook the head'} {_times(arguments.times)}."

        return Tool(f"{gestures.prefix}{kind}", description, run, Times, timeout=TIMEOUT)

    tools = []
    if gestures.nod:
        tools.append(tool("nod", f"Nod (the servo on {where}): yes, agreement, a greeting. Returns at once."))
    if gestures.shake:
        tools.append(tool("shake", f"Shake the head (the servo on {where}): no, disagreement. Returns at once."))
    return tools


def _times(times: int) -> str:
    return {1: "once", 2: "twice"}.get(times, f"{times} times")
