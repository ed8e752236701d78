"""magoo-mqtt: the assistant on an MQTT broker, with Home Assistant discovery.

One backend, ``[[actuators]] backend = "mqtt"`` (:class:`MqttActuator`): publishes the state, the
last wake word, transcript and reply, the input level and the mute switch; takes mute, stop,
listen and say commands; announces every entity to Home Assistant under one device. See
:mod:`.actuator`, :mod:`.link` (the connection), :mod:`.discovery` and :mod:`.topics`.

Importing this module does not import aiomqtt; the backend does when it starts.
"""

from __future__ import annotations

from magoo_core import hookimpl

from .actuator import MqttActuator

__all__ = ["MqttActuator"]


@hookimpl
def magoo_register_actuators(register):
    register(MqttActuator)
