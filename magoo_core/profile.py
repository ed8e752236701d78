"""Profiles: a TOML file in, a validated :class:`Profile` out, every problem reported at once.

A profile names one backend per role (``[stt] backend = "..."``); the other keys of the section
are validated by that backend's ``Config``. Problems are collected as :class:`ProfileIssue`
values (file, line, section, key, what is wrong, what to do) and raised together in one
:class:`~magoo_core.errors.ProfileError`.

Secrets are written ``{ env = "NAME" }`` and read from the environment or from a ``.env`` file
beside the profile. Their values are never echoed: validation messages never repeat input
values, and :class:`BackendSpec` masks them in its repr.
"""

from __future__ import annotations

import dataclasses
import difflib
import enum
import functools
import os
import re
import types
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal, Union, get_args, get_origin

from pydantic import BaseModel, SecretBytes, SecretStr, ValidationError
from pydantic_core.core_schema import ErrorType

from . import playable
from .errors import ProfileError
from .fields import EnvText
from .logs import printable
from .plugin_registry import KNOWN_PLUGINS, BackendInfo, Plugins
from .profile_file import FileProblem, parse_toml, read_dotenv, read_text
from . import services
from .roles import ROLES, BackendConfig, Role, RoleInfo
from .secrets import Secrets, secret_problem
from .services import ServiceSpec
from .settings import EngineSettings, MagooSettings, SoundSettings  # noqa: F401 (SoundSettings: re-exported)
from .toml_lines import TomlLines

SETTINGS_SECTIONS = ("magoo", "engine")
ROLE_ORDER = tuple(info.role for info in ROLES)
MASK = "**********"


#: the key of a role section's backup backend, taken by the core like ``backend``
BACKUP = "backup"
#: the key of a role section's tables of other settings per wake word (``[responder.by_wake.alexa]``)
BY_WAKE = "by_wake"




@dataclass(frozen=True)
class BackendSpec:
    """One configured backend: which class, with which validated config, from which section.

    :param secret_keys: dotted keys of the config whose value came from ``{ env = ... }``;
        the repr masks them even when the backend typed them as plain ``str``.
    :param backup: the section's ``backup`` table: what the engine starts instead when this
        backend cannot start (no sound output for mpv, a missing device).
    :param by_wake: the section's ``by_wake`` tables, by wake word label: the backend that answers
        the turns that wake word starts, each its own instance (with the section's backup).
    :param wake_label: the label of the ``by_wake`` table this backend comes from; None for a section.
    """

    role: Role
    backend: str
    config: BackendConfig
    info: BackendInfo
    section: str
    secret_keys: frozenset[str] = frozenset()
    backup: BackendSpec | None = None
    by_wake: Mapping[str, BackendSpec] = dataclasses.field(default_factory=dict, hash=False)
    wake_label: str | None = None
    #: the NAME of the ``[services.NAME]`` that serves this role (one instance for all its roles);
    #: None for a backend of its own
    service: str | None = None

    def create(self):
        return self.info.cls(self.config)

    def __repr__(self) -> str:
        shown = _masked(self.config.model_dump(), self.secret_keys)
        backup = f", backup={self.backup!r}" if self.backup is not None else ""
        by_wake = f", by_wake={dict(self.by_wake)!r}" if self.by_wake else ""
        backup += f", service={self.service!r}" if self.service is not None else ""
        return (
            f"BackendSpec(section={self.section!r}, backend={self.backend!r},"
            f" plugin={self.info.plugin!r}, config={shown!r}{backup}{by_wake})"
        )


@dataclass(frozen=True)
class Profile:
    """A validated profile: settings plus the :class:`BackendSpec` of each configured role.

    :param backends: each role of the profile, in :data:`~magoo_core.roles.ROLES` order, with its
        backends: one, or for a role whose section repeats (``[[actuators]]``) one per table, in file
        order. A role the profile does not configure is absent. ``profile.stt``,
        ``profile.actuators`` ... read it; :meth:`spec` and :meth:`of` work for every role.
    """

    path: Path | None
    magoo: MagooSettings
    engine: EngineSettings
    backends: Mapping[Role, tuple[BackendSpec, ...]] = dataclasses.field(default_factory=dict)
    #: every value that came from ``{ env = ... }``: masked wherever it would be printed or logged
    secret_values: frozenset[str] = dataclasses.field(default=frozenset(), repr=False)
    #: the ``[services.NAME]`` tables, by NAME (:mod:`magoo_core.services`)
    services: Mapping[str, ServiceSpec] = dataclasses.field(default_factory=dict)
    #: what is probably wrong but does not stop the profile (a ``by_wake`` table without a
    #: ``[wake]``, a service no role uses), for ``magoo check`` and the log
    warnings: tuple[ProfileIssue, ...] = ()

    @property
    def name(self) -> str:
        return self.magoo.name

    @functools.cached_property
    def secrets(self) -> Secrets:
        """The one masker every output of a run calls (:mod:`magoo_core.secrets`)."""
        return Secrets(self.secret_values)

    def of(self, role: Role) -> tuple[BackendSpec, ...]:
        """The backends of ``role`` (none when the profile has no such section)."""
        return tuple(self.backends.get(role, ()))

    def spec(self, role: Role) -> BackendSpec | None:
        """The backend of a role with one section (``[stt]``), or None when the profile has none."""
        found = self.backends.get(role)
        return found[0] if found else None

    def specs(self) -> list[BackendSpec]:
        """Every configured backend, in role order (actuators last, in file order)."""
        return [spec for info in ROLES for spec in self.of(info.role)]

    def with_spec(self, spec: BackendSpec) -> Profile:
        """This profile with ``spec`` in place of the backend of its role and section."""
        old = self.of(spec.role)
        new = tuple(spec if s.section == spec.section else s for s in old) if old else (spec,)
        return dataclasses.replace(self, backends={**self.backends, spec.role: new})

    @property
    def audio_source(self) -> BackendSpec:
        spec = self.spec(Role.AUDIO_SOURCE)
        assert spec is not None, "a validated profile has an [audio_source]"
        return spec

    @property
    def wake(self) -> BackendSpec | None:
        return self.spec(Role.WAKE)

    @property
    def stt(self) -> BackendSpec:
        spec = self.spec(Role.STT)
        assert spec is not None, "a validated profile has an [stt]"
        return spec

    @property
    def responder(self) -> BackendSpec | None:
        return self.spec(Role.RESPONDER)

    @property
    def tts(self) -> BackendSpec | None:
        return self.spec(Role.TTS)

    @property
    def player(self) -> BackendSpec | None:
        return self.spec(Role.PLAYER)

    @property
    def actuators(self) -> tuple[BackendSpec, ...]:
        return self.of(Role.ACTUATOR)


