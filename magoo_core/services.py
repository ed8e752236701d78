"""Services: one backend that serves several roles from one connection (``[services.NAME]``).

A Home Assistant link is speech-to-text, responder and text-to-speech at once; an OpenAI Realtime
session is speech-to-text and responder. Such a backend is a *service*: a class with a ``name``, a
strict ``Config``, ``roles`` (the :class:`~magoo_core.roles.Role` values it serves) and the methods
of each of those roles, registered with the ``magoo_register_services`` hook. A profile configures
it once and the role sections refer to it::

    [services.house]
    backend = "homeassistant"
    host = "..."
    [stt]
    service = "house"          # instead of backend = ...
    [stt.backup]               # backups stay per role
    backend = "pocketsphinx"

This module holds what is known before anything runs: :class:`ServiceInfo` (a registered service
class) and :class:`ServiceSpec` (a configured one); a service class is checked by
:func:`magoo_core.plugin_checks.check_service_class`, and a role section
that names a service becomes a ``BackendSpec`` in :mod:`magoo_core.profile_services`. Its run time (one instance for all its roles, restarts, failover to each
role's backup) is :mod:`magoo_core.service_slots`. Not to be confused with :mod:`magoo_core.service`,
the ``magoo service`` command (systemd).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .plugin_registry import ServiceInfo
from .roles import Role

#: the profile's table of services, ``[services.NAME]``, and the key a role section names one with
SECTION = "services"
SERVICE_KEY = "service"
#: the roles a service may serve: every role with one backend (actuators are many, and each is its own)
SERVABLE = frozenset(role for role in Role if role is not Role.ACTUATOR)

__all__ = ["SECTION", "SERVABLE", "SERVICE_KEY", "ServiceInfo", "ServiceSpec"]


@dataclass(frozen=True)
class ServiceSpec:
    """One configured service: ``[services.NAME]``, validated by its class's ``Config``.

    :param name: the NAME of ``[services.NAME]``, which role sections refer to.
    :param secret_keys: dotted keys of the config whose value came from ``{ env = ... }``.
    """

    name: str
    backend: str
    config: Any
    info: ServiceInfo
    secret_keys: frozenset[str] = frozenset()

    @property
    def section(self) -> str:
        return f"[{SECTION}.{self.name}]"
