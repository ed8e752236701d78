"""pytest fixtures for magoo plugins (loaded automatically through the ``pytest11`` entry point).

* ``magoo_plugins(*plugins)`` — a plugin manager with the built-ins plus yours, no entry points.
* ``magoo_run(overrides, plugins=[...], turns=1)`` — run the engine on the test profile, returns a
  :class:`~magoo_core.testing.RunRecord`; in an ``async def`` test, ``await magoo_run(...)``.
* ``magoo_tone(seconds, frequency=440, sample_rate=16000)`` — a tone chunk.
* ``virtual_audio`` (session) — a :class:`~magoo_core.testing.virtual_audio.VirtualAudio`: a real
  headless PulseAudio server whose default source ``virtmic`` plays what ``play()`` feeds it, with
  ``os.environ`` pointing at it (so PortAudio opened in the test reaches it). Skipped, with the
  reason and the fix, when the PulseAudio tools are missing; with ``MAGOO_REQUIRE_AUDIO=1`` (CI)
  that is a failure instead. Tests using it must leave the device graph as they found it.
* ``fresh_virtual_audio`` — the same instance after ``reset()`` (a clean device graph, about 0.3 s),
  for fault tests that stall, unplug or kill; reset again after the test if it changed the graph.

``async def`` tests run with no configuration in the plugin author's project: see
:mod:`magoo_core.testing.async_tests`.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
from collections.abc import Callable, Generator, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from .async_tests import pytest_pycollect_makeitem, pytest_pyfunc_call  # noqa: F401 (hooks of this plugin)

if TYPE_CHECKING:
    from .virtual_audio import VirtualAudio


def pytest_configure(config: pytest.Config) -> None:
    # DeviceCaptureContract marks its tests with pytest-xdist's group, known with or without xdist
    config.addinivalue_line("markers", "xdist_group(name): run these tests on one pytest-xdist worker, in order")


@pytest.fixture
def magoo_plugins() -> Callable[..., Any]:
    from . import build_plugins

    return build_plugins


class _PendingRun:
    """``magoo_run(...)`` called in an async test: the run starts when the test awaits it."""

    def __init__(self, overrides: dict, kwargs: dict[str, Any]) -> None:
        self._overrides, self._kwargs = overrides, kwargs

    def __await__(self) -> Generator[Any, None, Any]:
        from . import run_profile

        return run_profile(self._overrides, **self._kwargs).__await__()

    def __getattr__(self, name: str) -> Any:
        raise AttributeError(
            f"magoo_run(...) in an async test must be awaited: run = await magoo_run(...); then run.{name}"
        )


@pytest.fixture
def magoo_run(tmp_path) -> Callable[..., Any]:
    """Called from a plain test, runs the engine (blocking) and returns the RunRecord; called while an
    event loop runs (an ``async def`` test), returns an awaitable that runs it on that loop."""
    from . import run_turn

    def run(overrides: dict, **kwargs: Any):
        kwargs.setdefault("base_dir", tmp_path)
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return run_turn(overrides, **kwargs)
        return _PendingRun(overrides, kwargs)

    return run


@pytest.fixture
def magoo_tone() -> Callable[..., Any]:
    from ..audio import tone

    def make(seconds: float, frequency: float = 440.0, sample_rate: int = 16000, amplitude: float = 0.3):
        return tone(frequency, seconds, sample_rate, amplitude)

    return make


def require_audio(reason: str | None) -> None:
    """Skip the calling test when ``reason`` says real audio cannot run here; with
    ``MAGOO_REQUIRE_AUDIO=1`` (CI) fail it instead, so a missing install step cannot hide."""
    if reason is None:
        return
    if os.environ.get("MAGOO_REQUIRE_AUDIO") == "1":
        pytest.fail(f"MAGOO_REQUIRE_AUDIO=1 but {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def virtual_audio(tmp_path_factory) -> Iterator[VirtualAudio]:
    from .virtual_audio import VirtualAudio

    require_audio(VirtualAudio.unavailable_reason())
    # One server per process, so each pytest-xdist worker has its own in its own basetemp.
    folder, short = tmp_path_factory.mktemp("virtual-audio"), None
    if not VirtualAudio.fits(folder):  # a deep --basetemp: unix socket paths are limited
        folder = short = Path(tempfile.mkdtemp(prefix="magoo-audio-", dir="/tmp"))
    audio = VirtualAudio.start(folder)
    try:
        yield audio
    finally:
        audio.stop()
        if short is not None:
            shutil.rmtree(short, ignore_errors=True)


@pytest.fixture
def fresh_virtual_audio(virtual_audio: VirtualAudio) -> Iterator[VirtualAudio]:
    virtual_audio.reset()
    yield virtual_audio
    if virtual_audio.graph_changed:
        virtual_audio.reset()
