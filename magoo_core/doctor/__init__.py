"""``magoo doctor``: what is wrong with this machine, and with what a profile needs from it.

A check is a coroutine function that takes the :class:`Context` and returns :class:`Check` rows;
:data:`CHECKS` lists them in the order the report shows them. They run concurrently, each under
:data:`~magoo_core.doctor.running.CHECK_TIMEOUT`, and anything that can block (a sound server that
stopped answering, a DNS server that is not there) runs in a subprocess that is killed at its limit
or in a daemon thread that is abandoned at its limit, so a hung part costs seconds and never the
whole doctor. The limits are constants of the module that applies them (``running.CHECK_TIMEOUT``,
``backends.BACKEND_CHECK_TIMEOUT``, ...).

The core checks the machine; each backend checks itself: a backend class with a ``doctor``
classmethod gets its rows into the report for every place the profile configures it
(:mod:`.backends`; the contract is in docs/writing-plugins.md, "Doctor checks").

Secrets: a ``{ env = "NAME" }`` is only ever looked up to say whether it is set and where from.
The profile's secret values are masked in every row as well, as the loader masks them.

The modules: :mod:`.rows` (what a check returns; plugins import it), :mod:`.context`,
:mod:`.running` (limits), :mod:`.report`, and the checks: :mod:`.machine`, :mod:`.sound`,
:mod:`.echo`, :mod:`.tools`, :mod:`.gpio`, :mod:`.network`, :mod:`.duplex`, :mod:`.backends`.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Mapping
from pathlib import Path

from ..plugins import Plugins
from .backends import check_backends
from .echo import check_echo
from .context import PLACEHOLDER, Context, backend_names, env_references, open_context
from .duplex import check_duplex
from .gpio import check_gpio, gpio_problem
from .machine import check_keys, check_plugins, check_profile, check_python
from .network import check_network
from .report import exit_code, print_report
from .rows import Check, Result, fail, ok, warn
from .running import CheckFunction, in_daemon_thread, reach, run_checks, run_command
from .sound import check_sound
from .tools import binary_version, check_tools

#: The report's checks, in the order it shows them; the backends' own rows come last.
CHECKS: tuple[CheckFunction, ...] = (
    check_python, check_plugins, check_profile, check_keys, check_sound, check_echo,
    check_tools, check_gpio, check_network, check_duplex, check_backends,
)


def diagnose(
    plugins: Plugins, profile_path: Path | None = None, *, environ: Mapping[str, str] | None = None
) -> list[Check]:
    """Run every check of :data:`CHECKS` (blocking; a few seconds) and return the rows in order."""
    context = open_context(plugins, profile_path, environ=os.environ if environ is None else environ)
    return asyncio.run(run_checks(context, CHECKS))


__all__ = [
    "CHECKS", "PLACEHOLDER", "Check", "CheckFunction", "Context",
    "Result", "backend_names", "binary_version", "diagnose", "env_references", "exit_code", "fail", "gpio_problem",
    "in_daemon_thread", "ok", "open_context", "print_report", "reach", "run_checks", "run_command", "warn",
]
