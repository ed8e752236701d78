"""Shared test helpers: the real ``magoo`` command in a subprocess, and fake installed plugins."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from collections.abc import Iterable
from pathlib import Path

import pytest

MAGOO = Path(sys.executable).parent / "magoo"

#: Modules whose tests run a bench/ script, CPU-bound for tens of seconds. Under pytest-xdist
#: (scripts/test.sh: --dist loadgroup) they are one group, run one after another on one worker,
#: rather than all at the start on every worker, starving the real-time tests beside them.
CPU_BOUND_MODULES = ("test_bench_capture", "test_bench_offline", "test_bench_speak", "test_bench_wake", "test_soak")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        module = getattr(item, "module", None)
        if module is not None and module.__name__ in CPU_BOUND_MODULES:
            item.add_marker(pytest.mark.xdist_group("cpu-bound-benches"))


def _fake_dist(root: Path, name: str, version: str, module_source: str, requires: Iterable[str] = ()) -> Path:
    """Write an installed distribution ``name`` into ``root``: a dist-info and one module.

    Its ``magoo`` entry point is named like the distribution and points at the module
    (``magoo-x`` → ``magoo_x``), as the naming convention says.
    """
    module = name.replace("-", "_")
    info = root / f"{module}-{version}.dist-info"
    info.mkdir(parents=True)
    requirements = "".join(f"Requires-Dist: {r}\n" for r in requires)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n{requirements}")
    (info / "entry_points.txt").write_text(f"[magoo]\n{name} = {module}\n")
    (root / f"{module}.py").write_text(textwrap.dedent(module_source))
    return root


def clean_env(**extra: str) -> dict[str, str]:
    """The current environment without anything that changes magoo's or Python's behaviour."""
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("MAGOO_", "PYTHON")) and k not in ("COLUMNS", "LINES")
    }
    env.update(extra)
    return env


@pytest.fixture
def fake_dist():
    """``fake_dist(root, name, version, module_source, requires=())``: install a fake plugin in ``root``."""
    return _fake_dist


@pytest.fixture
def magoo(tmp_path):
    """Run the installed ``magoo`` command (cwd: the test's tmp_path unless given)."""

    def run(*args: object, env: dict[str, str] | None = None, cwd: Path | None = None, timeout: float = 60):
        return subprocess.run(
            [str(MAGOO), *map(str, args)],
            cwd=cwd or tmp_path,
            env=clean_env(**(env or {})),
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    return run


@pytest.fixture
def plugin_path(monkeypatch):
    """``add(folder)`` puts fake distributions on sys.path for this test; their modules are forgotten after."""
    folders: list[str] = []

    def add(folder: Path) -> None:
        folders.append(str(folder))
        monkeypatch.syspath_prepend(str(folder))

    yield add
    for name, module in list(sys.modules.items()):
        if any(str(getattr(module, "__file__", None) or "").startswith(f) for f in folders):
            del sys.modules[name]


@pytest.fixture
def magoo_process(tmp_path):
    """Start ``magoo`` without waiting (stderr piped, text; stdout discarded unless ``stdout`` says
    otherwise); killed at teardown if still running."""
    started: list[subprocess.Popen] = []

    def start(
        *args: object, env: dict[str, str] | None = None, cwd: Path | None = None, stdout: int = subprocess.DEVNULL
    ) -> subprocess.Popen:
        proc = subprocess.Popen(
            [str(MAGOO), *map(str, args)],
            cwd=cwd or tmp_path,
            env=clean_env(**(env or {})),
            stdout=stdout,
            stderr=subprocess.PIPE,
            text=True,
        )
        started.append(proc)
        return proc

    yield start
    for proc in started:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=30)
        proc.stderr.close()
        if proc.stdout is not None:
            proc.stdout.close()