@dataclass(frozen=True)
class ProfileIssue:
    """One problem in a profile, precise enough to fix without reading the code.

    :param file: the profile's path as given, or ``"<profile>"``.
    :param line: 1-based line, when known.
    :param section: ``"[stt]"``, ``"[[actuators]] #2"``, ``"[engine]"``; ``""`` for the top level.
    :param key: dotted key inside the section (``"models.0.threshold"``), when the issue has one.
    :param message: what is wrong and what was expected.
    :param suggestion: what to do: a did-you-mean, installed alternatives, an install command.
    """

    file: str
    line: int | None
    section: str
    key: str | None
    message: str
    suggestion: str | None = None

    def __str__(self) -> str:
        """One line, whatever the profile holds: control characters escaped, long names cut."""
        where = self.file if self.line is None else f"{self.file}:{self.line}"
        what = " ".join(_cut(part, 80) for part in (self.section, self.key) if part)
        message = _cut(self.message, 400)
        text = f"{where}: {what}: {message}" if what else f"{where}: {message}"
        if self.suggestion:
            text = _sentences(text, _cut(self.suggestion, 400))
        return printable(text)


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
    validator = _Validator(plugins, path.parent, source, lines, environ, None, target)
    return dataclasses.replace(validator.run(data), path=path)


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
    return _Validator(plugins, Path(base_dir), source, TomlLines(text or ""), environ, dotenv).run(data)


# ---- validation ---------------------------------------------------------------------------------


