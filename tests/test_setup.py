"""scripts/setup.sh run the way a user runs it: on a fresh copy of the repository in ``~/magoo``, with
a home folder of its own, a login shell's PATH and no uv on it.

Each test gets its own home, copy and ``.venv`` (about 5 s: uv links the packages from its cache,
which is shared and which uv locks). The copy's set-up must not call apt-get or sudo: everything it
would install is installed already (the set-up that started this test run saw to it).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
PROJECT = ["pyproject.toml", "uv.lock", "README.md", "scripts", "magoo_core", "plugins", "examples"]
# A login shell's PATH on Debian before ~/.profile runs, and the lines of Debian's and Raspberry Pi
# OS's default ~/.profile that add ~/.local/bin when it exists.
LOGIN_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
DEFAULT_PROFILE = 'if [ -d "$HOME/.local/bin" ] ; then\n    PATH="$HOME/.local/bin:$PATH"\nfi\n'

PLUGIN_PYPROJECT = """\
[project]
name = "magoo-parrot"
version = "0.1.0"
requires-python = ">=3.11"
dependencies = ["magoo"]

[project.entry-points.magoo]
magoo-parrot = "magoo_parrot"

[build-system]
requires = ["hatchling>=1.25"]
build-backend = "hatchling.build"
"""
PLUGIN_MODULE = '''\
"""magoo-parrot: a plugin from outside the repository."""

from typing import ClassVar

from magoo_core import Backend, BackendConfig, Reply, Transcript, hookimpl


class ParrotResponder(Backend):
    """Says back what it heard."""

    name: ClassVar[str] = "parrot"

    class Config(BackendConfig):
        pass

    async def respond(self, transcript: Transcript) -> Reply | None:
        return Reply(transcript.text)


@hookimpl
def magoo_register_responders(register):
    register(ParrotResponder)
'''
PARROT_ROW = re.compile(r"magoo-parrot\s+│\s+magoo-parrot 0\.1\.0\s+│\s+responder:parrot\s+│\s+ok")


def real_uv() -> Path:
    """The uv the test run's own set-up used: on PATH, or where set-up installs it."""
    found = shutil.which("uv")
    if found:
        return Path(found)
    private = Path(os.environ.get("XDG_DATA_HOME", Path.home() / ".local/share")) / "magoo/uv/bin/uv"
    if not private.exists():
        pytest.fail("uv is neither on PATH nor in ~/.local/share/magoo/uv: run ./scripts/setup.sh first")
    return private


@dataclass
class Machine:
    """A user's account: ``home`` with the repository in ``home/magoo`` and ``home/magoo-parrot``."""

    home: Path
    env: dict[str, str]
    shims: Path

    @property
    def repo(self) -> Path:
        return self.home / "magoo"

    def shell(self, script: str, *, login: bool = False, timeout: float = 300) -> subprocess.CompletedProcess:
        """Run ``script`` with bash -e in the home folder, as the user types it."""
        command = ["bash", "-e", *(["-l"] if login else []), "-c", textwrap.dedent(script)]
        return subprocess.run(
            command, cwd=self.home, env=self.env, capture_output=True, text=True, timeout=timeout
        )

    def privileged_calls(self) -> str:
        calls = self.shims / "calls"
        return calls.read_text() if calls.exists() else ""


@pytest.fixture(scope="session")
def uv_cache() -> str:
    uv = real_uv()
    return subprocess.run([uv, "cache", "dir"], capture_output=True, text=True, check=True).stdout.strip()


@pytest.fixture
def machine(tmp_path, uv_cache) -> Machine:
    home = tmp_path / "home"
    shutil.copytree(
        REPO, home / "magoo", ignore=_not_project, ignore_dangling_symlinks=True, symlinks=True
    )
    (home / ".profile").write_text(DEFAULT_PROFILE)
    # uv where set-up puts it when it is not on PATH, so no test downloads it
    private_uv = home / ".local/share/magoo/uv/bin/uv"
    private_uv.parent.mkdir(parents=True)
    private_uv.symlink_to(real_uv().resolve())
    plugin = home / "magoo-parrot"
    plugin.mkdir()
    (plugin / "pyproject.toml").write_text(PLUGIN_PYPROJECT)
    (plugin / "magoo_parrot.py").write_text(PLUGIN_MODULE)

    shims = tmp_path / "shims"
    shims.mkdir()
    for name in ("apt-get", "sudo"):
        (shims / name).write_text(f'#!/bin/sh\necho "{name} $*" >> "{shims}/calls"\nexit 1\n')
        (shims / name).chmod(0o755)
    # The Python that the test run's .venv was made from comes first, so uv resolves for the same
    # interpreter as the test run's set-up and finds every package in its cache.
    (shims / "python3").symlink_to(sys._base_executable)

    keep = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("UV_", "XDG_", "VIRTUAL_ENV", "PYTHON", "PYTEST_", "MAGOO_", "COLUMNS"))
    }
    env = keep | {
        "HOME": str(home),
        "PATH": f"{shims}:{LOGIN_PATH}",
        "UV_CACHE_DIR": uv_cache,
        "COLUMNS": "200",  # magoo plugins' table on one line per plugin
    }
    return Machine(home=home, env=env, shims=shims)


def _not_project(folder: str, names: list[str]) -> set[str]:
    if Path(folder) == REPO:
        return {name for name in names if name not in PROJECT}
    return {n for n in names if n in {"__pycache__", ".pytest_cache", ".venv", "out"} or n.endswith(".egg-info")}


