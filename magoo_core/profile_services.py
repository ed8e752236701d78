"""The ``[services.NAME]`` tables of a profile and the role sections that use one (``service = "NAME"``):
each table validated by its service's ``Config``, each role section checked against what the service
serves, and a warning for a service no role uses. The run-time side is :mod:`magoo_core.service_slots`.

One :class:`ServiceTables` per validation; runs on the caller's thread.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Mapping
from typing import Any

from . import services
from .profile_checker import Checker
from .profile_messages import article, cut, is_env, sentences
from .profile_model import BACKUP, BackendSpec
from .roles import Role
from .services import ServiceSpec


class ServiceTables:
    """Owns the profile's services (``found``: by NAME; None for one whose table has problems)."""

    def __init__(self, checker: Checker) -> None:
        self.c = checker
        self.found: dict[str, ServiceSpec | None] = {}

    def read(self, tables: Any) -> None:
        """Every ``[services.NAME]`` table into ``found``, validated by its backend's ``Config``."""
        if not isinstance(tables, Mapping):
            return  # absent, or reported by the check of the top level
        for name, table in tables.items():
            section = f"[{services.SECTION}.{name}]"
            if not isinstance(table, Mapping) or is_env(table):
                self.c.issue(f"[{services.SECTION}]", name, "each service must be a table", f'write {section} then backend = "..."')
                continue
            self.found[name] = self._service(name, table, section)

    def _service(self, name: str, table: Mapping[str, Any], section: str) -> ServiceSpec | None:
        if BACKUP in table:
            self.c.issue(section, BACKUP, "a service has no backup: backups belong to each role that uses it",
                         f"write [stt.{BACKUP}] (or the section of another role that uses it)")
        values = {key: value for key, value in table.items() if key not in ("backend", BACKUP)}
        values, secret_keys, unset = self.c.env.resolve(values, section)
        installed = f"installed services: {', '.join(self.c.plugins.service_names()) or 'none installed'}"
        backend = table.get("backend")
        if not isinstance(backend, str) or is_env(table.get("backend")):
            self.c.issue(section, None if backend is None else "backend",
                         "missing key 'backend'" if backend is None else "must be the name of a service (expected string)", installed)
            return None
        info = self.c.plugins.service(backend)
        if info is None:
            close = difflib.get_close_matches(backend, self.c.plugins.service_names(), n=1)
            hint = f"did you mean '{close[0]}'?" if close else self.c.provider_hint(backend)
            self.c.issue(section, "backend", f"unknown service '{backend}'", sentences(hint, installed))
            return None
        config = self.c.validate(info.cls.Config, values, section, unset)
        if config is None:
            return None
        return ServiceSpec(name, info.name, config, info, frozenset(secret_keys))

    def served_role(
        self, role: Role, table: Mapping[str, Any], section: str, read_backup: Callable[[], BackendSpec | None]
    ) -> BackendSpec | None:
        """A role section with ``service = "NAME"``: the service's backend for this role, and the
        section's own ``backup`` (``read_backup()``, read after the checks that make it moot); its other
        settings belong in the service's table."""
        key = services.SERVICE_KEY
        if role is Role.ACTUATOR or section.endswith(f".{BACKUP}]"):
            who = "an actuator" if role is Role.ACTUATOR else "a backup"
            self.c.issue(section, key, f"{who} cannot use a service", 'write backend = "..." instead')
            return None
        backup = read_backup()
        if "backend" in table:
            self.c.issue(section, key, "give either 'backend' or 'service', not both",
                         "remove 'backend' to use the service, or 'service' to use a backend of its own")
            return None
        for other in [k for k in table if k not in (key, BACKUP)]:
            self.c.issue(section, other, "a section that uses a service takes only 'service' and 'backup'",
                         f"move it into [{services.SECTION}.{table[key]}]" if isinstance(table[key], str) else None)
        name = table[key]
        if not isinstance(name, str):
            self.c.issue(section, key, "must name a [services.NAME] table (expected string)")
            return None
        if name not in self.found:
            close = difflib.get_close_matches(name, list(self.found), n=1)
            declared = ", ".join(f"[{services.SECTION}.{n}]" for n in self.found) or "none"
            hint = f"did you mean '{close[0]}'?" if close else f'add [{services.SECTION}.{name}] with backend = "..."'
            self.c.issue(section, key, f"unknown service '{cut(name, 80)}'", sentences(hint, f"services in this profile: {declared}"))
            return None
        service = self.found[name]
        if service is None:
            return None  # its table's problems are reported there
        if role not in service.info.roles:
            self.c.issue(
                section, key, f"service '{name}' ({service.backend}) does not serve {article(role.title)}",
                f"it serves: {service.info.role_names}; use a backend of its own here (backend = \"...\")",
            )
            return None
        return _role_spec(service, role, backup)

    def check_served(self, specs: Mapping[Role, BackendSpec | None]) -> None:
        """A service class may check which roles use it: its optional classmethod
        ``check_roles(config, roles) -> str | None`` gets its config and the roles whose sections
        name it, and returns what is wrong (reported on its section) or None."""
        for name, spec in self.found.items():
            check = getattr(spec.info.cls, "check_roles", None) if spec is not None else None
            if not callable(check):
                continue
            problem = check(spec.config, frozenset(role for role, s in specs.items() if s is not None and s.service == name))
            if problem:
                self.c.issue(spec.section, None, problem)

    def warn_unused(self, specs: Mapping[Role, BackendSpec | None]) -> None:
        """A warning for each configured service no role section uses (it would never start)."""
        used = {spec.service for spec in specs.values() if spec is not None}
        for name, spec in self.found.items():
            if spec is not None and name not in used:
                self.c.issue(
                    spec.section, None, f"{spec.backend}: no role uses this service; it is not started",
                    f'add service = "{name}" to a role section it serves: {spec.info.role_names}', warning=True,
                )


def _role_spec(service: services.ServiceSpec, role: Role, backup: BackendSpec | None) -> BackendSpec:
    """The spec of ``role`` when its section says ``service = NAME``: the service's backend and
    config, reported as ``[services.NAME]``, with the role section's own ``backup``."""
    return BackendSpec(
        role, service.backend, service.config, service.info.as_backend(role), service.section,
        service.secret_keys, backup, service=service.name,
    )
