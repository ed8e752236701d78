"""The README documents the nested ``speak``, ``wake`` and ``gestures`` tables key by key, with the code's defaults.

The repository's tests/test_docs.py checks the top-level table of every plugin backend; this
checks the two tables under it, the same way.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from magoo_servo import Gestures, SpeakMotion, WakeNod

README = Path(__file__).resolve().parents[1] / "README.md"


def first_table_under(heading: str) -> list[dict[str, str]]:
    lines = README.read_text(encoding="utf-8").splitlines()
    start = lines.index(heading) + 1
    rows: list[dict[str, str]] = []
    header: list[str] | None = None
    for line in lines[start:]:
        if line.startswith("#"):
            break
        if not line.startswith("|"):
            if header:
                break
            continue
        cells = [c.strip() for c in re.split(r"(?<!\\)\|", line.strip())[1:-1]]
        if header is None:
            header = [c.lower() for c in cells]
        elif not all(re.fullmatch(r":?-+:?", c) for c in cells):
            rows.append(dict(zip(header, cells, strict=False)))
    return rows


def default_cell(field) -> str:
    value = field.get_default(call_default_factory=True)
    if value is None:
        return "unset"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if isinstance(value, str):
        return f"`{json.dumps(value)}`"
    return f"`{json.dumps(value) if isinstance(value, str) else value!r}`"


@pytest.mark.parametrize(("heading", "model"), [("#### `speak`", SpeakMotion), ("#### `wake`", WakeNod), ("#### `gestures`", Gestures)])
def test_each_nested_table_is_documented_with_its_defaults(heading, model):
    rows = {row["key"].strip("`"): row for row in first_table_under(heading)}
    assert set(rows) == set(model.model_fields)
    for key, field in model.model_fields.items():
        assert rows[key]["default"] == default_cell(field), key
        assert rows[key]["meaning"] == field.description, key
