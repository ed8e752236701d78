"""magoo-web: a control API and a web page for a running assistant.

One backend, ``[[actuators]] backend = "web"`` (:class:`WebActuator`): a small aiohttp server in
the engine's loop with the page at ``/``, ``GET /api/status`` and a WebSocket at ``/api/ws`` (a
snapshot on connect, every event, the levels, and commands). Bound to 127.0.0.1 unless the
profile says otherwise, and then only with a token.

Importing this module does not import aiohttp; the backend does when it starts.
"""

from __future__ import annotations

from magoo_core import hookimpl

from .actuator import WebActuator

__all__ = ["WebActuator"]


@hookimpl
def magoo_register_actuators(register):
    register(WebActuator)
