"""``magoo doctor`` rows for openWakeWord: each model resolved as the start resolves it."""

from __future__ import annotations

from typing import TYPE_CHECKING

from magoo_core.doctor import fail, ok
from magoo_core.errors import BackendError

if TYPE_CHECKING:
    from magoo_core.doctor import Check

    from . import OpenWakeWordDetector


def model_rows(detector: OpenWakeWordDetector, section: str) -> list[Check]:
    """Each model (a name through pyopen-wakeword, or a file) and the two feature models.

    One OK row when all is found; otherwise one FAIL row per model that is not.
    """
    from . import FEATURE_MODELS

    config = detector.config
    name = f"{section} openwakeword"
    rows, files = [], []
    for model in config.models:
        try:
            files.append(detector._model_file(model))
        except BackendError as exc:
            if model.path is not None:
                fix = f"fix `path` in {section} models"
            else:
                fix = "uv pip install --reinstall 'pyopen-wakeword>=1.1,<1.2'"
            rows.append(fail(f"{name} {model.key}", exc.message, fix))
    if files:
        framework = files[0].suffix.lstrip(".")
        try:
            features = [detector._feature_file(kind, framework, files).name for kind in FEATURE_MODELS]
        except BackendError as exc:
            fix = f"set melspectrogram_model and embedding_model in {section}"
            return [*rows, fail(f"{name} features", exc.message, fix)]
        shown = ", ".join(f"{model.key} ({path})" for model, path in zip(config.models, files, strict=False))
        if not rows:
            rows.append(ok(name, f"{shown}; with {' and '.join(features)}"))
    return rows
