"""``magoo doctor`` rows of the full-duplex stages (magoo_core/doctor/duplex.py): one per stage the
profile turns on, failing with the install command when its library is missing."""

from __future__ import annotations

import importlib.util

from magoo_core import create_plugin_manager, doctor
from magoo_core.doctor import Result
from magoo_core.doctor.duplex import check_duplex

PROFILE = """\
[audio_source]
backend = "silence"

[stt]
backend = "scripted"

[engine.noise]
suppression = 2

[engine.stop_word]
enabled = false

[engine.ducking]
amount_db = 12
"""


def context(tmp_path):
    path = tmp_path / "duplex.toml"
    path.write_text(PROFILE)
    found = doctor.open_context(create_plugin_manager(entry_points=False, environ={}), path, environ={})
    assert found.problems is None
    return found


async def test_a_row_for_each_stage_that_is_on(tmp_path):
    rows = await check_duplex(context(tmp_path))
    assert [(row.check, row.result) for row in rows] == [("[engine.noise]", Result.OK), ("[engine.ducking]", Result.OK)]


async def test_a_missing_library_fails_with_what_to_install(tmp_path, monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "pulsectl" else real(name, *a))
    rows = {row.check: row for row in await check_duplex(context(tmp_path))}
    assert rows["[engine.ducking]"].result is Result.FAIL and "uv pip install pulsectl" in rows["[engine.ducking]"].fix
    assert rows["[engine.noise]"].result is Result.OK


async def test_no_rows_without_a_profile_or_stages(tmp_path):
    assert await check_duplex(doctor.open_context(create_plugin_manager(entry_points=False, environ={}), None, environ={})) == []
    assert check_duplex in doctor.CHECKS
