"""The ``magoo`` command line (entry point ``magoo_core.cli:main``).

The modules: :mod:`.app` (the application), :mod:`.group` (finding the plugins' commands),
:mod:`.session` (what the commands share), and the commands: :mod:`.profile_commands` (run,
check, doctor), :mod:`.inventory` (plugins, backends; :mod:`.config_table`), :mod:`.devices`
(:mod:`.device_probe`). ``magoo service`` lives in :mod:`magoo_core.service`.
"""

try:
    from .app import build_app, main
except KeyboardInterrupt:  # Ctrl-C while the command line loads: an exit, not a traceback
    raise SystemExit(130) from None

__all__ = ["build_app", "main"]