class _Validator:
    """Walks one profile's data once, collecting issues instead of stopping at the first."""

    def __init__(
        self,
        plugins: Plugins,
        base_dir: Path,
        source: str,
        lines: TomlLines,
        environ: Mapping[str, str] | None,
        dotenv: Mapping[str, str] | None,
        target_dir: Path | None = None,
    ) -> None:
        self.plugins = plugins
        self.base_dir = base_dir
        self.source = source
        self.lines = lines
        self.environ = os.environ if environ is None else environ
        self._dotenv = dotenv
        self._dotenv_failed = False
        self._dotenv_bad_lines: tuple[int, ...] = ()
        # where a symlinked profile's target lives: a missing file found there gets a hint
        self.context = {"base_dir": base_dir, "target_dir": target_dir if target_dir != base_dir else None}
        self.issues: list[ProfileIssue] = []
        self.warnings: list[ProfileIssue] = []
        self.secret_values: set[str] = set()
        #: the absolute TOML path of each ``by_wake`` section, to find its lines
        self.paths: dict[str, tuple[str, ...]] = {}
        self.services: dict[str, ServiceSpec | None] = {}  # None: named, but its table has problems

    def run(self, data: Mapping[str, Any]) -> Profile:
        self._check_top_level(data)
        magoo = self._settings(MagooSettings, data, "magoo")
        engine = self._settings(EngineSettings, data, "engine")
        self.services = self._services(data.get(services.SECTION))
        backends: dict[Role, tuple[BackendSpec, ...]] = {}
        for info in ROLES:
            if info.many:
                found = self._tables(info, data.get(info.role.value))
            elif info.role.value in data:
                found = [self._role_section(info.role, data[info.role.value], info.section)]
            else:
                continue
            backends[info.role] = tuple(spec for spec in found if spec is not None)
        specs = {role: found[0] if found else None for role, found in backends.items() if not role.info.many}
        self._check_roles(data, specs)
        _ByWake(self).check_labels(specs)
        self._unused_services(specs)
        if self.issues:
            self.issues.sort(key=lambda issue: (issue.file != self.source, issue.line is None, issue.line or 0))
            raise ProfileError(self.issues)
        return Profile(
            path=None,
            magoo=magoo,
            engine=engine,
            backends={role: found for role, found in backends.items() if found},
            secret_values=frozenset(self.secret_values),
            services={name: spec for name, spec in self.services.items() if spec is not None},
            warnings=tuple(self.warnings),
        )

    def issue(
        self, section: str, key: str | None, message: str, suggestion: str | None = None, *, warning: bool = False
    ) -> None:
        top = key.split(".", 1)[0] if key else None
        path = self.paths.get(section)
        if path is not None:  # a table below a section ([responder.by_wake.alexa])
            line = (self.lines.at((*path, top)) if top else None) or self.lines.at(path)
        else:
            line = self.lines.key(section, top) if top else None
        if line is None:
            line = self.lines.section(section)
        (self.warnings if warning else self.issues).append(ProfileIssue(self.source, line, section, key, message, suggestion))

    def _redact(self, text: str) -> str:
        """Mask env values in text a backend wrote itself (a validator's message may quote its input)."""
        return Secrets(self.secret_values, mask=MASK).mask(text)

    # ---- sections ----

    def _check_top_level(self, data: Mapping[str, Any]) -> None:
        for name, value in data.items():
            if name in _SECTIONS:
                if not _repeats(name) and not isinstance(value, Mapping):
                    self.issue("", name, f"'{name}' must be a section", f"write it as [{name}] followed by its keys")
                continue
            close = _nearest_sections(name)
            hint = f"did you mean {' or '.join(close)}?" if close else None
            if isinstance(value, Mapping) or (isinstance(value, list) and value and isinstance(value[0], Mapping)):
                self.issue(
                    "", name, f"unknown section [{_cut(name, 80)}]",
                    _sentences(hint, "sections: " + ", ".join(_SECTIONS.values())),
                )
            else:
                self.issue("", name, "unknown top-level key: settings belong inside a section", _home(name) or hint)

    def _settings(self, model: type[BaseModel], data: Mapping[str, Any], name: str) -> Any:
        values = data.get(name, {})
        if not isinstance(values, Mapping):
            return model()  # reported by _check_top_level
        for key in [key for key, value in values.items() if _is_env(value)]:
            self.issue(f"[{name}]", key, _NO_SECRET + f", not in [{name}]", "write the value itself")
        return self._validate(model, {k: v for k, v in values.items() if not _is_env(v)}, f"[{name}]", set())

    def _tables(self, info: RoleInfo, value: Any) -> list[BackendSpec | None]:
        """The backends of a role whose section repeats (``[[actuators]]``), one per table."""
        if value is None:
            return []
        name = info.role.value
        if not isinstance(value, list):
            section = f"[{name}]" if isinstance(value, Mapping) else ""
            self.issue(
                section, None if section else name, f"{name} are an array of tables",
                f"use {info.section} (double brackets), once per {info.title}",
            )
            return []
        return [self._role_section(info.role, table, f"{info.section} #{index}") for index, table in enumerate(value, 1)]

    def _role_section(self, role: Role, table: Any, section: str) -> BackendSpec | None:
        if not isinstance(table, Mapping):
            if role.info.many:
                self.issue(section, None, f"each {role.title} must be a table", f'write {role.info.section} then backend = "..."')
            return None  # other roles: reported by _check_top_level
        if services.SERVICE_KEY in table:
            return self._served_role(role, table, section)
        values = {key: value for key, value in table.items() if key not in ("backend", BACKUP, BY_WAKE)}
        values, secret_keys, unset = self._resolve_env(values, section)
        backup = self._backup(role, table.get(BACKUP), section)
        info = self._backend_info(role, table, section)
        by_wake = _ByWake(self).tables(role, table, section, info, (values, secret_keys, unset), backup)
        if info is None:
            return None
        config = self._validate(info.cls.Config, values, section, unset)
        if config is None:
            return None
        return BackendSpec(role, info.name, config, info, section, frozenset(secret_keys), backup, by_wake)

    # ---- services: [services.NAME] and the role sections that name one ----

    def _services(self, tables: Any) -> dict[str, ServiceSpec | None]:
        """Every ``[services.NAME]`` table, validated by its backend's ``Config``."""
        found: dict[str, ServiceSpec | None] = {}
        if not isinstance(tables, Mapping):
            return found  # absent, or reported by _check_top_level
        for name, table in tables.items():
            section = f"[{services.SECTION}.{name}]"
            if not isinstance(table, Mapping) or _is_env(table):
                self.issue(f"[{services.SECTION}]", name, "each service must be a table", f'write {section} then backend = "..."')
                continue
            found[name] = self._service(name, table, section)
        return found

    def _service(self, name: str, table: Mapping[str, Any], section: str) -> ServiceSpec | None:
        if BACKUP in table:
            self.issue(section, BACKUP, "a service has no backup: backups belong to each role that uses it",
                       f"write [stt.{BACKUP}] (or the section of another role that uses it)")
        values = {key: value for key, value in table.items() if key not in ("backend", BACKUP)}
        values, secret_keys, unset = self._resolve_env(values, section)
        installed = f"installed services: {', '.join(self.plugins.service_names()) or 'none installed'}"
        backend = table.get("backend")
        if not isinstance(backend, str) or _is_env(table.get("backend")):
            self.issue(section, None if backend is None else "backend",
                       "missing key 'backend'" if backend is None else "must be the name of a service (expected string)", installed)
            return None
        info = self.plugins.service(backend)
        if info is None:
            close = difflib.get_close_matches(backend, self.plugins.service_names(), n=1)
            hint = f"did you mean '{close[0]}'?" if close else self._provider_hint(backend)
            self.issue(section, "backend", f"unknown service '{backend}'", _sentences(hint, installed))
            return None
        config = self._validate(info.cls.Config, values, section, unset)
        if config is None:
            return None
        return ServiceSpec(name, info.name, config, info, frozenset(secret_keys))

    def _served_role(self, role: Role, table: Mapping[str, Any], section: str) -> BackendSpec | None:
        """A role section with ``service = "NAME"``: the service's backend for this role, and the
        section's own ``backup``; its other settings belong in the service's table."""
        key = services.SERVICE_KEY
        if role is Role.ACTUATOR or section.endswith(f".{BACKUP}]"):
            who = "an actuator" if role is Role.ACTUATOR else "a backup"
            self.issue(section, key, f"{who} cannot use a service", 'write backend = "..." instead')
            return None
        backup = self._backup(role, table.get(BACKUP), section)
        if "backend" in table:
            self.issue(section, key, "give either 'backend' or 'service', not both",
                       "remove 'backend' to use the service, or 'service' to use a backend of its own")
            return None
        for other in [k for k in table if k not in (key, BACKUP)]:
            self.issue(section, other, "a section that uses a service takes only 'service' and 'backup'",
                       f"move it into [{services.SECTION}.{table[key]}]" if isinstance(table[key], str) else None)
        name = table[key]
        if not isinstance(name, str):
            self.issue(section, key, "must name a [services.NAME] table (expected string)")
            return None
        if name not in self.services:
            close = difflib.get_close_matches(name, list(self.services), n=1)
            declared = ", ".join(f"[{services.SECTION}.{n}]" for n in self.services) or "none"
            hint = f"did you mean '{close[0]}'?" if close else f'add [{services.SECTION}.{name}] with backend = "..."'
            self.issue(section, key, f"unknown service '{_cut(name, 80)}'", _sentences(hint, f"services in this profile: {declared}"))
            return None
        service = self.services[name]
        if service is None:
            return None  # its table's problems are reported there
        if role not in service.info.roles:
            self.issue(
                section, key, f"service '{name}' ({service.backend}) does not serve {_article(role.title)}",
                f"it serves: {service.info.role_names}; use a backend of its own here (backend = \"...\")",
            )
            return None
        return services.role_spec(service, role, backup)

    def _unused_services(self, specs: Mapping[Role, BackendSpec | None]) -> None:
        """A warning for each configured service no role section uses (it would never start)."""
        used = {spec.service for spec in specs.values() if spec is not None}
        for name, spec in self.services.items():
            if spec is not None and name not in used:
                self.issue(
                    spec.section, None, f"{spec.backend}: no role uses this service; it is not started",
                    f'add service = "{name}" to a role section it serves: {spec.info.role_names}', warning=True,
                )

    def _backup(self, role: Role, table: Any, section: str) -> BackendSpec | None:
        """The ``backup`` table of a role section: one level, never for actuators (an actuator
        that cannot start is left out anyway)."""
        if table is None:
            return None
        if role.info.many or section.endswith(f".{BACKUP}]"):
            where = _article(role.title) if role.info.many else "a backup"
            self.issue(section, BACKUP, f"{where} cannot have a backup", "remove this table")
            return None
        if not isinstance(table, Mapping) or _is_env(table):
            message = _NO_SECRET + ", not as a whole backup" if _is_env(table) else "must be a table"
            self.issue(section, BACKUP, message, f'write [{role.value}.{BACKUP}] then backend = "..."')
            return None
        return self._role_section(role, table, f"[{role.value}.{BACKUP}]")

    def _backend_info(self, role: Role, table: Mapping[str, Any], section: str) -> BackendInfo | None:
        installed = self._installed(role)
        if "backend" not in table:
            self.issue(section, None, "missing key 'backend'", f"name one of the {installed}")
            return None
        name = table["backend"]
        if _is_env(name):
            message = _NO_SECRET + ", not in the choice of backend"
            self.issue(section, "backend", message, _sentences("write the backend's name", installed))
            return None
        if not isinstance(name, str):
            self.issue(section, "backend", "must be the name of a backend (expected string)", installed)
            return None
        info = self.plugins.backend(role, name)
        if info is None:
            self.issue(section, "backend", f"unknown {role.title} backend '{name}'", self._backend_hint(role, name))
        return info

    def _backend_hint(self, role: Role, name: str) -> str:
        hints = []
        close = difflib.get_close_matches(name, self.plugins.names(role), n=1)
        if close:
            hints.append(f"did you mean '{close[0]}'?")
        for other in ROLE_ORDER:
            if other is not role and self.plugins.backend(other, name) is not None:
                hints.append(f"'{name}' is {_article(other.title)} backend, not {_article(role.title)} backend")
                break
        if not hints:  # nothing closer: say which plugin would provide it
            hints.append(self._provider_hint(name))
        hints.append(self._installed(role))
        return _sentences(*hints)

    def _provider_hint(self, name: str) -> str:
        """The failed plugin that would provide ``name``, else the plugin to install, else the failures."""
        suspects = self.plugins.suspects(name, KNOWN_PLUGINS.get(name))
        if suspects:
            return suspects[0].failure_message()
        if name in KNOWN_PLUGINS:
            return f"it comes with the plugin {KNOWN_PLUGINS[name]}: uv pip install {KNOWN_PLUGINS[name]}"
        failed = self.plugins.failed()
        if failed:
            names = ", ".join(p.name for p in failed)
            return f"these plugins failed to load and may provide it (see `magoo plugins`): {names}"
        return ""

    def _installed(self, role: Role) -> str:
        names = self.plugins.names(role)
        return f"installed {role.title} backends: {', '.join(names) if names else 'none installed'}"

    def _check_roles(self, data: Mapping[str, Any], specs: Mapping[Role, BackendSpec | None]) -> None:
        for info in ROLES:
            if info.required and info.role.value not in data:
                self.issue(
                    "", None, f"missing section {info.section}: every profile needs {info.required}",
                    _sentences(f'add {info.section} with backend = "..."', self._installed(info.role)),
                )
        for has, lacks, why in (
            (Role.TTS, Role.PLAYER, "something must play the speech it synthesizes"),
            (Role.PLAYER, Role.TTS, "something must synthesize the speech it plays"),
        ):
            if has.value in data and lacks.value not in data:
                self.issue(
                    f"[{has.value}]", None, f"needs a [{lacks.value}] as well: {why}",
                    _sentences(f'add [{lacks.value}] with backend = "..."', self._installed(lacks)),
                )
        stt = specs.get(Role.STT)
        replies = getattr(stt.info.cls, "replies", None) if stt else None
        speaks = Role.TTS.value in data
        if stt and speaks and type(replies) is bool and not replies and Role.RESPONDER.value not in data:
            self.issue(
                "[stt]", None,
                f"speech-to-text backend '{stt.backend}' only transcribes: a [responder] must produce the replies to speak",
                _sentences('add [responder] with backend = "..."', self._installed(Role.RESPONDER)),
            )
        tts = specs.get(Role.TTS)
        for voice in [tts, *(tts.by_wake.values() if tts else ())]:
            for mismatch in playable.mismatches(voice, specs.get(Role.PLAYER), self.plugins):
                self.issue(mismatch.section, "backend", mismatch.message, mismatch.suggestion or None)

    # ---- secrets ----

    def _resolve_env(
        self, values: dict[str, Any], section: str
    ) -> tuple[dict[str, Any], set[str], set[tuple]]:
        """Replace every ``{ env = "NAME" }`` by the variable's value.

        Returns the values, the dotted keys that came from the environment and the key paths
        whose variable is unset (validation errors under those are noise, so they are dropped).
        """
        secret_keys: set[str] = set()
        unset: set[tuple] = set()

        def walk(value: Any, path: tuple) -> Any:
            if _is_env(value):
                key = ".".join(map(str, path))
                var = value["env"]
                if not isinstance(var, str) or not var:
                    self.issue(section, key, "'env' must name an environment variable (expected string)")
                    unset.add(path)
                    return ""
                found = self._lookup(var)
                if found is None:
                    if not self._dotenv_failed:  # else the .env's own issue says why
                        self.issue(section, key, f"environment variable {_cut(var, 80)} is not set", self._unset_hint(var))
                    unset.add(path)
                    return ""
                problem = secret_problem(_cut(var, 80), found)
                if problem is not None:
                    self.issue(section, key, problem)
                    unset.add(path)
                    return ""
                secret_keys.add(key)
                if found:
                    self.secret_values.add(found)
                return EnvText(found, var)  # text, parsed where a backend expects a number
            if isinstance(value, Mapping):
                return {k: walk(v, (*path, k)) for k, v in value.items()}
            if isinstance(value, list):
                return [walk(v, (*path, i)) for i, v in enumerate(value)]
            return value

        return walk(values, ()), secret_keys, unset

    def _unset_hint(self, var: str) -> str:
        var = _cut(var, 80)
        hint = f"set it (`export {var}=...`) or add {var}=... to {self.base_dir / '.env'}"
        bad = self._dotenv_bad_lines
        if bad:
            hint += f" (its line{'s' if len(bad) > 1 else ''} {', '.join(map(str, bad[:5]))} cannot be read)"
        return hint

    def _lookup(self, var: str) -> str | None:
        if var in self.environ:
            return self.environ[var]
        if self._dotenv is None:
            env_file = self.base_dir / ".env"
            self._dotenv = {}
            try:
                found = read_dotenv(env_file)
                self._dotenv, self._dotenv_bad_lines = found.values, found.bad_lines
            except FileProblem as exc:
                self._dotenv_failed = True
                self.issues.append(ProfileIssue(str(env_file), exc.line, "", None, exc.message, exc.suggestion))
            except OSError as exc:
                self._dotenv_failed = True
                message = f"cannot read it: {exc.strerror or exc}"
                self.issues.append(ProfileIssue(str(env_file), None, "", None, message))
        return self._dotenv.get(var)

    # ---- pydantic ----

    def _validate(self, model: type[BaseModel], values: dict[str, Any], section: str, unset: set[tuple]) -> Any:
        try:
            return model.model_validate(values, context=self.context)
        except ValidationError as exc:
            errors = exc.errors(include_url=False, include_input=False, include_context=False)
        except Exception as exc:  # a backend's validator raising something pydantic does not wrap
            self.issue(section, None, self._redact(f"the backend's Config raised {type(exc).__name__}: {exc}"))
            return None
        merged: set[str] = set()
        for error in errors:
            where = _walk(model, error["loc"])
            if any(where.path[: len(path)] == path for path in unset):
                continue
            key = ".".join(map(str, where.path)) or None
            if where.union:
                if key in merged:
                    continue
                merged.add(key)
                self.issue(section, key, f"no accepted type matches (expected {_expected(where.annotation)})")
            elif error["type"] == "extra_forbidden":
                self.issue(section, key, "unknown key", _key_hint(str(where.path[-1]), where.owner or model))
            elif error["type"] == "missing":
                description = where.field.description if where.field is not None else None
                hint = f"add '{where.path[-1]}': {description}" if description else None
                self.issue(section, key, "missing required key", hint)
            elif error["type"] not in _QUOTES_NO_INPUT:
                self.issue(section, key, self._redact(_message(error, where.annotation)))
            else:
                self.issue(section, key, _message(error, where.annotation))
        return None


