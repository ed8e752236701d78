"""Built-in tools every responder that calls tools may turn on: ``time`` and ``say_nothing``.

``time`` tells the local time, date and weekday (the machine's time zone); ``say_nothing`` ends
the turn without a spoken reply, for a model that judges it was not addressed.
"""

from __future__ import annotations

from datetime import datetime

from magoo_core.plugins import hookimpl
from magoo_core.tools import Tool


async def _now(arguments: object) -> str:
    now = datetime.now().astimezone()
    return now.strftime("It is %H:%M on %A, %d %B %Y (time zone %Z, UTC%z).")


async def _nothing(arguments: object) -> str:
    return "nothing will be said"


TIME = Tool("time", "The current local time, date and weekday. Use it whenever the user asks for the time or the date.", _now)
SAY_NOTHING = Tool(
    "say_nothing",
    "End the turn without answering aloud: use it when what was heard was not meant for you or needs no answer.",
    _nothing,
    silent=True,
)


@hookimpl
def magoo_register_tools(register):
    register(TIME)
    register(SAY_NOTHING)
