"""``magoo doctor``'s rows for microWakeWord: built-in names, and model files there or not."""

from __future__ import annotations

import shutil
from pathlib import Path

import pymicro_wakeword

from magoo_core.doctor import Result
from magoo_microwakeword import MicroWakeWordDetector

BUILTIN = Path(pymicro_wakeword.__file__).parent / "models"


def rows_of(models: list[str]) -> list:
    return MicroWakeWordDetector.doctor(MicroWakeWordDetector.Config.model_validate({"models": models}), "[wake]")


def test_built_in_names_and_a_model_file_that_exists_are_ok(tmp_path):
    own = tmp_path / "my_nabu.json"
    shutil.copy(BUILTIN / "okay_nabu.json", own)
    (row,) = rows_of(["hey_jarvis", str(own)])
    assert (row.check, row.result) == ("[wake] microwakeword", Result.OK)
    assert row.found == f"hey_jarvis, {own}"


def test_a_missing_model_file_is_a_fail_row_naming_it(tmp_path):
    (row,) = rows_of(["hey_jarvis", str(tmp_path / "nope.json")])
    assert (row.check, row.result) == ("[wake] microwakeword", Result.FAIL)
    assert row.found == f"no model file at {tmp_path / 'nope.json'}"
    assert row.fix == "fix models in [wake]"
