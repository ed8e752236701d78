"""``magoo meter``: the live terminal view, of a profile run here or of a running magoo's API.

See :mod:`magoo_core.meter`. Exit codes: those of ``magoo run`` with ``-p``; with ``--url``, 0 when
quit with ``q`` or when magoo closed the connection, 1 when it cannot connect.
"""

# No `from __future__ import annotations`: typer reads these signatures at every start.

import os
import sys
from pathlib import Path
from typing import Annotated

import typer

from .session import EXIT_PROFILE, Session, say

HELP_KEYS = "Keys: m mutes or unmutes the microphone, s stops what is being said, q quits."


def add_meter_command(app: typer.Typer, session: Session) -> None:
    """Register ``meter`` on ``app``."""

    @app.command(help=(
        "A live view of what the assistant hears: input level and clipping, each wake word's score against its "
        f"threshold, voice activity, the state and the last turn. {HELP_KEYS}"
    ))
    def meter(
        profile: Annotated[
            Path | None, typer.Option("--profile", "-p", metavar="FILE", help="Run this profile here, as magoo run does, and show it.")
        ] = None,
        url: Annotated[
            str | None, typer.Option("--url", metavar="WS_URL", help="Show a running magoo through its control API: ws://host:port/api/ws.")
        ] = None,
        token: Annotated[
            str | None,
            typer.Option("--token", envvar="MAGOO_TOKEN", show_envvar=True, help="The control API's token, for --url (better: MAGOO_TOKEN)."),
        ] = None,
        rate: Annotated[float, typer.Option("--rate", min=2.0, max=30.0, help="Frames a second.")] = 12.0,
    ) -> None:
        import asyncio

        from ..meter.screen import show
        from ..meter.terminal import Terminal

        if (profile is None) == (url is None):
            say("give one of: a profile to run (-p FILE), or a running magoo's API (--url ws://host:port/api/ws)")
            raise typer.Exit(EXIT_PROFILE)
        if url is not None:
            from ..meter.feeds import RemoteFeed

            try:
                import websockets  # noqa: F401
            except ImportError:
                say("magoo meter --url needs the websockets package: uv pip install websockets")
                raise typer.Exit(1) from None
            feed = RemoteFeed(url, token)

            async def remote() -> None:
                with Terminal() as terminal:
                    await show(feed, terminal, rate=rate)

            try:
                asyncio.run(remote())
            except ConnectionError as exc:
                say(f"magoo meter: {exc}")
                raise typer.Exit(1) from None
            except KeyboardInterrupt:
                pass
            if feed.reason:
                say(f"magoo meter: {feed.reason}")
            return
        _meter_profile(session, profile, rate)


def _meter_profile(session: Session, profile: Path, rate: float) -> None:
    """``magoo run -p profile`` with the meter on the screen and the log kept aside (its last lines
    are shown, and printed on stderr when the meter ends). Every frame is masked like ``magoo run``'s
    output (a reply may quote a secret)."""
    import asyncio

    from ..engine import Engine
    from ..logs import setup_logging
    from ..meter.screen import LogTail, run_profile
    from ..meter.terminal import Terminal

    loaded = session.load(profile, report_unused=False)
    sys.stderr = loaded.secrets.stream(sys.stderr)
    log = LogTail()
    setup_logging(loaded.magoo.log_level, log_format="text", secrets=loaded.secrets, stream=log)
    plugins = session.plugins()
    engine = Engine(loaded, plugins)

    async def local():
        with Terminal(mask=loaded.secrets.mask) as terminal:
            return await run_profile(engine, terminal, rate=rate, log=log)

    result = asyncio.run(local())
    for line in list(log.lines)[-10:]:
        print(line, file=sys.stderr)
    if result.fatal:
        say(f"magoo stopped: {result.fatal}")
    if result.hurried:
        sys.stdout.flush()
        os._exit(result.exit_code)
    raise typer.Exit(result.exit_code)
