"""What differs between two validated profiles, section by section, for a hot reload.

:func:`diff_profiles` compares every section generically (each key of each table, whatever the
settings or the backend's ``Config`` holds: a setting added to :mod:`magoo_core.settings` or to a
plugin needs no line here) and gives one :class:`SectionChange` per changed section, which prints
as one line: ``[tts] frequency: 220.0 → 330.0, realtime: False → True``. A key whose value came
from ``{ env = ... }`` prints as ``(secret)``, never its value.

Pure functions over values; nothing here runs anything. :mod:`magoo_core.reload` decides what a
change means for the running engine.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from .logs import printable
from .profile_messages import cut
from .profile_model import BackendSpec, Profile
from .roles import ROLES
from .services import ServiceSpec

__all__ = ["KeyChange", "SectionChange", "changed_keys", "diff_profiles", "plain", "spec_changed", "spec_values"]

#: how a missing value (a key or section not there) is shown
UNSET = "(unset)"
#: how a secret's value is shown
SECRET = "(secret)"


@dataclass(frozen=True)
class KeyChange:
    """One key of a section: its dotted name and its old and new values, already made printable."""

    key: str
    old: str
    new: str

    def __str__(self) -> str:
        return f"{self.key}: {self.old} → {self.new}"


@dataclass(frozen=True)
class SectionChange:
    """A changed section: ``added`` or ``removed`` as a whole, or some of its keys changed.

    :param section: as the profile writes it (``"[tts]"``, ``"[[actuators]] #2"``,
        ``"[responder.by_wake.alexa]"``, ``"[tts.backup]"``, ``"[engine]"``).
    """

    section: str
    keys: tuple[KeyChange, ...] = ()
    added: bool = False
    removed: bool = False

    def __str__(self) -> str:
        """One line (control characters escaped, long values cut)."""
        if self.added or self.removed:
            return printable(f"{self.section} {'added' if self.added else 'removed'}")
        return printable(f"{self.section} " + ", ".join(str(key) for key in self.keys))


def diff_profiles(old: Profile, new: Profile) -> list[SectionChange]:
    """Every section that differs between ``old`` and ``new``, in profile order: ``[magoo]``,
    ``[engine]``, ``[services.NAME]``, then each role's sections (each with its backup and its
    ``by_wake`` tables)."""
    changes: list[SectionChange] = []
    for name, before, after in (("[magoo]", old.magoo, new.magoo), ("[engine]", old.engine, new.engine)):
        changes += _section(name, plain(before), plain(after), frozenset())
    for name in sorted(set(old.services) | set(new.services)):
        before, after = old.services.get(name), new.services.get(name)
        secret = (before.secret_keys if before else frozenset()) | (after.secret_keys if after else frozenset())
        changes += _section(f"[services.{name}]", _service_values(before), _service_values(after), secret)
    for info in ROLES:
        olds, news = old.of(info.role), new.of(info.role)
        for index in range(max(len(olds), len(news))):
            changes += _specs(olds[index] if index < len(olds) else None, news[index] if index < len(news) else None)
    return changes


def changed_keys(old: BaseModel, new: BaseModel) -> list[str]:
    """The fields whose values differ between two settings models of one class, in field order
    (a table such as ``sounds`` is one field, whichever of its keys changed)."""
    return [name for name in type(old).model_fields if plain(getattr(old, name)) != plain(getattr(new, name))]


def spec_values(spec: BackendSpec | None) -> dict[str, Any]:
    """A backend's own settings: ``backend``, ``service`` when it has one, and its config
    (without its ``backup`` and ``by_wake`` tables, compared on their own); empty for None."""
    if spec is None:
        return {}
    values: dict[str, Any] = {"backend": spec.backend}
    if spec.service is not None:
        values["service"] = spec.service
    values.update(plain(spec.config))
    return values


def spec_changed(old: BackendSpec, new: BackendSpec) -> bool:
    """Whether the one instance that runs for this section would differ: its own settings, or its
    backup's (the slot starts the backup when the backend cannot start)."""
    return spec_values(old) != spec_values(new) or spec_values(old.backup) != spec_values(new.backup)


def plain(value: Any) -> Any:
    """A settings model as nested dicts and lists (its fields in order), values as they are."""
    if isinstance(value, BaseModel):
        return {name: plain(getattr(value, name)) for name in type(value).model_fields}
    if isinstance(value, Mapping):
        return {key: plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(item) for item in value]
    return value


def _specs(old: BackendSpec | None, new: BackendSpec | None) -> Iterator[SectionChange]:
    """A role section's change, then its backup's and its ``by_wake`` tables'."""
    secret = (old.secret_keys if old else frozenset()) | (new.secret_keys if new else frozenset())
    section = (new or old).section
    yield from _section(section, spec_values(old), spec_values(new), secret)
    if old is None or new is None:
        return
    if old.backup is not None or new.backup is not None:
        yield from _specs(old.backup, new.backup)
    for label in [*old.by_wake, *(label for label in new.by_wake if label not in old.by_wake)]:
        yield from _specs(old.by_wake.get(label), new.by_wake.get(label))


def _section(name: str, old: dict[str, Any], new: dict[str, Any], secret: frozenset[str]) -> list[SectionChange]:
    if old == new:
        return []
    if not old or not new:
        return [SectionChange(name, added=not old, removed=not new)]
    return [SectionChange(name, tuple(_keys(old, new, "", secret)))]


def _keys(old: Any, new: Any, prefix: str, secret: frozenset[str]) -> Iterator[KeyChange]:
    """The leaves that differ: tables key by key, lists of tables of one length item by item."""
    if old == new:
        return
    if isinstance(old, dict) and isinstance(new, dict):
        for key in [*old, *(key for key in new if key not in old)]:
            yield from _keys(old.get(key, _MISSING), new.get(key, _MISSING), f"{prefix}.{key}" if prefix else str(key), secret)
        return
    if isinstance(old, list) and isinstance(new, list) and len(old) == len(new) and any(isinstance(v, dict) for v in old):
        for index, (before, after) in enumerate(zip(old, new, strict=True)):
            yield from _keys(before, after, f"{prefix}.{index}" if prefix else str(index), secret)
        return
    hidden = any(prefix == key or prefix.startswith(key + ".") for key in secret)
    yield KeyChange(prefix, _shown(old, hidden), _shown(new, hidden))


def _shown(value: Any, hidden: bool) -> str:
    if value is _MISSING:
        return UNSET
    return SECRET if hidden else cut(repr(value), 80)


def _service_values(spec: ServiceSpec | None) -> dict[str, Any]:
    return {} if spec is None else {"backend": spec.backend, **plain(spec.config)}


_MISSING = object()
