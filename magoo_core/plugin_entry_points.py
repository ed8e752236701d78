"""Which plugins are installed, from their entry-point metadata alone: nothing here imports a plugin.

Two entry-point groups:

* ``magoo`` — one per plugin distribution, naming its module (``magoo-jaw = "magoo_jaw"``).
* ``magoo.commands`` — one per command a plugin adds to ``magoo`` (``jaw = "magoo_jaw.cli:app"``).
  The CLI lists these names in ``magoo --help`` and imports the object only when that command runs.

``MAGOO_LOAD_PLUGINS`` (comma-separated entry-point or distribution names; empty: none) limits
both groups. This module is cheap to import (no pluggy, no pydantic, and importlib.metadata only
when there is something to read): ``magoo --help`` uses it.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import importlib.metadata

PLUGIN_GROUP = "magoo"
COMMAND_GROUP = "magoo.commands"
LOAD_VARIABLE = "MAGOO_LOAD_PLUGINS"


@dataclass(frozen=True)
class Installed:
    """One entry point with the distribution that provides it."""

    entry_point: importlib.metadata.EntryPoint
    distribution: str
    version: str

    @property
    def name(self) -> str:
        return self.entry_point.name

    @property
    def dist(self) -> importlib.metadata.Distribution | None:
        return getattr(self.entry_point, "dist", None)


def load_list(environ: Mapping[str, str]) -> set[str] | None:
    """The names ``MAGOO_LOAD_PLUGINS`` allows, or None when it is not set (every plugin loads)."""
    value = environ.get(LOAD_VARIABLE)
    if value is None:
        return None
    return {name.strip() for name in value.split(",") if name.strip()}


def installed(group: str = PLUGIN_GROUP) -> list[Installed]:
    """Every entry point of ``group``, once each (a distribution seen twice on sys.path counts once)."""
    import importlib.metadata

    found: dict[str, Installed] = {}
    for ep in importlib.metadata.entry_points(group=group):
        dist = getattr(ep, "dist", None)
        distribution = dist.name if dist is not None and dist.name else ep.name
        version = dist.version if dist is not None else ""
        found.setdefault(ep.name, Installed(ep, distribution, version))
    return list(found.values())


def allowed(entry: Installed, names: set[str] | None) -> bool:
    """Whether ``MAGOO_LOAD_PLUGINS`` (parsed by :func:`load_list`) lets ``entry`` load."""
    return names is None or entry.name in names or entry.distribution in names


def unknown_names(names: set[str] | None, plugins: list[Installed]) -> list[str]:
    """The names in ``MAGOO_LOAD_PLUGINS`` that match no installed plugin (a typo), sorted."""
    if not names:
        return []
    known = {p.name for p in plugins} | {p.distribution for p in plugins}
    return sorted(names - known)


def unknown_names_message(unknown: list[str], plugins: list[Installed]) -> str:
    """'MAGOO_LOAD_PLUGINS names magoo-pocketsphynx, which is not installed; installed: ...'."""
    which = "which is" if len(unknown) == 1 else "which are"
    names = ", ".join(sorted({p.distribution for p in plugins})) or "none"
    return f"{LOAD_VARIABLE} names {', '.join(unknown)}, {which} not installed; installed: {names}"


def commands(environ: Mapping[str, str]) -> dict[str, Installed]:
    """The plugins' commands by name (entry-point group ``magoo.commands``), as ``MAGOO_LOAD_PLUGINS`` allows."""
    if not may_declare(COMMAND_GROUP):
        return {}
    names = load_list(environ)
    return {entry.name: entry for entry in installed(COMMAND_GROUP) if allowed(entry, names)}


def may_declare(group: str) -> bool:
    """Whether a distribution on ``sys.path`` may have entry points in ``group``; False only when sure.

    A look at the raw ``entry_points.txt`` files: a few milliseconds, where importing
    importlib.metadata and asking it costs ``magoo --help`` several times that, for nothing when
    no plugin adds a command. Anything unusual on ``sys.path`` (a zip file) counts as maybe.
    """
    header = f"[{group}]"
    for folder in sys.path:
        if os.path.isfile(folder):
            return True  # a zipped distribution: importlib.metadata knows how to read it
        try:
            entries = os.scandir(folder or ".")
        except OSError:
            continue
        with entries:
            for entry in entries:
                if not entry.name.endswith((".dist-info", ".egg-info")):
                    continue
                try:
                    with open(os.path.join(entry.path, "entry_points.txt"), encoding="utf-8", errors="replace") as file:
                        if header in file.read():
                            return True
                except OSError:
                    continue
    return False


def install_hint(module: str, dist: importlib.metadata.Distribution | None, distribution: str) -> str:
    """The command that installs ``module``, taken from the plugin's own requirements when it lists it."""
    wanted = module.split(".")[0].replace("_", "-").lower()
    for requirement in (dist.requires or []) if dist is not None else []:
        name = re.split(r"[\s;<>=!~\[(]", requirement, maxsplit=1)[0]
        if name.replace("_", "-").lower() == wanted:
            return f"uv pip install '{requirement.split(';')[0].strip()}'"
    return f"uv pip install --reinstall {distribution}  (it needs the module '{module}')"
