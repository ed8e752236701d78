"""``magoo doctor`` rows for Porcupine: the files the profile names, and the module."""

from __future__ import annotations

import importlib.util
from typing import TYPE_CHECKING

from magoo_core.doctor import fail, ok

if TYPE_CHECKING:
    from magoo_core.doctor import Check

    from . import PorcupineDetector


def file_rows(config: PorcupineDetector.Config, section: str) -> list[Check]:
    """One row: FAIL naming each missing file and its setting (or the missing module), else OK with the keywords."""
    name = f"{section} porcupine"
    files = [("keyword_paths", p) for p in config.keyword_paths]
    files += [(key, path) for key in ("model_path", "library_path") if (path := getattr(config, key)) is not None]
    missing = [(key, path) for key, path in files if not path.is_file()]
    if missing:
        found = "missing: " + ", ".join(f"{key} {path}" for key, path in missing)
        return [fail(name, found, f"fix {', '.join(dict.fromkeys(key for key, _ in missing))} in {section}")]
    if importlib.util.find_spec("pvporcupine") is None:
        return [fail(name, "the Python module pvporcupine is not installed", "uv pip install magoo-porcupine")]
    keywords = [*config.keywords, *(p.name for p in config.keyword_paths)]
    return [ok(name, f"keywords {', '.join(keywords)}" + (f"; {len(files)} file(s) found" if files else ""))]
