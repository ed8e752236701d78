"""``by_wake`` tables: a role section's other settings for the turns one wake word starts
(``[responder.by_wake.alexa]``), and the check that each names a wake word the detector can report.

Runs on the caller's thread, once per validation.
"""

from __future__ import annotations

import dataclasses
import difflib
from collections.abc import Mapping
from typing import Any

from .plugin_registry import BackendInfo
from .profile_checker import Checker
from .profile_messages import cut, is_env, sentences, toml_key
from .profile_model import BACKUP, BY_WAKE, BackendSpec
from .roles import ROLES, Role


class ByWake:
    """The ``by_wake`` tables of role sections; issues go to the :class:`~magoo_core.profile_checker.Checker`.

    ``[responder.by_wake.LABEL]`` gives the turns the wake word ``LABEL`` starts their own
    backend: its keys override the section's (the section's ``backend`` and keys when it names
    no other backend; only its own keys when it does). Each is validated like a section, its
    issues at its own lines; the section's ``backup`` applies to it too.
    """

    def __init__(self, checker: Checker) -> None:
        self.c = checker

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
            self.c.issue(section, BY_WAKE, f"{where} cannot have by_wake tables", f"only {allowed} can; remove it")
            return {}
        if not isinstance(raw, Mapping) or is_env(raw):
            self.c.issue(section, BY_WAKE, "must be a table of tables, one per wake word", f"write [{name}.{BY_WAKE}.LABEL] then the keys that differ")
            return {}
        found = {}
        for label, override in raw.items():
            where = f"[{name}.{BY_WAKE}.{toml_key(label)}]"
            self.c.paths[where] = (name, BY_WAKE, label)
            if not isinstance(override, Mapping) or is_env(override):
                self.c.issue(where, None, "must be a table of the keys that differ for this wake word", f'write [{name}.{BY_WAKE}.{toml_key(label)}] then e.g. backend = "..."')
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
                self.c.issue(where, key, f"a by_wake table cannot have a {key}: {why}", "remove it")
        own = {k: v for k, v in override.items() if k not in ("backend", BACKUP, BY_WAKE)}
        own, secret_keys, unset = self.c.env.resolve(own, where)
        inherits = "backend" not in override or override["backend"] == table.get("backend")
        info = section_info if inherits else self.c.backend_info(role, override, where)
        if info is None:
            return None  # the section's (or its own) backend is unknown: reported already
        if inherits:  # the section's keys, validated there: their problems are not reported twice
            values, section_secrets, section_unset = resolved
            inherited = {key for key in values if key not in own}
            secret_keys |= {key for key in section_secrets if key.split(".", 1)[0] in inherited}
            unset |= {path for path in section_unset if path[0] in inherited} | {(key,) for key in inherited}
            own = {**{key: values[key] for key in inherited}, **own}
        config = self.c.validate(info.cls.Config, own, where, unset)
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
                self.c.issue(
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
                self.c.issue(
                    spec.section, None, f"no wake word of [wake] {wake.backend} is called '{cut(spec.wake_label or '', 80)}'",
                    sentences(
                        f"did you mean '{close[0]}'?" if close else None,
                        f"its labels: {', '.join(sorted(known)) or 'none'} (a model's `label` in [wake] names it)",
                    ),
                )
