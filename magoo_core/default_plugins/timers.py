"""The built-in timer tools: ``timer_set``, ``timer_cancel``, ``timer_list``.

A timer belongs to a run, so this plugin is an object made for each run around the engine's
:class:`~magoo_core.timers.Timers` and registered with the plugin manager while the run lasts (as
a running actuator is), not a module loaded once. It offers its tools through the same
``magoo_register_tools`` hook as any plugin, and silences a ringing timer when the wake word is
heard (``magoo_on_wake``). A profile turns the tools on in its responder's section, like any tool.

Results are sentences for a language model to read and retell ("The pasta timer is set for
10 minutes; it ends at 18:42."); a timer that cannot be set is an error the model can explain.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict, Field

from magoo_core.plugins import hookimpl
from magoo_core.timers import MAX_NAME, MAX_SECONDS, spoken_duration
from magoo_core.tools import NoArguments, Tool
from magoo_core.types import Timer

if TYPE_CHECKING:
    from magoo_core.timers import Timers

__all__ = ["TIMER_TOOLS", "TimerTools"]

#: the names of the tools this plugin offers
TIMER_TOOLS = ("timer_set", "timer_cancel", "timer_list")


class SetArguments(BaseModel):
    """The arguments of ``timer_set``."""

    model_config = ConfigDict(extra="forbid")

    seconds: float = Field(
        ge=1, le=MAX_SECONDS, description="How long the timer runs, in seconds (5 minutes: 300; at most a day)."
    )
    name: str | None = Field(
        None,
        max_length=MAX_NAME,
        description="What the timer is for, one or two words ('pasta', 'eggs'), if the user said; setting a name"
        " that is running sets that timer again.",
    )


class CancelArguments(BaseModel):
    """The arguments of ``timer_cancel``."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(
        None, max_length=MAX_NAME, description="The timer's name; leave it out when only one timer is running."
    )


class TimerTools:
    """The timer tools of one run. Its hooks run on the event loop.

    :param timers: the run's timers.
    """

    def __init__(self, timers: Timers) -> None:
        self.timers = timers

    @hookimpl
    def magoo_register_tools(self, register) -> None:
        register(Tool(
            "timer_set",
            "Start a countdown timer; when it ends the assistant says so out loud. Use it when the user asks"
            " for a timer or to be reminded in some minutes.",
            self.set, SetArguments,
        ))
        register(Tool(
            "timer_cancel",
            "Cancel a running timer, or stop one that is ringing.",
            self.cancel, CancelArguments,
        ))
        register(Tool("timer_list", "The running timers and the time left on each.", self.list, NoArguments))

    @hookimpl
    def magoo_on_wake(self) -> None:
        """The wake word stops a ringing timer."""
        self.timers.silence()

    # ---- the tools ----------------------------------------------------------------------------

    async def set(self, arguments: SetArguments) -> str:
        timer, updated = await self.timers.set(arguments.seconds, arguments.name)
        how = "set again" if updated else "set"
        return f"The {timer.name} timer is {how} for {spoken_duration(timer.total_seconds)}; it ends at {_clock(timer)}."

    async def cancel(self, arguments: CancelArguments) -> str:
        running, ringing = self.timers.list(), self.timers.ringing()
        name = arguments.name
        if name is None:
            if len(running) + len(ringing) != 1:
                return "No timer is running." if not running and not ringing else (
                    "Several timers are running; ask the user which one to cancel. " + _listing(running)
                )
            name = (running or ringing)[0].name
        found = await self.timers.cancel(name)
        if found is None:
            return f"There is no timer named {name!r}. " + _listing(running, ringing)
        timer, was_ringing = found
        if was_ringing:
            return f"The {timer.name} timer had ended; it is silenced."
        return f"The {timer.name} timer is cancelled; it had {spoken_duration(timer.seconds_left(time.time()))} left."

    async def list(self, arguments: NoArguments) -> str:
        return _listing(self.timers.list(), self.timers.ringing())


def _listing(running: list[Timer], ringing: list[Timer] = ()) -> str:
    now = time.time()
    parts = [f"the {t.name} timer, {spoken_duration(t.seconds_left(now))} left (ends at {_clock(t)})" for t in running]
    parts += [f"the {t.name} timer, which has ended and is ringing" for t in ringing]
    if not parts:
        return "No timer is running."
    count = "One timer" if len(parts) == 1 else f"{len(parts)} timers"
    return f"{count}: " + "; ".join(parts) + "."


def _clock(timer: Timer) -> str:
    """The local time it ends, as a clock shows it: 18:42 (with seconds under a minute away)."""
    local = time.localtime(timer.ends_at)
    return time.strftime("%H:%M:%S" if timer.total_seconds < 60 else "%H:%M", local)