class _ByWake:
    """The ``by_wake`` tables of a role section, for the :class:`_Validator` that reads the section.

    ``[responder.by_wake.LABEL]`` gives the turns the wake word ``LABEL`` starts their own
    backend: its keys override the section's (the section's ``backend`` and keys when it names
    no other backend; only its own keys when it does). Each is validated like a section, its
    issues at its own lines; the section's ``backup`` applies to it too.
    """

    def __init__(self, validator: _Validator) -> None:
        self.v = validator

    def tables(
        self, role: Role, table: Mapping[str, Any], section: str, info: BackendInfo | None,
        resolved: tuple[dict[str, Any], set[str], set[tuple]], backup: BackendSpec | None,
    ) -> dict[str, BackendSpec]:
        """The ``by_wake`` backends of ``table`` (the section ``section``), by label; issues reported."""
        raw = table.get(BY_WAKE)
        if raw is None:
            return {}
        name = role.value
        if not role.info.by_wake or section != role.info.section:
            where = "a backup" if section.endswith(f".{BACKUP}]") else section
            allowed = ", ".join(info.section for info in ROLES if info.by_wake)
            self.v.issue(section, BY_WAKE, f"{where} cannot have by_wake tables", f"only {allowed} can; remove it")
            return {}
        if not isinstance(raw, Mapping) or _is_env(raw):
            self.v.issue(section, BY_WAKE, "must be a table of tables, one per wake word", f"write [{name}.{BY_WAKE}.LABEL] then the keys that differ")
            return {}
        found = {}
        for label, override in raw.items():
            where = f"[{name}.{BY_WAKE}.{_toml_key(label)}]"
            self.v.paths[where] = (name, BY_WAKE, label)
            if not isinstance(override, Mapping) or _is_env(override):
                self.v.issue(where, None, "must be a table of the keys that differ for this wake word", f'write [{name}.{BY_WAKE}.{_toml_key(label)}] then e.g. backend = "..."')
                continue
            spec = self._one(role, table, override, where, info, resolved)
            if spec is not None:
                found[label] = dataclasses.replace(spec, backup=backup, wake_label=label)
        return found

    def _one(
        self, role: Role, table: Mapping[str, Any], override: Mapping[str, Any], where: str,
        section_info: BackendInfo | None, resolved: tuple[dict[str, Any], set[str], set[tuple]],
    ) -> BackendSpec | None:
        for key in (BACKUP, BY_WAKE):
            if key in override:
                why = "the section's backup applies to it" if key == BACKUP else "it is one already"
                self.v.issue(where, key, f"a by_wake table cannot have a {key}: {why}", "remove it")
        own = {k: v for k, v in override.items() if k not in ("backend", BACKUP, BY_WAKE)}
        own, secret_keys, unset = self.v._resolve_env(own, where)
        inherits = "backend" not in override or override["backend"] == table.get("backend")
        info = section_info if inherits else self.v._backend_info(role, override, where)
        if info is None:
            return None  # the section's (or its own) backend is unknown: reported already
        if inherits:  # the section's keys, validated there: their problems are not reported twice
            values, section_secrets, section_unset = resolved
            inherited = {key for key in values if key not in own}
            secret_keys |= {key for key in section_secrets if key.split(".", 1)[0] in inherited}
            unset |= {path for path in section_unset if path[0] in inherited} | {(key,) for key in inherited}
            own = {**{key: values[key] for key in inherited}, **own}
        config = self.v._validate(info.cls.Config, own, where, unset)
        if config is None:
            return None
        return BackendSpec(role, info.name, config, info, where, frozenset(secret_keys))

    def check_labels(self, specs: Mapping[Role, BackendSpec | None]) -> None:
        """Each ``by_wake`` label must be one the wake detector (or its backup) can report, when
        its class says (``labels(config)``); without a ``[wake]`` no table is ever used: a warning."""
        tables = [spec for spec in specs.values() if spec is not None for spec in spec.by_wake.values()]
        if not tables:
            return
        wake = specs.get(Role.WAKE)
        if wake is None:
            for spec in tables:
                self.v.issue(
                    spec.section, None, "the profile has no [wake], so no turn is started by a wake word and this table is never used",
                    'add [wake] with backend = "...", or remove the table', warning=True,
                )
            return
        known: set[str] = set()
        for detector in filter(None, (wake, wake.backup)):
            method = getattr(detector.info.cls, "labels", None)
            labels = method(detector.config) if callable(method) else None
            if labels is None:
                return  # a detector that cannot tell: any label may come
            known.update(labels)
        for spec in tables:
            if spec.wake_label not in known:
                close = difflib.get_close_matches(spec.wake_label or "", sorted(known), n=1)
                self.v.issue(
                    spec.section, None, f"no wake word of [wake] {wake.backend} is called '{_cut(spec.wake_label or '', 80)}'",
                    _sentences(
                        f"did you mean '{close[0]}'?" if close else None,
                        f"its labels: {', '.join(sorted(known)) or 'none'} (a model's `label` in [wake] names it)",
                    ),
                )


