"""Secrets in a profile: each ``{ env = "NAME" }`` read from the environment, or from the ``.env``
file beside the profile, and every value read remembered so that it is masked wherever it would show.

Runs once per validation, on the caller's thread; reads the ``.env`` file (blocking) at most once,
when the first variable is missing from the environment.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from .fields import EnvText
from .profile_file import FileProblem, read_dotenv
from .profile_messages import cut, is_env
from .profile_model import MASK, ProfileIssue
from .secrets import Secrets, secret_problem


class EnvReader:
    """Resolves ``{ env = ... }`` references for one profile; owns the ``.env`` file's values and
    the set of every secret value read (``secret_values``).

    :param issue: how a problem with a reference is reported (``issue(section, key, message, hint)``).
    :param file_issue: how a problem of the ``.env`` file itself is reported (its own file and line).
    :param environ: where variables are read first (``os.environ``).
    :param dotenv: the ``.env`` values, when the caller read them already; None: read
        ``base_dir / ".env"`` when first needed.
    """

    def __init__(
        self,
        base_dir: Path,
        environ: Mapping[str, str],
        dotenv: Mapping[str, str] | None,
        issue: Callable[..., None],
        file_issue: Callable[[ProfileIssue], None],
    ) -> None:
        self.base_dir = base_dir
        self.environ = environ
        self._dotenv = dotenv
        self._dotenv_failed = False
        self._dotenv_bad_lines: tuple[int, ...] = ()
        self._issue = issue
        self._file_issue = file_issue
        self.secret_values: set[str] = set()

    def resolve(
        self, values: dict[str, Any], section: str
    ) -> tuple[dict[str, Any], set[str], set[tuple]]:
        """Replace every ``{ env = "NAME" }`` by the variable's value.

        Returns the values, the dotted keys that came from the environment and the key paths
        whose variable is unset (validation errors under those are noise, so they are dropped).
        """
        secret_keys: set[str] = set()
        unset: set[tuple] = set()

        def walk(value: Any, path: tuple) -> Any:
            if is_env(value):
                key = ".".join(map(str, path))
                var = value["env"]
                if not isinstance(var, str) or not var:
                    self._issue(section, key, "'env' must name an environment variable (expected string)")
                    unset.add(path)
                    return ""
                found = self._lookup(var)
                if found is None:
                    if not self._dotenv_failed:  # else the .env's own issue says why
                        self._issue(section, key, f"environment variable {cut(var, 80)} is not set", self._unset_hint(var))
                    unset.add(path)
                    return ""
                problem = secret_problem(cut(var, 80), found)
                if problem is not None:
                    self._issue(section, key, problem)
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
        var = cut(var, 80)
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
                self._file_issue(ProfileIssue(str(env_file), exc.line, "", None, exc.message, exc.suggestion))
            except OSError as exc:
                self._dotenv_failed = True
                message = f"cannot read it: {exc.strerror or exc}"
                self._file_issue(ProfileIssue(str(env_file), None, "", None, message))
        return self._dotenv.get(var)

    def redact(self, text: str) -> str:
        """Mask env values in text a backend wrote itself (a validator's message may quote its input)."""
        return Secrets(self.secret_values, mask=MASK).mask(text)
