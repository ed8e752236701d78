"""Python, the installed plugins, the profile and its keys."""

from __future__ import annotations

import importlib.metadata
import sys

from ..plugins import KNOWN_PLUGINS
from .context import Context, backend_names, env_references
from .rows import Check, fail, ok, warn

MIN_PYTHON = (3, 11)


async def check_python(context: Context) -> list[Check]:
    version = ".".join(map(str, sys.version_info[:3]))
    found = f"Python {version} ({sys.executable}); magoo {_version('magoo')}"
    if sys.version_info < MIN_PYTHON:
        wanted = ".".join(map(str, MIN_PYTHON))
        fix = f"install Python {wanted} or newer (Raspberry Pi OS bookworm has 3.11), then ./scripts/demo.sh"
        return [fail("python", found, fix)]
    return [ok("python", found)]


async def check_plugins(context: Context) -> list[Check]:
    """Every plugin distribution with its version; one row per plugin that did not import."""
    loaded: dict[str, str] = {}  # distribution -> version
    rows = []
    for info in context.plugins.plugins:
        if info.loaded:
            loaded.setdefault(info.distribution, info.version)
            continue
        fix = info.install or f"uv pip install --reinstall {info.distribution}  (`magoo plugins` shows the error)"
        used = [
            backend for backend in backend_names(context.raw or {})
            if info in context.plugins.suspects(backend, KNOWN_PLUGINS.get(backend))
        ]
        name = f"plugin {info.name}"
        # a FAIL either way: an installed plugin that does not load is this machine's to fix
        uses = ", and the profile uses it" if used else ""
        rows.append(fail(name, f"{info.version}: did not load{uses}: {info.error}", fix))
    versions = set(loaded.values())
    if len(versions) == 1:  # the workspace's plugins move together: say the version once
        names = f"{', '.join(sorted(loaded))} (all {versions.pop()})"
    else:
        names = ", ".join(f"{name} {version}" for name, version in sorted(loaded.items()))
    return [ok("plugins", f"{len(loaded)} distributions imported: {names}"), *rows]


async def check_profile(context: Context) -> list[Check]:
    if context.profile_path is None:
        return []
    name = f"profile {context.profile_path}"
    if context.problems is None:
        assert context.profile is not None
        backends = ", ".join(f"{spec.section} {spec.backend}" for spec in context.specs())
        return [ok(name, f"loads: {backends}")]
    fix = f"fix them; `magoo check {context.profile_path}` lists them"
    if context.profile is not None:  # it loads once the unset variables have values: nothing else is wrong
        count = len(context.problems.issues)
        unset = f"{count} environment variable{'s are' if count != 1 else ' is'} not set"
        return [fail(name, f"does not load: {unset} (the key rows); the other checks ran without them", fix)]
    issues = "\n".join(str(issue) for issue in context.problems.issues)
    return [fail(name, f"does not load, so the checks of its backends were skipped:\n{issues}", fix)]


async def check_keys(context: Context) -> list[Check]:
    """Each ``{ env = "NAME" }`` of the profile: set or not, and where from; never its value."""
    users: dict[str, list[str]] = {}
    for section, key, var in env_references(context.raw or {}):
        users.setdefault(var, []).append(f"{section} {key}")
    rows = []
    for var, where in users.items():
        source, empty = context.secret_source(var)
        used = f"used by {', '.join(where)}"
        name = f"key {var}"
        if source is None:
            rows.append(fail(name, f"not set ({used})", f"export {var}=...  or add {var}=... to {context.dotenv_path}"))
        elif empty:
            rows.append(warn(name, f"set but empty, in {source} ({used})", f"give {var} its value in {source}"))
        else:
            rows.append(ok(name, f"set, in {source} ({used})"))
    return rows


def _version(distribution: str) -> str:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return "(not installed)"