def _toml_key(key: str) -> str:
    """``key`` as a TOML header writes it: bare when it can be, else quoted."""
    return key if re.fullmatch(r"[A-Za-z0-9_-]+", key) else '"' + key.replace("\\", "\\\\").replace('"', '\\"') + '"'


# ---- reading pydantic errors --------------------------------------------------------------------

# Pydantic's own messages never quote the input; these carry a validator's own words, which may.
_QUOTES_NO_INPUT = frozenset(get_args(ErrorType)) - {"value_error", "assertion_error"}


@dataclass
class _Where:
    """Where a pydantic error points, translated to what the profile's author wrote."""

    path: tuple = ()
    annotation: Any = None  # of the value at path, when known
    owner: type[BaseModel] | None = None  # the model whose keys path[-1] is among
    field: Any = None  # pydantic FieldInfo of path[-1], when it is a model field
    union: bool = False  # the error is inside one member of a union


def _walk(model: type[BaseModel], loc: Sequence[str | int]) -> _Where:
    """Follow ``loc`` through the model's annotations.

    Union members show up in pydantic locations as tags (``'int'``, ``'list[str]'``); they mean
    nothing to the profile's author, so the walk stops there and reports the union.
    """
    where = _Where(annotation=model)
    for index, part in enumerate(loc):
        annotation = _unwrap(where.annotation)
        if _is_union(annotation):
            where.union = True
            where.annotation = annotation
            return where
        where.path = (*where.path, part)
        origin = get_origin(annotation)
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            fields = _fields(annotation)
            where.owner, where.field = annotation, fields.get(str(part))
            where.annotation = where.field.annotation if where.field is not None else None
        elif origin in (list, tuple, set, frozenset, Sequence) and isinstance(part, int):
            args = get_args(annotation)
            where.annotation = args[0] if args else None
            where.owner = where.field = None
        elif origin in (dict, Mapping) and part != "[key]":
            args = get_args(annotation)
            where.annotation = args[1] if len(args) == 2 else None
            where.owner = where.field = None
        else:
            where.path = (*where.path, *loc[index + 1 :])
            where.annotation = where.owner = where.field = None
            return where
    return where


