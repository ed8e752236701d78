"""pytest fixtures for magoo plugins (loaded automatically through the ``pytest11`` entry point).

* ``magoo_plugins(*plugins)`` — a plugin manager with the built-ins plus yours, no entry points.
* ``magoo_run(overrides, plugins=[...], turns=1)`` — run the engine on the test profile, returns a
  :class:`~magoo_core.testing.RunRecord`.
* ``magoo_tone(seconds, frequency=440, sample_rate=16000)`` — a tone chunk.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest


@pytest.fixture
def magoo_plugins() -> Callable[..., Any]:
    from . import build_plugins

    return build_plugins


@pytest.fixture
def magoo_run(tmp_path) -> Callable[..., Any]:
    from . import run_turn

    def run(overrides: dict, **kwargs: Any):
        kwargs.setdefault("base_dir", tmp_path)
        return run_turn(overrides, **kwargs)

    return run


@pytest.fixture
def magoo_tone() -> Callable[..., Any]:
    from ..audio import tone

    def make(seconds: float, frequency: float = 440.0, sample_rate: int = 16000, amplitude: float = 0.3):
        return tone(frequency, seconds, sample_rate, amplitude)

    return make
