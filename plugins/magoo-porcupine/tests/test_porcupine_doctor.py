"""``magoo doctor``'s rows for Porcupine, on the real keyword files of pvporcupine 1.9.5."""

from __future__ import annotations

from pathlib import Path

import pvporcupine

from magoo_core.doctor import Result
from magoo_porcupine import PorcupineDetector

KEYWORD_FILES = Path(pvporcupine.__file__).parent / "resources" / "keyword_files" / "linux"


def rows_of(**config) -> list:
    return PorcupineDetector.doctor(PorcupineDetector.Config(**config), "[wake]")


def test_built_in_keywords_and_keyword_files_that_exist_are_ok():
    (row,) = rows_of(keywords=["jarvis"], keyword_paths=[KEYWORD_FILES / "alexa_linux.ppn"])
    assert (row.check, row.result) == ("[wake] porcupine", Result.OK)
    assert row.found == "keywords jarvis, alexa_linux.ppn; 1 file(s) found"


def test_a_missing_keyword_file_is_a_fail_row_naming_it_and_its_setting(tmp_path):
    missing = tmp_path / "hey_nobody.ppn"
    (row,) = rows_of(keyword_paths=[KEYWORD_FILES / "alexa_linux.ppn", missing], model_path=tmp_path / "params.pv")
    assert (row.check, row.result) == ("[wake] porcupine", Result.FAIL)
    assert row.found == f"missing: keyword_paths {missing}, model_path {tmp_path / 'params.pv'}"
    assert row.fix == "fix keyword_paths, model_path in [wake]"
