"""The commands a client sends over the WebSocket, and the result each gets.

A command is one JSON object per text message::

    {"command": "listen" | "stop" | "mute" | "unmute" | "say" | "volume", "text": "...", "percent": 40, "id": ...}

and its answer is ``{"type": "result", "id": <the command's id, or null>, "ok": true}`` or
``{"type": "result", "id": ..., "ok": false, "error": "<one line>"}``. ``say`` answers when the
words have been said (``"said"``: ``played``, ``interrupted``, ``failed`` or ``dropped``), so a
client may send ``stop`` meanwhile. Anything malformed gets an error result; it never closes the
connection. Runs on the event loop; :func:`run_command` never raises.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from magoo_core.control import Control, ControlError

log = logging.getLogger("magoo_web")

COMMANDS = ("listen", "stop", "mute", "unmute", "say", "volume")
#: the longest text ``say`` accepts, in characters
MAX_SAY = 2000
#: a command's ``id`` is echoed back: any JSON scalar, strings at most this long
MAX_ID = 200


class CommandError(Exception):
    """A command that cannot be run as sent; the message says why in one line."""


def parse(message: str) -> tuple[Any, dict[str, Any]]:
    """``(id, command)`` from one text message; raises :class:`CommandError` (with the id when it
    could be read) for anything that is not a command."""
    try:
        command = json.loads(message)
    except ValueError:
        raise CommandError('not JSON: send one JSON object per message, like {"command": "stop"}') from None
    if not isinstance(command, dict):
        raise CommandError('not a JSON object: send one per message, like {"command": "stop"}')
    ident = command.get("id")
    if not (ident is None or isinstance(ident, (int, float, bool)) or (isinstance(ident, str) and len(ident) <= MAX_ID)):
        raise CommandError(f"id must be a number or a string of at most {MAX_ID} characters")
    name = command.get("command")
    if name not in COMMANDS:
        shown = f"'{name}'" if isinstance(name, str) and len(name) <= 40 and name.isprintable() else "missing or not text"
        error = CommandError(f"unknown command {shown}: send one of {', '.join(COMMANDS)}")
        error.ident = ident
        raise error
    return ident, command


async def execute(control: Control, command: dict[str, Any]) -> dict[str, Any]:
    """Carry out one parsed command; returns the result's fields beyond type and id.

    :raises CommandError, ControlError: the one-line reason it was not done.
    """
    name = command["command"]
    if name == "listen":
        control.listen()
    elif name == "stop":
        await control.stop()
    elif name in ("mute", "unmute"):
        control.mute(name == "mute")
    elif name == "say":
        text = command.get("text")
        if not isinstance(text, str):
            raise CommandError('say needs "text": the words to say, as a string')
        if len(text) > MAX_SAY:
            raise CommandError(f"the text is {len(text)} characters long: say at most {MAX_SAY} at once")
        said = await control.say(text)
        if said.status in ("failed", "dropped"):
            raise CommandError(f"not said ({said.status}): {said.reason or 'no reason given'}")
        return {"said": said.status}
    elif name == "volume":
        percent = command.get("percent")
        if isinstance(percent, bool) or not isinstance(percent, int):
            raise CommandError('volume needs "percent": a whole number from 0 to 100')
        await control.set_volume(percent)
    return {}


async def run_command(control: Control, message: str) -> dict[str, Any]:
    """The result message for one text message from a client (never raises)."""
    ident = None
    try:
        ident, command = parse(message)
        fields = await execute(control, command)
    except (CommandError, ControlError) as exc:
        return result(getattr(exc, "ident", ident), error=str(exc))
    except Exception as exc:  # a bug: the client gets one line, the log the traceback
        log.exception("web: the command failed")
        return result(ident, error=f"failed: {type(exc).__name__} (the traceback is in magoo's log)")
    return result(ident, **fields)


def result(ident: Any, *, error: str | None = None, **fields: Any) -> dict[str, Any]:
    """A ``{"type": "result", ...}`` message."""
    if error is not None:
        return {"type": "result", "id": ident, "ok": False, "error": " ".join(error.split())}
    return {"type": "result", "id": ident, "ok": True, **fields}