def test_setup_keeps_a_plugin_the_user_installed_and_reinstalls_what_the_lock_pins(machine):
    first = machine.shell("cd ~/magoo && ./scripts/setup.sh")
    assert first.returncode == 0, first.stderr
    assert machine.privileged_calls() == "", "nothing was missing, so set-up needs no root"
    bin_dir = machine.home / ".local/bin"
    assert (bin_dir / "magoo").resolve() == (machine.repo / ".venv/bin/magoo").resolve()
    assert (bin_dir / "uv").resolve() == real_uv().resolve(), "set-up installed uv, so it links it too"
    # ~/.local/bin is not on this shell's PATH yet: set-up says how to get magoo now
    assert f"Linked into {bin_dir}: magoo uv." in first.stderr
    assert "~/.profile puts it on PATH from your next login. For this shell, run:" in first.stderr
    assert 'export PATH="$HOME/.local/bin:$PATH"' in first.stderr

    installed = machine.shell(
        "cd ~/magoo && ~/.local/bin/uv pip install -e ~/magoo-parrot && ~/.local/bin/uv pip uninstall rich"
    )
    assert installed.returncode == 0, installed.stderr
    broken = machine.shell("~/.local/bin/magoo plugins")
    assert broken.returncode != 0 and "rich" in broken.stderr, "magoo needs rich, which was just removed"

    again = machine.shell("cd ~/magoo && ./scripts/setup.sh && ~/.local/bin/magoo plugins")
    assert again.returncode == 0, again.stderr
    assert PARROT_ROW.search(again.stdout), again.stdout
    assert machine.privileged_calls() == ""

    # what a service whose profile uses the plugin runs after the update (it exited 2 before)
    profile = (machine.repo / "examples/test.toml").read_text()
    profile = profile.replace('backend = "echo"', 'backend = "parrot"').replace('template = "You asked: {text}"', "")
    (machine.home / "parrot.toml").write_text(profile)
    service = machine.shell("~/.local/bin/magoo run --profile ~/parrot.toml")
    assert service.returncode == 0, service.stdout + service.stderr
    assert 'turn 1: reply "what time is it"' in service.stdout, service.stdout


# The commands the docs give, exactly as written there (docs/quickstart.md "Where the magoo command
# is" and "Install a plugin of your own", docs/operations.md "Updating"), each in the shell the docs
# mean: the one the set-up ran in, or a later login.
FIRST_SETUP = """
cd ~/magoo
./scripts/setup.sh
"""
THIS_SHELL = """
cd ~/magoo
export PATH="$HOME/.local/bin:$PATH"
magoo --help
uv run magoo --help
"""
ACTIVATED = """
cd ~/magoo
source .venv/bin/activate
magoo --help
"""
BY_PATH = """
cd ~/magoo
.venv/bin/magoo --help
"""
PLUGIN_INSTALL = """
cd ~/magoo
uv pip install --python .venv/bin/python -e ~/magoo-parrot
magoo plugins
"""
# less `git pull` and the restart: the copy is no clone, and no systemd runs here
UPDATE = """
cd ~/magoo
./scripts/setup.sh
magoo plugins
uv run magoo plugins
"""


def test_the_documented_commands_work_as_written_on_a_fresh_clone(machine):
    setup = machine.shell(FIRST_SETUP)
    assert setup.returncode == 0, setup.stdout + setup.stderr
    assert 'export PATH="$HOME/.local/bin:$PATH"' in setup.stderr, "set-up prints the line for this shell"
    for script in (THIS_SHELL, ACTIVATED, BY_PATH):
        run = machine.shell(script)
        assert run.returncode == 0, script + run.stdout + run.stderr
        assert "Usage: magoo" in run.stdout, script + run.stdout

    # in a shell that is no login and did not export, neither uv nor magoo is on PATH: a later
    # login finds them only through ~/.profile
    plugin = machine.shell(PLUGIN_INSTALL, login=False)
    assert plugin.returncode != 0 and "uv: command not found" in plugin.stderr

    plugin = machine.shell(PLUGIN_INSTALL, login=True)
    assert plugin.returncode == 0, plugin.stdout + plugin.stderr
    assert PARROT_ROW.search(plugin.stdout), plugin.stdout

    update = machine.shell(UPDATE, login=True)
    assert update.returncode == 0, update.stdout + update.stderr
    assert len(PARROT_ROW.findall(update.stdout)) == 2, update.stdout
    assert "Run magoo as `magoo`" in update.stderr, "in a login shell ~/.local/bin is on PATH"


def test_setup_on_a_32_bit_system_stops_at_once_and_says_what_to_install_instead(machine):
    """uv.lock pins LiteRT and onnxruntime, which have no 32-bit ARM build: without this check uv
    stopped half-way through the install with a resolver error."""
    dpkg = machine.shims / "dpkg"
    dpkg.write_text('#!/bin/sh\n[ "$1" = "--print-architecture" ] && echo armhf && exit 0\nexit 1\n')
    dpkg.chmod(0o755)

    done = machine.shell("./magoo/scripts/setup.sh")

    assert done.returncode != 0
    assert "this is a 32-bit system (armhf)" in done.stderr and "64-bit Raspberry Pi OS" in done.stderr
    assert not (machine.repo / ".venv").exists()  # nothing was installed
    assert machine.privileged_calls() == ""
