"""What ``magoo --help``, ``--version`` and ``plugins`` import, traced (not timed: bench/startup.py times them).

Each runs as the installed ``magoo`` script does (``from magoo_core.cli import main; main()``) in a
fresh interpreter that writes ``sys.modules`` to a file when it exits.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

DRIVER = textwrap.dedent(
    """
    import atexit, json, sys

    written_to = sys.argv.pop(1)
    atexit.register(lambda: open(written_to, "w").write(json.dumps(sorted(sys.modules))))
    sys.argv[0] = "magoo"
    from magoo_core.cli import main

    main()
    """
)

#: never for these commands: numpy, pydantic (the backends' configs), rich (tables), pluggy (the
#: plugin manager), typer's rich rendering of help, and the modules that pull those in
NOT_FOR_HELP = (
    "numpy", "pydantic", "rich", "pluggy", "typer.rich_utils",
    "magoo_core.plugins", "magoo_core.roles", "magoo_core.types", "magoo_core.audio", "magoo_core.profile",
)
#: libraries a plugin module must import only when its backend starts; `magoo plugins` imports every plugin
HEAVY = (
    "numpy", "soxr", "onnxruntime", "ai_edge_litert", "tflite_runtime", "pyaudio", "sounddevice", "_sounddevice",
    "pocketsphinx", "pvporcupine", "httpx", "fish_audio_sdk", "openai", "gpiozero", "pigpio",
)


def imported_by(tmp_path: Path, *args: str) -> set[str]:
    modules = tmp_path / "modules.json"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MAGOO_", "PYTHON"))}
    done = subprocess.run(
        [sys.executable, "-c", DRIVER, str(modules), *args],
        capture_output=True, text=True, timeout=120, env=env, cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    return set(json.loads(modules.read_text()))


def loaded(modules: set[str], packages: tuple[str, ...]) -> list[str]:
    """The modules of ``modules`` that are one of ``packages`` or inside one."""
    return sorted(m for m in modules if any(m == p or m.startswith(f"{p}.") for p in packages))


def plugin_modules() -> tuple[str, ...]:
    """The top-level module of every installed magoo plugin, by its entry point."""
    return tuple(
        sorted({ep.value.split(":")[0].split(".")[0] for ep in importlib.metadata.entry_points(group="magoo")})
    )


@pytest.mark.parametrize("args", [["--help"], ["-h"], ["--version"]])
def test_help_and_version_import_no_plugin_nor_heavy_library(tmp_path, args):
    modules = imported_by(tmp_path, *args)

    assert "magoo_core.cli" in modules  # the trace did trace the command line
    assert loaded(modules, NOT_FOR_HELP) == []
    assert plugin_modules() and loaded(modules, plugin_modules()) == []


@pytest.mark.parametrize("command", ["run", "check", "backends", "devices", "doctor"])
def test_a_commands_help_imports_no_plugin(tmp_path, command):
    modules = imported_by(tmp_path, command, "-h")

    # typer itself validates a command's options with pydantic: only magoo's side is checked
    assert loaded(modules, tuple(m for m in NOT_FOR_HELP if m != "pydantic")) == []
    assert loaded(modules, plugin_modules()) == []


def test_plugins_imports_the_plugins_but_no_heavy_library(tmp_path):
    modules = imported_by(tmp_path, "plugins", "--json")

    assert set(plugin_modules()) <= modules  # that is how it knows their backends
    assert loaded(modules, HEAVY) == []
