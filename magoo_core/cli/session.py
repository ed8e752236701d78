"""What the commands of one ``magoo`` command line share: the plugin manager and the consoles.

Both are made on first use: ``magoo --help`` and ``magoo --version`` never build the plugin
manager (which imports every plugin) nor load rich.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterable, Mapping
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

import typer

if TYPE_CHECKING:
    from rich.console import Console

    from ..plugins import PluginInfo, Plugins
    from ..profile import Profile

#: exit code of a profile with problems (and of a command line that names none)
EXIT_PROFILE = 2


class Session:
    """Per command line (no module-level state). Not thread-safe: the CLI runs on one thread."""

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        self.environ = os.environ if environ is None else environ
        self._plugins: Plugins | None = None

    @cached_property
    def out(self) -> Console:
        from rich.console import Console

        return Console()

    @cached_property
    def err(self) -> Console:
        from rich.console import Console

        return Console(stderr=True)

    def plugins(self, *, report_failed: bool = True) -> Plugins:
        """The plugin manager, built on first call.

        Problems with the plugin set as a whole (a ``MAGOO_LOAD_PLUGINS`` name that matches no
        plugin) are printed on stderr once; so is each plugin that failed to load, one line each,
        unless ``report_failed`` is False (the command shows them itself).
        """
        if self._plugins is None:
            from ..errors import PluginError
            from ..plugins import create_plugin_manager

            try:
                self._plugins = create_plugin_manager(environ=self.environ)
            except PluginError as exc:  # a built-in is broken: nothing to start without
                say(f"plugin error\n{exc}")
                raise typer.Exit(1) from None
            for warning in self._plugins.warnings:
                say(f"warning: {warning}")
            if report_failed:
                self.report_failed()
        return self._plugins

    def report_failed(
        self, mentioned: Iterable[str] = (), *, used_by: str | None = None, warn: Callable[[str], object] | None = None
    ) -> None:
        """One warning per plugin that failed to load, except those named in ``mentioned`` (texts
        already printed). ``used_by``: the profile that loaded without them. ``warn``: where the
        warning goes (``magoo run`` gives its logger); by default a 'warning: ' line on stderr."""
        already = "\n".join(mentioned).lower()
        for info in self.plugins(report_failed=False).failed():
            if f"plugin {info.name} ".lower() not in already:
                (warn or _warning)(failed_message(info, used_by))

    def load(self, path: Path, *, report_unused: bool = True) -> Profile:
        """Load and validate a profile; on problems print every one and exit with code 2.

        Plugins that failed to load are warned about (the profile does not need them), unless
        ``report_unused`` is False: the caller does it with :meth:`report_failed`.
        """
        from ..errors import ProfileError
        from ..profile import load_profile

        plugins = self.plugins(report_failed=False)
        try:
            profile = load_profile(path, plugins)
        except ProfileError as exc:
            count = len(exc.issues)
            say(f"{path}: {count} problem{'s' if count != 1 else ''}")
            for issue in exc.issues:
                say(f"  {issue}")
            self.report_failed(str(issue) for issue in exc.issues)
            raise typer.Exit(EXIT_PROFILE) from None
        for issue in profile.warnings:
            _warning(str(issue))
        if report_unused:
            self.report_failed(used_by=str(path))
        return profile


def failed_message(info: PluginInfo, used_by: str | None = None) -> str:
    """'plugin magoo-x 1.0 did not load: ...' in one line, with what it means for the user."""
    install = f" (install: {info.install})" if info.install else ""
    if used_by:
        consequence = f"{used_by} does not use it"
    else:
        consequence = "a profile that uses it will not load"
    return f"plugin {info.name} {info.version} did not load: {info.error}{install}; {consequence}; `magoo plugins` lists it"


def _warning(text: str) -> None:
    say(f"warning: {text}")


def say(text: str) -> None:
    """One message on stderr as it is: no markup, no wrapping (a path may hold '[' or be long)."""
    print(text, file=sys.stderr, flush=True)
