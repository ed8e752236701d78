"""The contract every magoo actuator passes."""

from __future__ import annotations

from magoo_core.testing.contracts import ActuatorContract
from magoo_web import WebActuator


class TestWebActuatorContract(ActuatorContract):
    backend_class = WebActuator
    config = {"port": 0}  # enters (binds a port from the OS) and leaves
