"""magoo-webhook: events out to a URL as JSON, and a responder that asks a URL what to say.

Two backends, both named ``webhook``:

* ``[[actuators]]`` :class:`WebhookActuator` sends the chosen events (a wake word with its
  scores, the transcript, the reply, the turn's timeline ...) from a queue of its own, so a
  slow or dead receiver never delays listening (see :mod:`.actuator`, :mod:`.delivery`, and
  :mod:`.payloads` for the bodies).
* ``[responder]`` :class:`WebhookResponder` posts the final transcript and speaks the text
  of the answer (see :mod:`.responder`).

Importing this module does not import httpx; the backends do when they start.
"""

from __future__ import annotations

from magoo_core import hookimpl

from .actuator import EVENTS, WebhookActuator
from .responder import WebhookResponder

__all__ = ["EVENTS", "WebhookActuator", "WebhookResponder"]


@hookimpl
def magoo_register_actuators(register):
    register(WebhookActuator)


@hookimpl
def magoo_register_responders(register):
    register(WebhookResponder)
