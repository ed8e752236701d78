"""The commands that take a profile: ``run``, ``check`` and ``doctor``, each with ``-p/--profile``.

Profile problems exit with code 2 and print every problem at once, never a traceback.
"""

# No `from __future__ import annotations`: typer reads these signatures at every start, and real
# annotations spare it an eval() of each.

import logging
import os
import signal
import sys
from pathlib import Path
from typing import Annotated

import typer

from .session import EXIT_PROFILE, Session, say

PROFILE_HELP = "The TOML profile"


def add_profile_commands(app: typer.Typer, session: Session) -> None:
    """Register run, check and doctor on ``app``."""

    @app.command()
    def run(
        profile: Annotated[Path, typer.Option("--profile", "-p", metavar="FILE", help=f"{PROFILE_HELP} to run.")],
        turns: Annotated[int | None, typer.Option(help="Stop after this many turns.", min=1)] = None,
        keep_going: Annotated[bool, typer.Option(help="Keep running when a file source ends.")] = False,
        verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Debug logging.")] = False,
        log_format: Annotated[
            str | None, typer.Option("--log-format", help="text, journal or json; default: the profile's [magoo] log_format.")
        ] = None,
        quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No turn-by-turn story on stdout.")] = False,
    ) -> None:
        """Run the assistant described by a profile until Ctrl-C (or --turns, or the end of a file source)."""
        import asyncio

        from ..engine import Engine
        from ..logs import setup_logging
        from ..reload import Reloader
        from ..reporter import ConsoleReporter

        loaded = session.load(profile, report_unused=False)
        # from here on every line on stdout and stderr (story, log, "magoo stopped:", a traceback) is masked
        sys.stdout, sys.stderr = loaded.secrets.stream(sys.stdout), loaded.secrets.stream(sys.stderr)
        if log_format not in (None, "text", "journal", "json"):
            say(f"--log-format must be text, journal or json, not {log_format!r}")
            raise typer.Exit(EXIT_PROFILE)
        setup_logging(
            "debug" if verbose else loaded.magoo.log_level,
            log_format=log_format or loaded.magoo.log_format,
            secrets=loaded.secrets,
        )
        session.report_failed(used_by=str(profile), warn=logging.getLogger("magoo.plugins").warning)  # in the log's format
        plugins = session.plugins()
        engine = Engine(loaded, plugins, max_turns=turns, stop_at_source_end=not keep_going)
        plugins.pm.register(Reloader(engine, profile), name="magoo:reload")  # SIGHUP and [engine] watch_profile
        if not quiet:
            plugins.pm.register(ConsoleReporter(sys.stdout, engine), name="magoo:console")
        runner = asyncio.Runner()
        try:
            result = runner.run(engine.run())
            # the engine has given SIGINT back: a Ctrl-C while magoo exits (the second one, late) ends it now
            signal.signal(signal.SIGINT, lambda *_: os._exit(130))
            if result.fatal:
                say(f"magoo stopped: {result.fatal}")
            if result.hurried:  # stopped at once: a thread or task stuck in a backend must not hold the exit
                logging.shutdown()
                sys.stdout.flush()
                os._exit(result.exit_code)
        finally:
            runner.close()
        raise typer.Exit(result.exit_code)

    @app.command()
    def check(
        path: Annotated[
            Path | None, typer.Argument(metavar="FILE", help=f"{PROFILE_HELP} to check (the same as -p FILE).", show_default=False)
        ] = None,
        profile: Annotated[
            Path | None, typer.Option("--profile", "-p", metavar="FILE", help=f"{PROFILE_HELP} to check.", show_default=False)
        ] = None,
    ) -> None:
        """Validate a profile without running it; exit code 2 lists every problem."""
        from rich.markup import escape
        from rich.table import Table

        chosen = _one_profile(path, profile)
        loaded = session.load(chosen)
        session.out.print(f"{chosen}: OK", markup=False, highlight=False, soft_wrap=True)  # a long path in one piece
        table = Table()
        for column in ("section", "backend", "plugin"):
            table.add_column(column)
        for configured in loaded.specs():
            verify = configured.verify.detector if configured.verify else None  # [wake.verify]'s second detector
            for backend in (configured, configured.backup, *configured.by_wake.values(), verify):  # a backend, its backup, its by_wake tables
                if backend is not None:
                    section = backend.section if backend.service is None else f"[{backend.role.value}] → {backend.section}"
                    table.add_row(escape(section), escape(backend.backend), escape(f"{backend.info.distribution} {backend.info.version}"))
        session.out.print(table)  # session.load has told the profile's warnings, on stderr

    @app.command()
    def doctor(
        profile: Annotated[
            Path | None, typer.Option("--profile", "-p", metavar="FILE", help="Also check what this profile needs.")
        ] = None,
        as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
    ) -> None:
        """Check this machine (and what a profile needs from it): each problem with its fix; exit code 1 on a FAIL."""
        from ..doctor import diagnose, print_report

        plugins = session.plugins(report_failed=False)  # each failed plugin is a row of the report
        raise typer.Exit(print_report(diagnose(plugins, profile), session.out, as_json=as_json))


def _one_profile(path: Path | None, option: Path | None) -> Path:
    """The profile of ``magoo check FILE`` or ``magoo check -p FILE``; exit code 2 for none or two."""
    if path is not None and option is not None and path != option:
        say(f"two profiles given ({path} and --profile {option}); check one at a time")
        raise typer.Exit(EXIT_PROFILE)
    chosen = option or path
    if chosen is None:
        say("which profile? magoo check -p FILE (or: magoo check FILE)")
        raise typer.Exit(EXIT_PROFILE)
    return chosen
