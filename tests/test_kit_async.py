"""``async def`` tests in a plugin author's own project: no pytest configuration, only magoo installed.

A tiny plugin project is written to tmp_path and its tests run with ``python -m pytest`` there, as
the author runs them: once with pytest-asyncio (which magoo's pytest plugin hands the tests to) and
once without it (``-p no:asyncio``: magoo's pytest plugin runs them itself).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

PYPROJECT = """\
[project]
name = "magoo-parrot"
version = "0.1.0"
dependencies = ["magoo"]

[project.entry-points.magoo]
magoo-parrot = "magoo_parrot"
"""
MODULE = '''\
from typing import ClassVar

from magoo_core import Backend, BackendConfig, Reply, hookimpl


class ParrotResponder(Backend):
    """Says back what it heard."""

    name: ClassVar[str] = "parrot"

    class Config(BackendConfig):
        pass

    async def respond(self, transcript):
        return Reply(transcript.text)


@hookimpl
def magoo_register_responders(register):
    register(ParrotResponder)
'''
TESTS = '''\
import asyncio

import magoo_parrot
import pytest


async def test_a_whole_turn_in_an_async_test(magoo_run):
    run = await magoo_run({"responder": {"backend": "parrot"}}, plugins=[magoo_parrot])
    assert run.replies == ["what time is it"]


async def test_a_failing_async_test_fails():
    await asyncio.sleep(0)
    assert False, "this async test ran and failed"


async def test_forgetting_the_await_says_so(magoo_run):
    run = magoo_run({"responder": {"backend": "parrot"}}, plugins=[magoo_parrot])
    with pytest.raises(AttributeError, match="must be awaited"):
        run.replies


def test_a_plain_test_still_gets_the_record(magoo_run):
    assert magoo_run({"responder": {"backend": "parrot"}}, plugins=[magoo_parrot]).replies == ["what time is it"]


class TestInAClass:
    async def test_runs_on_a_loop(self, magoo_tone):
        assert asyncio.get_running_loop().is_running()
        assert magoo_tone(0.1).duration == pytest.approx(0.1)
'''
PASSING = [
    "test_a_whole_turn_in_an_async_test",
    "test_forgetting_the_await_says_so",
    "test_a_plain_test_still_gets_the_record",
    "TestInAClass::test_runs_on_a_loop",
]


@pytest.fixture
def plugin_project(tmp_path) -> Path:
    (tmp_path / "pyproject.toml").write_text(PYPROJECT)
    (tmp_path / "magoo_parrot.py").write_text(MODULE)
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "test_parrot.py").write_text(TESTS)
    return tmp_path


@pytest.mark.parametrize("pytest_asyncio", ["with pytest-asyncio", "without pytest-asyncio"])
def test_async_tests_run_in_a_plugin_project_without_pytest_config(plugin_project, pytest_asyncio):
    options = [] if pytest_asyncio == "with pytest-asyncio" else ["-p", "no:asyncio"]
    env = {name: value for name, value in os.environ.items() if not name.startswith("PYTEST_")}
    env["PYTHONPATH"] = str(plugin_project)  # the plugin module, as an editable install would
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-rA", *options],
        cwd=plugin_project, env=env, capture_output=True, text=True, timeout=120,
    )
    out = result.stdout
    assert f"rootdir: {plugin_project}" in out, out
    if pytest_asyncio == "with pytest-asyncio":
        assert "asyncio: mode=Mode.STRICT" in out, "pytest-asyncio as an unconfigured project has it"
    else:
        assert "asyncio-" not in out.split("plugins:")[1].splitlines()[0], out
    for test in PASSING:
        assert f"PASSED tests/test_parrot.py::{test}" in out, out
    assert "FAILED tests/test_parrot.py::test_a_failing_async_test_fails - AssertionError" in out, out
    assert "1 failed, 4 passed" in out, out
    assert result.returncode == 1
