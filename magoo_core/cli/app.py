"""The ``magoo`` application: the core commands, ``--version``, ``-h``, and the plugins' commands.

Building it imports typer and the command modules only; each command imports what it needs
(the plugin manager, rich, pydantic, numpy) when it runs. ``magoo --help`` is therefore a
matter of milliseconds, and ``tests/test_startup_imports.py`` keeps it so.
"""

# No `from __future__ import annotations`: typer reads these signatures at every start, and real
# annotations spare it an eval() of each.

from typing import Annotated

import typer

from .devices import add_devices_command
from .group import MagooGroup
from .inventory import add_inventory_commands
from .meter_command import add_meter_command
from .profile_commands import add_profile_commands
from .session import Session
from .tune import add_tune_command

HELP = "Voice assistants that live on a Raspberry Pi: microphone → wake word → speech-to-text → reply → speech."
EPILOG = "Plugins may add commands of their own: `magoo plugins` lists every plugin."


def build_app(session: Session | None = None) -> typer.Typer:
    """The typer application with the core commands; plugins' commands are found when run."""
    session = session or Session()
    app = typer.Typer(
        name="magoo",
        help=HELP,
        epilog=EPILOG,
        cls=MagooGroup,
        no_args_is_help=True,
        add_completion=False,
        pretty_exceptions_enable=False,
        rich_markup_mode=None,  # plain help text: rendering it with rich costs more than the rest of --help
        context_settings={"help_option_names": ["-h", "--help"], "obj": session},
    )

    @app.callback()
    def magoo(
        version: Annotated[
            bool, typer.Option("--version", is_eager=True, callback=_print_version, help="Print magoo's version and exit.")
        ] = False,
    ) -> None:
        pass

    add_profile_commands(app, session)
    add_inventory_commands(app, session)
    add_devices_command(app, session)
    add_tune_command(app, session)
    add_meter_command(app, session)

    from ..service import service_app

    app.add_typer(service_app(session.load), name="service")
    return app


def _print_version(value: bool) -> None:
    if value:
        from importlib.metadata import version

        print(f"magoo {version('magoo')}")
        raise typer.Exit()


def main() -> None:
    try:
        build_app()(prog_name="magoo")
    except KeyboardInterrupt:  # Ctrl-C before a command took over SIGINT (magoo run: in its first second)
        raise SystemExit(130) from None
