"""The ``magoo`` command: run, check, plugins, backends, devices, and plugins' own commands.

Profile problems exit with code 2 and print every problem at once, never a traceback.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from .errors import PluginError, ProfileError
from .plugins import Plugins, create_plugin_manager
from .roles import Role
from .types import DeviceInfo

log = logging.getLogger("magoo.cli")

EXIT_PROFILE = 2


class _Session:
    """Builds the plugin manager once per command line (no module-level state)."""

    def __init__(self) -> None:
        self._plugins: Plugins | None = None
        self.out = Console()
        self.err = Console(stderr=True)

    def plugins(self) -> Plugins:
        if self._plugins is None:
            try:
                self._plugins = create_plugin_manager()
            except PluginError as exc:
                self.err.print(f"[bold red]plugin error[/]\n{escape(str(exc))}", highlight=False, soft_wrap=True)
                raise typer.Exit(1) from None
        return self._plugins


def _load(session: _Session, profile_path: Path):
    from .profile import load_profile

    try:
        return load_profile(profile_path, session.plugins())
    except ProfileError as exc:
        count = len(exc.issues)
        session.err.print(
            f"[bold red]{escape(str(profile_path))}: {count} problem{'s' if count != 1 else ''}[/]",
            highlight=False,
            soft_wrap=True,
        )
        for issue in exc.issues:
            session.err.print(f"  {issue}", markup=False, highlight=False, soft_wrap=True)
        raise typer.Exit(EXIT_PROFILE) from None


def build_app() -> typer.Typer:
    """The typer application with the core commands and every plugin's commands."""
    session = _Session()
    app = typer.Typer(
        name="magoo",
        help="Voice assistants that live on a Raspberry Pi: microphone → wake word → speech-to-text → reply → speech.",
        no_args_is_help=True,
        add_completion=False,
        pretty_exceptions_enable=False,
        rich_markup_mode=None,  # plain help text: rendering markdown costs more than the rest of --help
    )

    @app.command()
    def run(
        profile: Annotated[Path, typer.Option("--profile", "-p", help="The TOML profile to run.")],
        turns: Annotated[int | None, typer.Option(help="Stop after this many turns.", min=1)] = None,
        keep_going: Annotated[bool, typer.Option(help="Keep running when a file source ends.")] = False,
        verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Debug logging.")] = False,
        log_format: Annotated[
            str | None, typer.Option("--log-format", help="text, journal or json; default: the profile's [magoo] log_format.")
        ] = None,
        quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No turn-by-turn story on stdout.")] = False,
    ) -> None:
        """Run the assistant described by a profile until Ctrl-C (or --turns, or the end of a file source)."""
        from .engine import Engine
        from .logs import setup_logging
        from .reporter import ConsoleReporter

        loaded = _load(session, profile)
        if log_format not in (None, "text", "journal", "json"):
            session.err.print(f"--log-format must be text, journal or json, not {log_format!r}", markup=False)
            raise typer.Exit(EXIT_PROFILE)
        setup_logging(
            "debug" if verbose else loaded.magoo.log_level,
            log_format=log_format or loaded.magoo.log_format,
            secrets=loaded.secret_values,
        )
        plugins = session.plugins()
        engine = Engine(loaded, plugins, max_turns=turns, stop_at_source_end=not keep_going)
        if not quiet:
            plugins.pm.register(ConsoleReporter(sys.stdout, engine), name="magoo:console")
        result = asyncio.run(engine.run())
        if result.fatal:
            session.err.print(f"[bold red]magoo stopped:[/] {escape(result.fatal)}", highlight=False, soft_wrap=True)
        raise typer.Exit(result.exit_code)

    @app.command()
    def check(profile: Annotated[Path, typer.Argument(help="The TOML profile to check.")]) -> None:
        """Validate a profile without running it; exit code 2 lists every problem."""
        loaded = _load(session, profile)
        table = Table(title=escape(f"{profile}: OK"), title_justify="left")
        for column in ("section", "backend", "plugin"):
            table.add_column(column)
        for configured in loaded.specs():
            spec = configured
            while spec is not None:  # a backend, then its backup
                table.add_row(escape(spec.section), spec.backend, f"{spec.info.distribution} {spec.info.version}")
                spec = spec.backup
        session.out.print(table)

    @app.command()
    def plugins(as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False) -> None:
        """List installed plugins, their backends and hooks, and any that failed to load."""
        infos = session.plugins().plugins
        if as_json:
            session.out.print_json(json.dumps([info.as_dict() for info in infos]))
            return
        table = Table()
        for column in ("plugin", "distribution", "backends", "status"):
            table.add_column(column, overflow="fold")
        for info in infos:
            status = "[green]ok[/]" if info.loaded else f"[red]failed:[/] {escape(info.error)}" + (
                f"\ninstall: {escape(info.install)}" if info.install else ""
            )
            table.add_row(info.name, f"{info.distribution} {info.version}", "\n".join(sorted(info.backends)), status)
        session.out.print(table)

    @app.command()
    def backends(
        role: Annotated[str | None, typer.Option(help=f"Only this role: {', '.join(r.value for r in Role)}.")] = None,
        options: Annotated[bool, typer.Option("--options", help="Show each backend's config keys.")] = False,
    ) -> None:
        """List the backends each role can use, optionally with their config keys."""
        registry = session.plugins()
        roles = list(Role)
        if role is not None:
            matches = [r for r in Role if role in (r.value, r.name.lower(), r.title)]
            if not matches:
                roles_list = ", ".join(r.value for r in Role)
                session.err.print(
                    f"unknown role '{role}'; roles: {roles_list}", markup=False, highlight=False, soft_wrap=True
                )
                raise typer.Exit(EXIT_PROFILE)
            roles = matches
        for current in roles:
            for name in registry.names(current):
                info = registry.backend(current, name)
                session.out.print(
                    f"[bold]{escape(f'[{current.value}]')} {name}[/]  {escape(info.summary)}  [dim]({info.distribution})[/]",
                    highlight=False,
                )
                if options:
                    session.out.print(_options_table(info.cls.Config))

    @app.command()
    def devices(
        backend: Annotated[str | None, typer.Option(help="Only this backend (e.g. pyaudio).")] = None,
        probe: Annotated[bool, typer.Option(help="Try which sample rates open (slower).")] = True,
        as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
    ) -> None:
        """List sound devices as each installed audio backend sees them, with the rates that open."""
        listers = session.plugins().device_listers(backend)
        if not listers:
            wanted = f"backend '{backend}'" if backend else "installed backend"
            session.err.print(
                f"no {wanted} can list sound devices; install magoo-pyaudio or magoo-sounddevice",
                markup=False, highlight=False, soft_wrap=True,
            )
            raise typer.Exit(1)
        listed, failed = {}, False
        for name, cls in listers:
            try:
                listed[name] = cls.list_devices(probe_rates=probe)
            except Exception as exc:
                failed = True
                session.err.print(f"{name}: could not list devices: {exc}", markup=False, highlight=False, soft_wrap=True)
        if as_json:
            session.out.print_json(json.dumps({name: [dataclasses.asdict(d) for d in found] for name, found in listed.items()}))
        else:
            for name, found in listed.items():
                session.out.print(_devices_table(name, found))
        raise typer.Exit(1 if failed else 0)

    @app.command()
    def doctor(
        profile: Annotated[
            Path | None, typer.Option("--profile", "-p", help="Also check what this profile needs.")
        ] = None,
        as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
    ) -> None:
        """Check this machine (and what a profile needs from it): each problem with its fix; exit code 1 on a FAIL."""
        from .doctor import diagnose, print_report

        raise typer.Exit(print_report(diagnose(session.plugins(), profile), session.out, as_json=as_json))

    from .service import service_app

    app.add_typer(service_app(lambda path: _load(session, path)), name="service")
    _add_plugin_commands(app, session)
    return app


