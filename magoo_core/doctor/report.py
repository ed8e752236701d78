"""The report: the table or JSON, the exit code, and the masking every row goes through."""

from __future__ import annotations

import json
import re
from dataclasses import asdict, replace

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from ..profile import MASK
from .rows import Check, Result

CHECK_WIDTH = 24  # the check column, at most: a host and port fit, found and fix get the rest


def exit_code(checks: list[Check]) -> int:
    """0 when nothing FAILs, else 1."""
    return 1 if any(c.result is Result.FAIL for c in checks) else 0


def print_report(checks: list[Check], console: Console, *, as_json: bool = False) -> int:
    """Print the table (or JSON) and return the exit code."""
    code = exit_code(checks)
    counts = {result: sum(c.result is result for c in checks) for result in Result}
    if as_json:
        worst = Result.FAIL if code else (Result.WARN if counts[Result.WARN] else Result.OK)
        console.print_json(json.dumps({"result": worst.value, "checks": [asdict(c) for c in checks]}))
        return code
    table = Table(show_lines=True, expand=True)
    table.add_column("check", width=min(CHECK_WIDTH, max((len(c.check) for c in checks), default=5)), overflow="fold")
    table.add_column("result", no_wrap=True)
    table.add_column("found", ratio=4, overflow="fold")
    table.add_column("fix", ratio=4, overflow="fold")
    style = {Result.OK: "green", Result.WARN: "yellow", Result.FAIL: "bold red"}
    for row in checks:
        result = f"[{style[row.result]}]{row.result.value}[/]"
        table.add_row(escape(row.check), result, escape(row.found), escape(row.fix))
    console.print(table)
    console.print(", ".join(f"{counts[r]} {r.value}" for r in reversed(Result)), highlight=False)
    return code


def masked(row: Check, secrets: frozenset[str]) -> Check:
    """``row`` with every secret value replaced by the mask, wherever it stands as a word."""

    def mask(text: str) -> str:
        for secret in secrets:
            text = re.sub(rf"(?<!\w){re.escape(secret)}(?!\w)", MASK, text)
        return text

    return replace(row, check=mask(row.check), found=mask(row.found), fix=mask(row.fix)) if secrets else row
