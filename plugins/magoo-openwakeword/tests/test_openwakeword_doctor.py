"""``magoo doctor``'s rows for openWakeWord, on real model files: found, or missing and named."""

from __future__ import annotations

import shutil
from pathlib import Path

import pyopen_wakeword

from magoo_core.doctor import Result
from magoo_openwakeword import OpenWakeWordDetector

MODELS = Path(pyopen_wakeword.__file__).parent / "models"


def rows_of(models: list) -> list:
    return OpenWakeWordDetector.doctor(OpenWakeWordDetector.Config(models=models), "[wake]")


def test_a_pretrained_name_and_a_model_file_resolve_with_the_feature_models(tmp_path):
    own = tmp_path / "hey_me.tflite"
    shutil.copy(MODELS / "hey_jarvis.tflite", own)
    (row,) = rows_of(["hey_jarvis", {"path": str(own)}])
    assert (row.check, row.result) == ("[wake] openwakeword", Result.OK)
    assert f"hey_jarvis ({MODELS / 'hey_jarvis.tflite'})" in row.found and f"hey_me ({own})" in row.found
    assert row.found.endswith("with melspectrogram.tflite and embedding_model.tflite")


def test_a_missing_model_file_is_a_fail_row_naming_it(tmp_path):
    missing = tmp_path / "hey_nobody.tflite"
    (row,) = rows_of(["hey_jarvis", {"path": str(missing)}])
    assert (row.check, row.result) == ("[wake] openwakeword hey_nobody", Result.FAIL)
    assert f"no model file at {missing}" in row.found
    assert row.fix == "fix `path` in [wake] models"


def test_a_model_file_without_feature_models_beside_it_fails_on_those(tmp_path):
    own = tmp_path / "hey_me.onnx"  # no .onnx feature models anywhere here, nor in pyopen-wakeword
    own.write_bytes(b"not checked: only the files are")
    rows = rows_of([{"path": str(own)}])
    assert [(r.check, r.result) for r in rows] == [("[wake] openwakeword features", Result.FAIL)]
    assert rows[0].fix == "set melspectrogram_model and embedding_model in [wake]"