def _options_table(config: Any) -> Table:
    table = Table(show_edge=False, pad_edge=False, box=None, padding=(0, 2))
    for column in ("key", "type", "default", "description"):
        table.add_column(column, overflow="fold")
    for key, field in config.model_fields.items():
        default = "(required)" if field.is_required() else repr(field.get_default(call_default_factory=True))
        annotation = getattr(field.annotation, "__name__", None) or str(field.annotation).replace("typing.", "")
        table.add_row(key, annotation, default, field.description or "")
    return table


def _devices_table(backend: str, devices: list[DeviceInfo]) -> Table:
    table = Table(title=f"{backend} (rates that open, kHz)", title_justify="left")
    for column in ("#", "name", "API", "in", "out", "default", "input rates", "output rates"):
        table.add_column(column, overflow="fold")
    for device in devices:
        defaults = [kind for kind, flag in (("input", device.default_input), ("output", device.default_output)) if flag]
        table.add_row(
            str(device.index),
            escape(device.name),
            escape(device.host_api),
            str(device.max_input_channels),
            str(device.max_output_channels),
            " ".join(defaults),
            DeviceInfo.khz(device.input_rates),
            DeviceInfo.khz(device.output_rates),
        )
    return table


def _add_plugin_commands(app: typer.Typer, session: _Session) -> None:
    plugins = session.plugins()
    for impl in plugins.pm.hook.magoo_register_commands.get_hookimpls():
        try:
            impl.function(app=app)
        except Exception as exc:
            log.warning("plugin %s could not add its commands: %s", impl.plugin_name, exc)


def main() -> None:
    try:
        app = build_app()
    except typer.Exit as exc:  # a broken plugin set, reported already: no traceback
        sys.exit(exc.exit_code)
    app(prog_name="magoo")


if __name__ == "__main__":
    main()
