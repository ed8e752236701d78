"""What every part of a profile's validation shares: the issues found so far (each placed at its
line), a table checked against a pydantic model with its errors turned into issues, and the
lookups of installed backends with their did-you-mean hints.

One :class:`Checker` per validation; runs on the caller's thread.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from .errors import ProfileError
from .plugin_registry import KNOWN_PLUGINS, BackendInfo, Plugins
from .profile_env import EnvReader
from .profile_messages import (
    NO_SECRET,
    QUOTES_NO_INPUT,
    article,
    describe_type,
    error_message,
    is_env,
    key_hint,
    locate,
    sentences,
)
from .profile_model import ProfileIssue
from .roles import ROLES, Role
from .toml_lines import TomlLines

ROLE_ORDER = tuple(info.role for info in ROLES)


class Checker:
    """The issues of one profile and the checks that add to them.

    :param source: how issues name the profile's file.
    :param lines: the profile's text, to give each issue its line.
    :param environ: where ``{ env = ... }`` reads first (``os.environ``); ``dotenv`` next.
    :param target_dir: where a symlinked profile's target lives: a missing file found there gets a hint.
    """

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
        self.source = source
        self.lines = lines
        self.context = {"base_dir": base_dir, "target_dir": target_dir if target_dir != base_dir else None}
        self.issues: list[ProfileIssue] = []
        self.warnings: list[ProfileIssue] = []
        #: the absolute TOML path of each ``by_wake`` section, to find its lines
        self.paths: dict[str, tuple[str, ...]] = {}
        self.env = EnvReader(base_dir, os.environ if environ is None else environ, dotenv, self.issue, self.issues.append)

    def raise_issues(self) -> None:
        """Raise every issue found, in file order (the ``.env`` file's after the profile's), if any."""
        if self.issues:
            self.issues.sort(key=lambda issue: (issue.file != self.source, issue.line is None, issue.line or 0))
            raise ProfileError(self.issues)

    def issue(
        self, section: str, key: str | None, message: str, suggestion: str | None = None, *, warning: bool = False
    ) -> None:
        """Record one problem (``warning``: one that does not stop the profile) at the line of ``key``'s
        first part in ``section``, or of the section when the key has none."""
        top = key.split(".", 1)[0] if key else None
        path = self.paths.get(section)
        if path is not None:  # a table below a section ([responder.by_wake.alexa])
            line = (self.lines.at((*path, top)) if top else None) or self.lines.at(path)
        else:
            line = self.lines.key(section, top) if top else None
        if line is None:
            line = self.lines.section(section)
        (self.warnings if warning else self.issues).append(ProfileIssue(self.source, line, section, key, message, suggestion))

    def validate(self, model: type[BaseModel], values: dict[str, Any], section: str, unset: set[tuple]) -> Any:
        """``values`` validated by ``model`` (with the profile's folder as context), or None with each
        error reported as an issue; errors under a key path in ``unset`` (a variable not set) are dropped."""
        try:
            return model.model_validate(values, context=self.context)
        except ValidationError as exc:
            errors = exc.errors(include_url=False, include_input=False, include_context=False)
        except Exception as exc:  # a backend's validator raising something pydantic does not wrap
            self.issue(section, None, self.env.redact(f"the backend's Config raised {type(exc).__name__}: {exc}"))
            return None
        merged: set[str] = set()
        for error in errors:
            where = locate(model, error["loc"])
            if any(where.path[: len(path)] == path for path in unset):
                continue
            key = ".".join(map(str, where.path)) or None
            if where.union:
                if key in merged:
                    continue
                merged.add(key)
                self.issue(section, key, f"no accepted type matches (expected {describe_type(where.annotation)})")
            elif error["type"] == "extra_forbidden":
                self.issue(section, key, "unknown key", key_hint(str(where.path[-1]), where.owner or model))
            elif error["type"] == "missing":
                description = where.field.description if where.field is not None else None
                hint = f"add '{where.path[-1]}': {description}" if description else None
                self.issue(section, key, "missing required key", hint)
            elif error["type"] not in QUOTES_NO_INPUT:
                self.issue(section, key, self.env.redact(error_message(error, where.annotation)))
            else:
                self.issue(section, key, error_message(error, where.annotation))
        return None

    # ---- the installed backends ----

    def backend_info(self, role: Role, table: Mapping[str, Any], section: str) -> BackendInfo | None:
        """The installed backend that ``table``'s ``backend`` names, or None with the issue reported."""
        installed = self.installed(role)
        if "backend" not in table:
            self.issue(section, None, "missing key 'backend'", f"name one of the {installed}")
            return None
        name = table["backend"]
        if is_env(name):
            message = NO_SECRET + ", not in the choice of backend"
            self.issue(section, "backend", message, sentences("write the backend's name", installed))
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
                hints.append(f"'{name}' is {article(other.title)} backend, not {article(role.title)} backend")
                break
        if not hints:  # nothing closer: say which plugin would provide it
            hints.append(self.provider_hint(name))
        hints.append(self.installed(role))
        return sentences(*hints)

    def provider_hint(self, name: str) -> str:
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

    def installed(self, role: Role) -> str:
        """The installed backends of ``role``, as a hint says them."""
        names = self.plugins.names(role)
        return f"installed {role.title} backends: {', '.join(names) if names else 'none installed'}"
