"""``[wake.verify]``: the second opinion on each wake, read from a profile.

The table names a second wake detector (``backend`` and that backend's own keys, validated by
its ``Config`` like a ``[wake]`` section) and the verifier's two keys of its own, ``before`` and
``within`` (:class:`VerifySettings`). Only ``[wake]`` may have one. Runs on the caller's thread,
once per validation; issues go to the :class:`~magoo_core.profile_checker.Checker`, one line each.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from .fields import Seconds
from .plugin_registry import BackendInfo
from .profile_checker import Checker
from .profile_messages import cut, is_env, keys_of
from .profile_model import BACKUP, BY_WAKE, VERIFY, BackendSpec, VerifySpec
from .roles import BackendConfig, Role

#: where the table is, in issues
SECTION = f"[{Role.WAKE.value}.{VERIFY}]"
#: keys of the table that are not the second detector's
RESERVED = ("backend", BACKUP, BY_WAKE, VERIFY)


class VerifySettings(BaseModel):
    """The verifier's own keys in ``[wake.verify]``; every other key but ``backend`` is the second detector's."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    before: Seconds(0.5, 10) = Field(
        2.0, description="seconds of audio before the first detection that the second detector hears"
    )
    within: Seconds(0, 5) = Field(
        0.5,
        description=(
            "seconds of audio after the first detection the second detector may take to agree;"
            " the turn starts when it agrees, and the wake is dropped when it has not by then"
        ),
    )


OWN_KEYS = tuple(VerifySettings.model_fields)


class VerifyTable:
    """Reads ``[wake.verify]`` into a :class:`~magoo_core.profile_model.VerifySpec`; issues go to ``checker``."""

    def __init__(self, checker: Checker) -> None:
        self.c = checker

    def table(
        self, role: Role, raw: Any, section: str, first: BackendInfo | None, first_config: BackendConfig | None
    ) -> VerifySpec | None:
        """The ``verify`` table of the role section ``section`` (``raw``: its value, None when absent),
        or None with its issues reported.

        :param first: the section's own detector, when known: the verifier must hear its wake words.
        :param first_config: that detector's validated config, when valid.
        """
        if raw is None:
            return None
        if role is not Role.WAKE or section != role.info.section:
            where = "a backup" if section.endswith(f".{BACKUP}]") else section
            why = "the [wake.verify] of its section verifies it too" if role is Role.WAKE else "only [wake] can"
            self.c.issue(section, VERIFY, f"{where} cannot have a verify table: {why}", "remove it")
            return None
        if not isinstance(raw, Mapping) or is_env(raw):
            self.c.issue(
                section, VERIFY, "must be a table: the second wake detector that must agree",
                'write [wake.verify] then backend = "..." and that backend\'s keys',
            )
            return None
        self.c.paths[SECTION] = (Role.WAKE.value, VERIFY)
        for key in (BACKUP, BY_WAKE, VERIFY):
            if key in raw:
                self.c.issue(SECTION, key, f"the verifier cannot have a {key}", "remove it")
        settings = self.c.validate(VerifySettings, {k: v for k, v in raw.items() if k in OWN_KEYS}, SECTION, set())
        values = {key: value for key, value in raw.items() if key not in RESERVED and key not in OWN_KEYS}
        info = self.c.backend_info(Role.WAKE, raw, SECTION)
        if info is not None:
            values = self._known(values, info)
        values, secret_keys, unset = self.c.env.resolve(values, SECTION)
        config = None if info is None else self.c.validate(info.cls.Config, values, SECTION, unset)
        if config is None or settings is None:
            return None
        detector = BackendSpec(Role.WAKE, info.name, config, info, SECTION, frozenset(secret_keys))
        if first is not None and first_config is not None:
            self._check_labels(first, first_config, detector)
        return VerifySpec(detector, settings.before, settings.within)

    def _known(self, values: dict[str, Any], info: BackendInfo) -> dict[str, Any]:
        """``values`` without the keys neither the second detector nor the verifier takes, each reported
        with the keys of both as the hint."""
        theirs = list(keys_of(info.cls.Config))
        valid = [*theirs, *OWN_KEYS]
        for key in [key for key in values if key not in theirs]:
            close = difflib.get_close_matches(str(key), valid, n=1)
            hint = f"did you mean '{close[0]}'?" if close else "valid keys: " + ", ".join(valid)
            self.c.issue(SECTION, str(key), "unknown key", hint)
            del values[key]
        return values

    def _check_labels(self, first: BackendInfo, first_config: BackendConfig, second: BackendSpec) -> None:
        """The second detector must be able to report the first's wake words (by label): none in
        common is an error, some missing a warning (those are not verified)."""
        heard, hears = (_labels(info, config) for info, config in ((first, first_config), (second.info, second.config)))
        if heard is None or hears is None:
            return  # a detector that cannot tell: any label may come
        missing = [label for label in heard if label not in hears]
        if not missing:
            return
        names = ", ".join(f"'{cut(label, 40)}'" for label in missing)
        its = ", ".join(hears) or "none"
        hint = f"its wake words: {its}; give a model of [wake.verify] the same label as in [wake]"
        if len(missing) == len(heard):
            self.c.issue(SECTION, "backend", f"{second.backend} hears none of [wake]'s wake words ({names})", hint)
        else:
            self.c.issue(
                SECTION, "backend", f"{second.backend} cannot hear {names}: those wakes are not verified", hint,
                warning=True,
            )


def _labels(info: BackendInfo, config: BackendConfig) -> list[str] | None:
    method = getattr(info.cls, "labels", None)
    return list(method(config)) if callable(method) else None
