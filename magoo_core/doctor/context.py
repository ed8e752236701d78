"""What the checks look at: the plugins, the profile as loaded (or why it does not load), the environment."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import ProfileError
from ..plugins import Plugins
from ..profile import BackendSpec, Profile, load_profile
from ..profile_file import FileProblem, parse_toml, read_dotenv, read_text
from ..roles import ROLES
from ..toml_lines import TomlLines

#: what an unset ``{ env = ... }`` is replaced by, so the rest of the profile can still be checked
PLACEHOLDER = "magoo-doctor-unset"
#: the sections that are arrays of tables (``[[actuators]]``)
_REPEATED = frozenset(info.role.value for info in ROLES if info.many)


@dataclass
class Context:
    """What every check may look at: the plugins and, with ``--profile``, the profile.

    :param profile: the validated profile; when it only fails for unset ``{ env = ... }``
        variables, validated with :data:`PLACEHOLDER` in their place so the other checks still run.
    :param problems: why the profile does not load as it is, or None.
    :param raw: the profile's TOML as parsed, when it parses.
    :param shared: work two checks need, started by the first that asks (by name; a task).
    """

    plugins: Plugins
    profile_path: Path | None = None
    profile: Profile | None = None
    problems: ProfileError | None = None
    raw: Mapping[str, Any] | None = None
    environ: Mapping[str, str] = field(default_factory=lambda: os.environ)
    shared: dict[str, asyncio.Task] = field(default_factory=dict)
    _dotenv: dict[str, bool] | None = None  # variable -> has a value; the values are not kept

    @property
    def dotenv_path(self) -> Path | None:
        return self.profile_path.absolute().parent / ".env" if self.profile_path else None

    def specs(self) -> list[BackendSpec]:
        """Every configured backend of the profile, backups, ``by_wake`` tables and ``[wake.verify]``
        included (none without a profile); a ``[services.NAME]`` once, whatever the roles it serves."""
        found = []
        services: set[str] = set()
        for spec in self.profile.specs() if self.profile else ():
            for backend in (spec, spec.backup, *spec.by_wake.values(), spec.verify.detector if spec.verify else None):
                if backend is None or (backend.service is not None and backend.service in services):
                    continue
                found.append(backend)
                if backend.service is not None:
                    services.add(backend.service)
        return found

    def secret_source(self, var: str) -> tuple[str | None, bool]:
        """Where ``var`` is set (the environment, or the .env file beside the profile) and whether
        it is empty; (None, True) when it is set nowhere. Its value never leaves this method."""
        if var in self.environ:
            return "the environment", not self.environ[var]
        if self._dotenv is None:
            self._dotenv = {}
            try:
                found = read_dotenv(self.dotenv_path).values if self.dotenv_path is not None else {}
            except (FileProblem, OSError):
                found = {}  # the profile's row says what is wrong with the file
            self._dotenv = {k: bool(v) for k, v in found.items()}
        if var in self._dotenv:
            return str(self.dotenv_path), not self._dotenv[var]
        return None, True


def open_context(plugins: Plugins, profile_path: Path | None, *, environ: Mapping[str, str]) -> Context:
    """Load the profile the way ``magoo run`` does; when only unset variables stop it, load it again
    with placeholders for them, so their rows say FAIL while everything else is still checked."""
    context = Context(plugins, profile_path, environ=environ)
    if profile_path is None:
        return context
    try:
        text = read_text(Path(profile_path))
        context.raw = parse_toml(text, TomlLines(text))
    except (OSError, FileProblem):
        pass  # load_profile says what is wrong with the file
    try:
        context.profile = load_profile(profile_path, plugins, environ=environ)
        return context
    except ProfileError as exc:
        context.problems = exc
    unset = {var for _, _, var in env_references(context.raw or {}) if context.secret_source(var)[0] is None}
    if unset:
        try:
            filled = {**environ, **dict.fromkeys(unset, PLACEHOLDER)}
            context.profile = load_profile(profile_path, plugins, environ=filled)
        except ProfileError:
            pass  # other problems too: the profile's row lists them, the checks that need it skip
    return context


def env_references(raw: Mapping[str, Any]) -> list[tuple[str, str, str]]:
    """Every ``{ env = "NAME" }`` in the parsed profile, as (section, dotted key, NAME)."""
    found: list[tuple[str, str, str]] = []

    def walk(value: Any, section: str, path: tuple[str, ...]) -> None:
        if isinstance(value, Mapping) and set(value) == {"env"}:
            if isinstance(value["env"], str) and value["env"]:
                found.append((section, ".".join(path), value["env"]))
        elif isinstance(value, Mapping):
            for key, item in value.items():
                walk(item, section, (*path, str(key)))
        elif isinstance(value, list):
            for index, item in enumerate(value):
                walk(item, section, (*path, str(index)))

    for name, value in raw.items():
        if name in _REPEATED and isinstance(value, list):
            for index, table in enumerate(value, 1):
                walk(table, f"[[{name}]] #{index}", ())
        else:
            walk(value, f"[{name}]", ())
    return found


def backend_names(raw: Mapping[str, Any]) -> set[str]:
    """The backends a parsed profile names (backups included), whether or not they exist."""
    names: set[str] = set()
    tables = [v for k, v in raw.items() if k not in _REPEATED]
    tables += [table for name in _REPEATED if isinstance(raw.get(name), list) for table in raw[name]]
    for table in tables:
        while isinstance(table, Mapping):
            if isinstance(table.get("backend"), str):
                names.add(table["backend"])
            table = table.get("backup")
    return names
