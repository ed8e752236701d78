"""What a validated profile is: :class:`Profile`, the :class:`BackendSpec` of each configured
backend, and the :class:`ProfileIssue` that says what is wrong with one that is not.

Values only (frozen dataclasses); :mod:`magoo_core.profile` makes them. A secret from
``{ env = ... }`` is masked in every repr.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .logs import printable
from .plugin_registry import BackendInfo
from .profile_messages import cut, sentences
from .roles import ROLES, BackendConfig, Role
from .secrets import Secrets
from .services import ServiceSpec
from .settings import EngineSettings, MagooSettings

#: what a secret's value is shown as
MASK = "**********"
#: the key of a role section's backup backend, taken by the core like ``backend``
BACKUP = "backup"
#: the key of a role section's tables of other settings per wake word (``[responder.by_wake.alexa]``)
BY_WAKE = "by_wake"
#: the key of ``[wake]``'s second opinion (``[wake.verify]``, :mod:`magoo_core.profile_verify`)
VERIFY = "verify"


@dataclass(frozen=True)
class VerifySpec:
    """``[wake.verify]``: a second wake detector that must hear the same wake word before a turn starts.

    :param detector: the second detector, validated like a ``[wake]`` section (its section is
        ``[wake.verify]``).
    :param before: seconds of audio before the first detection the second detector hears.
    :param within: seconds of audio after the first detection it may take to agree.
    """

    detector: BackendSpec
    before: float
    within: float


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
    #: ``[wake.verify]``: the second opinion on each wake (only on the ``[wake]`` section)
    verify: VerifySpec | None = None

    def create(self):
        return self.info.cls(self.config)

    def __repr__(self) -> str:
        shown = _masked(self.config.model_dump(), self.secret_keys)
        backup = f", backup={self.backup!r}" if self.backup is not None else ""
        by_wake = f", by_wake={dict(self.by_wake)!r}" if self.by_wake else ""
        backup += f", service={self.service!r}" if self.service is not None else ""
        backup += f", verify={self.verify!r}" if self.verify is not None else ""
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
        what = " ".join(cut(part, 80) for part in (self.section, self.key) if part)
        message = cut(self.message, 400)
        text = f"{where}: {what}: {message}" if what else f"{where}: {message}"
        if self.suggestion:
            text = sentences(text, cut(self.suggestion, 400))
        return printable(text)


def _masked(value: Any, secret_keys: frozenset[str], path: str = "") -> Any:
    """``value`` with every entry whose dotted key is in ``secret_keys`` replaced by a mask."""
    if path and path in secret_keys:
        return MASK
    if isinstance(value, Mapping):
        return {k: _masked(v, secret_keys, f"{path}.{k}" if path else str(k)) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_masked(v, secret_keys, f"{path}.{i}" if path else str(i)) for i, v in enumerate(value)]
    return value
