"""What is installed: ``magoo plugins`` (each plugin, loaded or why not) and ``magoo backends``."""

# No `from __future__ import annotations`: typer reads these signatures at every start, and real
# annotations spare it an eval() of each.

import json
from typing import Annotated

import typer

from .session import EXIT_PROFILE, Session, say


def add_inventory_commands(app: typer.Typer, session: Session) -> None:
    """Register plugins and backends on ``app``."""

    @app.command()
    def plugins(as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False) -> None:
        """List installed plugins, their backends and hooks, and any that failed to load."""
        from rich.markup import escape
        from rich.table import Table

        from .group import commands_by_plugin

        infos = session.plugins(report_failed=False).plugins  # the table says why a plugin failed
        commands = commands_by_plugin(session)
        if as_json:
            print(json.dumps([{**info.as_dict(), "commands": commands.get(info.name, [])} for info in infos], indent=2))
            return
        table = Table()
        columns = ("plugin", "distribution", "backends", *(("commands",) if commands else ()), "status")
        for column in columns:
            table.add_column(column, overflow="fold")
        for info in infos:
            if info.loaded:
                status = "[green]ok[/]"
            else:
                status = f"[red]failed:[/] {escape(info.error or '')}" + (
                    f"\ninstall: {escape(info.install)}" if info.install else ""
                )
            cells = [escape(info.name), escape(f"{info.distribution} {info.version}"), escape("\n".join(sorted(info.backends)))]
            if commands:
                cells.append(escape("\n".join(f"magoo {name}" for name in commands.get(info.name, []))))
            table.add_row(*cells, status)
        session.out.print(table)

    @app.command()
    def backends(
        role: Annotated[
            str | None, typer.Option(metavar="ROLE", help="Only this role: stt, tts, ... (an unknown one lists them).")
        ] = None,
        options: Annotated[bool, typer.Option("--options", help="Show each backend's config keys.")] = False,
    ) -> None:
        """List the backends each role can use, optionally with their config keys."""
        from rich.markup import escape

        from ..roles import Role
        from .config_keys import options_text

        registry = session.plugins()
        roles = list(Role)
        services = role in (None, "services", "service")
        if role is not None:
            roles = [r for r in Role if role in (r.value, r.name.lower(), r.title)]
            if not roles and not services:
                say(f"unknown role '{role}'; roles: {', '.join(r.value for r in Role)}, or services")
                raise typer.Exit(EXIT_PROFILE)
        for current in roles:
            for name in registry.names(current):
                info = registry.backend(current, name)
                heading = f"[{current.value}] {name}"
                session.out.print(
                    f"[bold]{escape(heading)}[/]  {escape(info.summary)}  [dim]({escape(info.distribution)})[/]",
                    highlight=False,
                )
                if options:
                    text = options_text(info.cls.Config, session.out.width)
                    session.out.print(text, markup=False, highlight=False, soft_wrap=True)
        for name in registry.service_names() if services else ():  # one backend for several roles
            service = registry.service(name)
            session.out.print(
                f"[bold]{escape(f'[services] {name}')}[/] ({escape(service.role_names)})  {escape(service.summary)}"
                f"  [dim]({escape(service.distribution)})[/]",
                highlight=False,
            )
            if options:
                session.out.print(options_text(service.cls.Config, session.out.width), markup=False, highlight=False, soft_wrap=True)