def _fields(model: type[BaseModel]) -> dict[str, Any]:
    """A model's fields by the key a profile uses for them (the alias, when there is one)."""
    fields = {}
    for name, info in model.model_fields.items():
        alias = info.validation_alias if isinstance(info.validation_alias, str) else info.alias
        fields[alias or name] = info
    return fields


def _unwrap(annotation: Any) -> Any:
    while get_origin(annotation) is Annotated:
        annotation = get_args(annotation)[0]
    if get_origin(annotation) in (Union, types.UnionType):
        members = [arg for arg in get_args(annotation) if arg is not type(None)]
        if len(members) == 1:
            return _unwrap(members[0])
    return annotation


def _is_union(annotation: Any) -> bool:
    return get_origin(annotation) in (Union, types.UnionType)


def _key_hint(key: str, owner: type[BaseModel]) -> str:
    valid = list(_fields(owner))
    close = difflib.get_close_matches(key, valid, n=1)
    if close:
        return f"did you mean '{close[0]}'?"
    if not valid:
        return "no keys are accepted here"
    return "valid keys: " + ", ".join(valid)


def _message(error: Mapping[str, Any], annotation: Any) -> str:
    """Pydantic's message (which never contains the input), plus the expected type when it helps."""
    message = error["msg"]
    message = message[:1].lower() + message[1:]
    if annotation is not None and error["type"].endswith(("_type", "_parsing")):
        expected = _expected(annotation)
        if expected not in message:
            message += f" (expected {expected})"
    return message


