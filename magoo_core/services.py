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
class), :class:`ServiceSpec` (a configured one) and :func:`check_service_class`; a role section
that names a service becomes a ``BackendSpec`` in :mod:`magoo_core.profile_services`. Its run time (one instance for all its roles, restarts, failover to each
role's backup) is :mod:`magoo_core.service_slots`. Not to be confused with :mod:`magoo_core.service`,
the ``magoo service`` command (systemd).
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from .plugin_checks import BACKEND_NAME, REQUIRED_METHODS, class_hook_problems
from .roles import Role

if TYPE_CHECKING:
    from .plugin_registry import BackendInfo

#: the profile's table of services, ``[services.NAME]``, and the key a role section names one with
SECTION = "services"
SERVICE_KEY = "service"
#: the roles a service may serve: every role with one backend (actuators are many, and each is its own)
SERVABLE = frozenset(role for role in Role if role is not Role.ACTUATOR)

__all__ = ["SECTION", "SERVABLE", "SERVICE_KEY", "ServiceInfo", "ServiceSpec", "check_service_class", "role_spec"]


@dataclass(frozen=True)
class ServiceInfo:
    """One registered service class: which roles it serves, and which plugin provided it."""

    name: str
    cls: type
    roles: frozenset[Role]
    plugin: str
    distribution: str
    version: str

    @property
    def summary(self) -> str:
        doc = inspect.getdoc(self.cls) or ""
        return doc.splitlines()[0] if doc else ""

    @property
    def role_names(self) -> str:
        """``"stt, responder, tts"``: its roles in the profile's order."""
        return ", ".join(role.value for role in Role if role in self.roles)

    def as_backend(self, role: Role) -> BackendInfo:
        """The service seen as a backend of ``role`` (what a role section's spec carries)."""
        from .plugin_registry import BackendInfo

        return BackendInfo(role, self.name, self.cls, self.plugin, self.distribution, self.version)


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


def check_service_class(cls: object) -> str | None:
    """What is wrong with ``cls`` as a service (None: nothing): a ``name``, a strict ``Config``,
    ``roles`` (a non-empty set of roles it may serve), each role's methods, and real event hooks."""
    if not isinstance(cls, type):
        return "register() takes a class, not an instance"
    name = getattr(cls, "name", None)
    if not isinstance(name, str) or not BACKEND_NAME.match(name):
        return "needs a class attribute `name`: lowercase letters, digits, '-' or '_'"
    config = getattr(cls, "Config", None)
    if not (isinstance(config, type) and issubclass(config, BaseModel)):
        return "needs a nested `Config` class (a magoo_core.BackendConfig)"
    if config.model_config.get("extra") != "forbid":
        return "its Config must forbid extra keys (subclass magoo_core.BackendConfig)"
    roles = getattr(cls, "roles", None)
    if not isinstance(roles, frozenset | set) or not roles or not all(isinstance(r, Role) for r in roles):
        return "needs a class attribute `roles`: a frozenset of the magoo_core.Role values it serves"
    if not roles <= SERVABLE:
        return "cannot serve actuators (each [[actuators]] entry is a backend of its own)"
    missing = sorted({m for role in roles for m in REQUIRED_METHODS[role] if not callable(getattr(cls, m, None))})
    if missing:
        return f"is missing {', '.join(missing)}() for the roles it serves"
    problems = class_hook_problems(cls)
    return "; ".join(problems) if problems else None
