"""The ``[engine]`` stages of full duplex a profile turns on, and the libraries each needs.

A library is found without importing it (``importlib.util.find_spec``), so the doctor stays quick
and a broken native library cannot take it down; the rows only appear for what the profile uses.
"""

from __future__ import annotations

import importlib.util

from .context import Context
from .rows import Check, fail, ok

#: per ``[engine]`` table: the module it imports, what it is called, and how to install it
NEEDS = {
    "noise": ("webrtc_noise_gain", "webrtc-noise-gain", "uv pip install webrtc-noise-gain (or magoo's extra duplex)"),
    "stop_word": ("pocketsphinx", "pocketsphinx", "uv pip install magoo-pocketsphinx"),
    "ducking": ("pulsectl", "pulsectl", "uv pip install pulsectl (or magoo's extra duplex)"),
}


async def check_duplex(context: Context) -> list[Check]:
    """One row per ``[engine.noise]``, ``[engine.stop_word]``, ``[engine.ducking]`` that is on: its
    library is installed, or what to install (the run would go on without the stage)."""
    engine = context.profile.engine if context.profile is not None else None
    rows = []
    for table, (module, name, install) in NEEDS.items():
        settings = getattr(engine, table, None) if engine is not None else None
        if settings is None or not settings.enabled:
            continue
        if importlib.util.find_spec(module) is None:
            rows.append(fail(f"[engine.{table}]", f"on, but {name} is not installed: magoo runs without it", install))
        else:
            rows.append(ok(f"[engine.{table}]", f"on ({name} installed)"))
    return rows