def _expected(annotation: Any) -> str:
    """Describe a type in TOML's words: 'integer', 'array of string', 'table', 'path (string)'."""
    annotation = _unwrap(annotation)
    origin, args = get_origin(annotation), get_args(annotation)
    if annotation is None or annotation is type(None):
        return "nothing"
    if origin is Literal:
        return " or ".join(repr(arg) for arg in args)
    if _is_union(annotation):
        return " or ".join(dict.fromkeys(_expected(arg) for arg in args if arg is not type(None)))
    if origin in (list, tuple, set, frozenset, Sequence):
        return f"array of {_expected(args[0])}" if args else "array"
    if origin in (dict, Mapping):
        return "table"
    if isinstance(annotation, type):
        for kind, word in (
            (bool, "boolean"), (int, "integer"), (float, "number"), (str, "string"), (Path, "path (string)"),
            (SecretStr, "string"), (SecretBytes, "string"), (BaseModel, "table"),
        ):
            if issubclass(annotation, kind):
                return word
        if issubclass(annotation, enum.Enum):
            return " or ".join(repr(member.value) for member in annotation)
        return annotation.__name__
    return str(annotation).replace("typing.", "")


# ---- small helpers ------------------------------------------------------------------------------

#: every section a profile may have, as it is written
_SECTIONS = {
    **{name: f"[{name}]" for name in SETTINGS_SECTIONS},
    **{info.role.value: info.section for info in ROLES},
    services.SECTION: f"[{services.SECTION}.NAME]",
}
#: words people name a section by, for an unknown one: [speach] -> [stt] or [tts], [mic] -> [audio_source]
_SECTION_WORDS = {
    "magoo": ("assistant", "general", "settings", "logging"),
    "engine": ("timing", "turns", "loop", "mute", "barge"),
    **{info.role.value: info.words for info in ROLES},
    services.SECTION: ("service", "shared", "pipeline", "connection", "homeassistant"),
}
_WORD_SECTIONS = {word: [s for s, words in _SECTION_WORDS.items() if word in words] for word in
                  {w for words in _SECTION_WORDS.values() for w in words}}


