"""The ``magoo`` command group: the core commands, then the plugins' commands, imported only to run.

A plugin adds commands in one of two ways:

* an entry point in the group ``magoo.commands`` (``jaw = "magoo_jaw.cli:app"``; the object is a
  ``typer.Typer``, a click command or a plain function). ``magoo --help`` lists its name from the
  metadata alone; its module is imported when ``magoo jaw`` (or ``magoo jaw -h``) runs.
* the hook ``magoo_register_commands(app)``. Finding those commands means importing every
  plugin, so ``magoo --help`` does not list them (``magoo plugins`` does); a command line that
  names no core or entry-point command builds the plugin manager and looks there.
"""

from __future__ import annotations

import logging
import os
from functools import cached_property
from typing import Any

import typer
from typer.core import TyperGroup

try:
    from typer import _click as click  # typer >= 0.2x carries its own click: its commands are made of that one
except ImportError:
    import click

from .. import plugin_entry_points
from ..plugin_entry_points import Installed
from .session import Session

log = logging.getLogger("magoo.cli")


class MagooGroup(TyperGroup):
    """A :class:`typer.core.TyperGroup` that also finds the plugins' commands (see the module doc).

    The :class:`~magoo_core.cli.session.Session` comes as the root context's ``obj``.
    """

    @cached_property
    def _entry_points(self) -> dict[str, Installed]:
        return {name: entry for name, entry in plugin_entry_points.commands(os.environ).items() if name not in self.commands}

    def list_commands(self, ctx: click.Context) -> list[str]:
        return [*super().list_commands(ctx), *sorted(self._entry_points)]

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        command = super().get_command(ctx, cmd_name)
        if command is not None:
            return command
        entry = self._entry_points.get(cmd_name)
        if entry is not None:
            return load_command(entry)
        if ctx.resilient_parsing:  # shell completion: do not import every plugin for a partial word
            return None
        return hook_commands(ctx.find_root().obj).get(cmd_name)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """The core commands with their short help, then each plugin command with its plugin: a
        plugin command's help would mean importing its module."""
        rows = []
        limit = formatter.width - 6 - max(map(len, self.list_commands(ctx)), default=0)
        for name, command in self.commands.items():
            if not command.hidden:
                rows.append((name, command.get_short_help_str(limit)))
        for name, entry in sorted(self._entry_points.items()):
            rows.append((name, f"From {entry.distribution} {entry.version}: `magoo {name} -h` tells more."))
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)


def load_command(entry: Installed) -> click.Command:
    """Import a ``magoo.commands`` entry point and make it a click command.

    :raises click.ClickException: it does not import or is not a command (exit code 1, one line).
    """
    where = f"the command '{entry.name}' of {entry.distribution} {entry.version}".rstrip()
    try:
        target = entry.entry_point.load()
    except Exception as exc:
        hint = ""
        if isinstance(exc, ModuleNotFoundError) and exc.name:
            hint = f"; install what it needs with: {plugin_entry_points.install_hint(exc.name, entry.dist, entry.distribution)}"
        raise click.ClickException(f"{where} could not be loaded: {type(exc).__name__}: {exc}{hint}") from None
    return as_command(target, entry.name, where)


def as_command(target: Any, name: str, where: str) -> click.Command:
    """A ``typer.Typer``, a click command or a function (made a command like ``@app.command()``)."""
    if isinstance(target, typer.Typer):
        return typer.main.get_command(target)
    if isinstance(target, click.Command):
        return target
    if callable(target):
        app = typer.Typer()
        app.command(name=name)(target)
        return typer.main.get_command(app)
    raise click.ClickException(f"{where} is {type(target).__name__}, not a typer.Typer, click command or function")


def hook_commands(session: Session) -> dict[str, click.Command]:
    """The commands plugins add through ``magoo_register_commands``, by name (builds the plugin manager)."""
    commands: dict[str, click.Command] = {}
    for by_plugin in _hook_commands_by_plugin(session).values():
        for name, command in by_plugin.items():
            commands.setdefault(name, command)
    return commands


def commands_by_plugin(session: Session) -> dict[str, list[str]]:
    """Plugin name -> the commands it adds, by entry point or by hook, for ``magoo plugins``."""
    found: dict[str, list[str]] = {}
    for plugin, commands in _hook_commands_by_plugin(session).items():
        found.setdefault(plugin, []).extend(commands)
    by_distribution = {info.distribution: info.name for info in session.plugins(report_failed=False).plugins}
    for name, entry in plugin_entry_points.commands(os.environ).items():
        found.setdefault(by_distribution.get(entry.distribution, entry.distribution), []).append(name)
    return {plugin: sorted(set(names)) for plugin, names in found.items()}


def _hook_commands_by_plugin(session: Session) -> dict[str, dict[str, click.Command]]:
    """Each plugin's ``magoo_register_commands`` called on an application of its own.

    A plugin whose hook raises is logged and skipped: the other plugins' commands still work.
    """
    found = {}
    for impl in session.plugins(report_failed=False).pm.hook.magoo_register_commands.get_hookimpls():
        app = typer.Typer()
        try:
            impl.function(app=app)
        except Exception as exc:
            log.warning("plugin %s could not add its commands: %s", impl.plugin_name, exc)
            continue
        if app.registered_commands or app.registered_groups:
            found[impl.plugin_name] = dict(typer.main.get_group(app).commands)
    return found
