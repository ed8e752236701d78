"""Profiles: a TOML file in, a validated :class:`Profile` out, every problem reported at once.

A profile names one backend per role (``[stt] backend = "..."``); the other keys of the section
are validated by that backend's ``Config``. Problems are collected as :class:`ProfileIssue`
values (file, line, section, key, what is wrong, what to do) and raised together in one
:class:`~magoo_core.errors.ProfileError`.

Secrets are written ``{ env = "NAME" }`` and read from the environment or from a ``.env`` file
beside the profile. Their values are never echoed: validation messages never repeat input
values, and :class:`BackendSpec` masks them in its repr.

This module is the way in (:func:`load_profile`, :func:`parse_profile`) and the walk over a
profile's top level; the parts it hands each job to are ``profile_model`` (the values),
``profile_checker`` (issues, pydantic, installed backends), ``profile_env`` (secrets),
``profile_roles``, ``profile_by_wake``, ``profile_services`` (the sections) and
``profile_messages`` (the words).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from . import services
from .errors import ProfileError
from .plugin_registry import Plugins
from .profile_checker import ROLE_ORDER, Checker
from .profile_file import FileProblem, parse_toml, read_text
from .profile_messages import (
    NO_SECRET,
    SECTIONS,
    SETTINGS_SECTIONS,
    cut,
    home_of,
    is_env,
    nearest_sections,
    repeats,
    sentences,
)
from .profile_model import BACKUP, BY_WAKE, MASK, BackendSpec, Profile, ProfileIssue
from .profile_roles import RoleSections
from .profile_services import ServiceTables
from .roles import ROLES, Role
from .settings import EngineSettings, MagooSettings, SoundSettings
from .toml_lines import TomlLines

#: what this module exported before its validation was split in parts (issue 18); imported from here
__all__ = [
    "BACKUP", "BY_WAKE", "MASK", "ROLE_ORDER", "SETTINGS_SECTIONS", "BackendSpec", "EngineSettings", "MagooSettings",
    "Profile", "ProfileIssue", "SoundSettings", "load_profile", "parse_profile",
]
#: every section a profile may have, as it is written (:data:`magoo_core.profile_messages.SECTIONS`)
_SECTIONS = SECTIONS


# ---- entry points -------------------------------------------------------------------------------


def load_profile(path: str | Path, plugins: Plugins, *, environ: Mapping[str, str] | None = None) -> Profile:
    """Read, parse and validate the profile at ``path``.

    Relative paths in the profile resolve against the folder of ``path`` as given: for a
    profile that is a symbolic link, the link's folder, not its target's (``magoo run``,
    ``magoo check`` and the service's working folder all agree). ``{ env = "NAME" }`` also
    looks in a ``.env`` file there. Files a backend reads at start (``InputFile`` fields) must
    exist. The file may be 1 MiB and nest 32 levels at most (:mod:`magoo_core.profile_file`).

    :param environ: where to read secrets first (``os.environ``).
    :raises ProfileError: with every problem found, each one line.
    """
    source = str(path)
    path = Path(path).absolute()

    def fail(message: str, suggestion: str | None = None, line: int | None = None) -> ProfileError:
        return ProfileError([ProfileIssue(source, line, "", None, message, suggestion)])

    try:
        text = read_text(path)
        lines = TomlLines(text)
        data = parse_toml(text, lines)
    except FileNotFoundError:
        raise fail(f"the profile {path} does not exist", _profiles_nearby(path)) from None
    except OSError as exc:
        raise fail(f"cannot read the profile {path}: {exc.strerror or exc}") from None
    except FileProblem as exc:
        issue = ProfileIssue(source, exc.line, exc.section, exc.key, exc.message, exc.suggestion)
        raise ProfileError([issue]) from None
    target = path.resolve().parent
    checker = Checker(plugins, path.parent, source, lines, environ, None, target)
    return dataclasses.replace(_Validator(checker).run(data), path=path)


def parse_profile(
    data: Mapping[str, Any],
    plugins: Plugins,
    *,
    base_dir: Path,
    source: str = "<profile>",
    text: str | None = None,
    environ: Mapping[str, str] | None = None,
    dotenv: Mapping[str, str] | None = None,
) -> Profile:
    """Validate already-parsed profile data.

    :param base_dir: folder that relative paths and the default ``.env`` are relative to.
    :param source: how issues name the file.
    :param text: the TOML text ``data`` came from; gives issues their line numbers.
    :param environ: where to read secrets first (``os.environ``).
    :param dotenv: where to read secrets next (the ``.env`` file in ``base_dir``, if any).
    :raises ProfileError: with every problem found, in file order.
    """
    checker = Checker(plugins, Path(base_dir), source, TomlLines(text or ""), environ, dotenv)
    return _Validator(checker).run(data)


# ---- the top level ------------------------------------------------------------------------------


class _Validator:
    """Walks one profile's data once, collecting issues instead of stopping at the first: the
    top level and the settings here, each section by the part that owns its kind."""

    def __init__(self, checker: Checker) -> None:
        self.c = checker
        self.services = ServiceTables(checker)
        self.roles = RoleSections(checker, self.services)

    def run(self, data: Mapping[str, Any]) -> Profile:
        self._check_top_level(data)
        magoo = self._settings(MagooSettings, data, "magoo")
        engine = self._settings(EngineSettings, data, "engine")
        self.services.read(data.get(services.SECTION))
        backends: dict[Role, tuple[BackendSpec, ...]] = {}
        for info in ROLES:
            if info.many:
                found = self.roles.tables(info, data.get(info.role.value))
            elif info.role.value in data:
                found = [self.roles.section(info.role, data[info.role.value], info.section)]
            else:
                continue
            backends[info.role] = tuple(spec for spec in found if spec is not None)
        specs = {role: found[0] if found else None for role, found in backends.items() if not role.info.many}
        self.roles.check(data, specs)
        self.roles.by_wake.check_labels(specs)
        self.services.warn_unused(specs)
        self.services.check_served(specs)
        self.c.raise_issues()
        return Profile(
            path=None,
            magoo=magoo,
            engine=engine,
            backends={role: found for role, found in backends.items() if found},
            secret_values=frozenset(self.c.env.secret_values),
            services={name: spec for name, spec in self.services.found.items() if spec is not None},
            warnings=tuple(self.c.warnings),
        )

    def _check_top_level(self, data: Mapping[str, Any]) -> None:
        for name, value in data.items():
            if name in SECTIONS:
                if not repeats(name) and not isinstance(value, Mapping):
                    self.c.issue("", name, f"'{name}' must be a section", f"write it as [{name}] followed by its keys")
                continue
            close = nearest_sections(name)
            hint = f"did you mean {' or '.join(close)}?" if close else None
            if isinstance(value, Mapping) or (isinstance(value, list) and value and isinstance(value[0], Mapping)):
                self.c.issue(
                    "", name, f"unknown section [{cut(name, 80)}]",
                    sentences(hint, "sections: " + ", ".join(SECTIONS.values())),
                )
            else:
                self.c.issue("", name, "unknown top-level key: settings belong inside a section", home_of(name) or hint)

    def _settings(self, model: type[BaseModel], data: Mapping[str, Any], name: str) -> Any:
        values = data.get(name, {})
        if not isinstance(values, Mapping):
            return model()  # reported by _check_top_level
        for key in [key for key, value in values.items() if is_env(value)]:
            self.c.issue(f"[{name}]", key, NO_SECRET + f", not in [{name}]", "write the value itself")
        return self.c.validate(model, {k: v for k, v in values.items() if not is_env(v)}, f"[{name}]", set())


def _profiles_nearby(path: Path) -> str | None:
    if not path.parent.is_dir():
        return None
    found = sorted(p.name for p in path.parent.glob("*.toml") if p.name != "pyproject.toml")
    return f"profiles in {path.parent}: {', '.join(found)}" if found else None