def _nearest_sections(name: str) -> list[str]:
    """The sections an unknown one most likely means, best first (at most three): a close
    spelling of a section's name, then of a word people call it by, whole or in parts."""
    name = name.lower()[:80]
    # "services" is long enough to look like many words ("voice"): only a near spelling means it
    found = difflib.get_close_matches(name, [s for s in _SECTIONS if s != services.SECTION], n=1)
    found = found or difflib.get_close_matches(name, [services.SECTION], n=1, cutoff=0.8)
    for word in [name, *re.split(r"[^a-z0-9]+", name)]:
        for close in difflib.get_close_matches(word, list(_WORD_SECTIONS), n=2, cutoff=0.75):
            found += _WORD_SECTIONS[close]
    return [_SECTIONS[section] for section in dict.fromkeys(found)][:3]


_NO_SECRET = "does not take a secret: { env = ... } works in a backend's own keys"


def _repeats(name: str) -> bool:
    """Whether the section ``name`` is an array of tables (``[[actuators]]``)."""
    return any(info.many and info.role.value == name for info in ROLES)


def _is_env(value: Any) -> bool:
    """Whether ``value`` is a ``{ env = "NAME" }`` reference."""
    return isinstance(value, Mapping) and set(value) == {"env"}


def _profiles_nearby(path: Path) -> str | None:
    if not path.parent.is_dir():
        return None
    found = sorted(p.name for p in path.parent.glob("*.toml") if p.name != "pyproject.toml")
    return f"profiles in {path.parent}: {', '.join(found)}" if found else None


def _cut(text: str, length: int) -> str:
    """``text``, or its start and an ellipsis when it is longer than ``length``."""
    return text if len(text) <= length else text[: length - 1] + "…"


def _sentences(*parts: str | None) -> str:
    """Join hints into sentences: ``"did you mean 'x'?", "installed: a"`` → ``"did you mean 'x'? Installed: a"``."""
    text = ""
    for part in filter(None, parts):
        if text:
            text += " " if text.endswith(("?", ".", "!")) else ". "
            part = part[:1].upper() + part[1:]
        text += part
    return text


def _home(key: str) -> str | None:
    """Where a stray top-level setting probably belongs: ``mute_post`` → ``[engine]``."""
    for section, model in (("magoo", MagooSettings), ("engine", EngineSettings)):
        close = difflib.get_close_matches(key, list(model.model_fields), n=1)
        if close:
            return f"did you mean '{close[0]}' in [{section}]?"
    return None


def _article(noun: str) -> str:
    return f"an {noun}" if noun[:1] in "aeiou" else f"a {noun}"


def _masked(value: Any, secret_keys: frozenset[str], path: str = "") -> Any:
    """``value`` with every entry whose dotted key is in ``secret_keys`` replaced by a mask."""
    if path and path in secret_keys:
        return MASK
    if isinstance(value, Mapping):
        return {k: _masked(v, secret_keys, f"{path}.{k}" if path else str(k)) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_masked(v, secret_keys, f"{path}.{i}" if path else str(i)) for i, v in enumerate(value)]
    return value
