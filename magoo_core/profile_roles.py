"""The role sections of a profile (``[stt]``, ``[[actuators]]``, ...): each one's backend found among
the installed ones and its keys validated by that backend's ``Config``, with its ``backup`` table
and its ``by_wake`` tables; then the checks across roles (required sections, a TTS without a player).

One :class:`RoleSections` per validation; runs on the caller's thread.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from . import playable, services
from .profile_by_wake import ByWake
from .profile_checker import Checker
from .profile_messages import NO_SECRET, article, is_env, sentences
from .profile_model import BACKUP, BY_WAKE, VERIFY, BackendSpec
from .profile_services import ServiceTables
from .profile_verify import VerifyTable
from .roles import ROLES, Role, RoleInfo


class RoleSections:
    """Reads role sections into :class:`BackendSpec` values; issues go to the checker.

    :param services: the profile's services, read already: a section may name one.
    """

    def __init__(self, checker: Checker, services: ServiceTables) -> None:
        self.c = checker
        self.services = services
        self.by_wake = ByWake(checker)
        self.verify = VerifyTable(checker)

    def tables(self, info: RoleInfo, value: Any) -> list[BackendSpec | None]:
        """The backends of a role whose section repeats (``[[actuators]]``), one per table."""
        if value is None:
            return []
        name = info.role.value
        if not isinstance(value, list):
            section = f"[{name}]" if isinstance(value, Mapping) else ""
            self.c.issue(
                section, None if section else name, f"{name} are an array of tables",
                f"use {info.section} (double brackets), once per {info.title}",
            )
            return []
        return [self.section(info.role, table, f"{info.section} #{index}") for index, table in enumerate(value, 1)]

    def section(self, role: Role, table: Any, section: str) -> BackendSpec | None:
        """One role section (``table``, called ``section`` in issues) and its backup and ``by_wake``
        tables, or None with its issues reported."""
        if not isinstance(table, Mapping):
            if role.info.many:
                self.c.issue(section, None, f"each {role.title} must be a table", f'write {role.info.section} then backend = "..."')
            return None  # other roles: reported with the top level (magoo_core.profile)
        if services.SERVICE_KEY in table:
            return self.services.served_role(role, table, section, lambda: self.backup(role, table.get(BACKUP), section))
        values = {key: value for key, value in table.items() if key not in ("backend", BACKUP, BY_WAKE, VERIFY)}
        values, secret_keys, unset = self.c.env.resolve(values, section)
        backup = self.backup(role, table.get(BACKUP), section)
        info = self.c.backend_info(role, table, section)
        by_wake = self.by_wake.tables(role, table, section, info, (values, secret_keys, unset), backup)
        config = None if info is None else self.c.validate(info.cls.Config, values, section, unset)
        verify = self.verify.table(role, table.get(VERIFY), section, info, config)
        if info is None or config is None:
            return None
        return BackendSpec(role, info.name, config, info, section, frozenset(secret_keys), backup, by_wake, verify=verify)

    def backup(self, role: Role, table: Any, section: str) -> BackendSpec | None:
        """The ``backup`` table of a role section: one level, never for actuators (an actuator
        that cannot start is left out anyway)."""
        if table is None:
            return None
        if role.info.many or section.endswith(f".{BACKUP}]"):
            where = article(role.title) if role.info.many else "a backup"
            self.c.issue(section, BACKUP, f"{where} cannot have a backup", "remove this table")
            return None
        if not isinstance(table, Mapping) or is_env(table):
            message = NO_SECRET + ", not as a whole backup" if is_env(table) else "must be a table"
            self.c.issue(section, BACKUP, message, f'write [{role.value}.{BACKUP}] then backend = "..."')
            return None
        return self.section(role, table, f"[{role.value}.{BACKUP}]")

    def check(self, data: Mapping[str, Any], specs: Mapping[Role, BackendSpec | None]) -> None:
        """The checks across roles: the required sections; a TTS and a player, each with the other;
        something to reply when the STT only transcribes; speech the player can play."""
        for info in ROLES:
            if info.required and info.role.value not in data:
                self.c.issue(
                    "", None, f"missing section {info.section}: every profile needs {info.required}",
                    sentences(f'add {info.section} with backend = "..."', self.c.installed(info.role)),
                )
        for has, lacks, why in (
            (Role.TTS, Role.PLAYER, "something must play the speech it synthesizes"),
            (Role.PLAYER, Role.TTS, "something must synthesize the speech it plays"),
        ):
            if has.value in data and lacks.value not in data:
                self.c.issue(
                    f"[{has.value}]", None, f"needs a [{lacks.value}] as well: {why}",
                    sentences(f'add [{lacks.value}] with backend = "..."', self.c.installed(lacks)),
                )
        stt = specs.get(Role.STT)
        replies = getattr(stt.info.cls, "replies", None) if stt else None
        speaks = Role.TTS.value in data
        if stt and speaks and type(replies) is bool and not replies and Role.RESPONDER.value not in data:
            self.c.issue(
                "[stt]", None,
                f"speech-to-text backend '{stt.backend}' only transcribes: a [responder] must produce the replies to speak",
                sentences('add [responder] with backend = "..."', self.c.installed(Role.RESPONDER)),
            )
        tts = specs.get(Role.TTS)
        for voice in [tts, *(tts.by_wake.values() if tts else ())]:
            for mismatch in playable.mismatches(voice, specs.get(Role.PLAYER), self.c.plugins):
                self.c.issue(mismatch.section, "backend", mismatch.message, mismatch.suggestion or None)
