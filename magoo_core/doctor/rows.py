"""The rows of the report: what every check, the core's and a plugin's, returns.

A plugin's ``doctor`` classmethod imports these (``from magoo_core.doctor import Check, ok, warn, fail``).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


class Result(enum.StrEnum):
    OK = "OK"
    WARN = "WARN"
    FAIL = "FAIL"


@dataclass(frozen=True)
class Check:
    """One row of the report.

    :param check: what was checked, in a few words (``"sound server"``, ``"key OPENAI_API_KEY"``).
    :param result: OK, WARN (works, but not as well as it could) or FAIL (something will not work).
    :param found: what the check found, in one sentence or a short list.
    :param fix: for WARN and FAIL, what to do, one line, a command where there is one.
    """

    check: str
    result: Result
    found: str
    fix: str = ""


def ok(check: str, found: str) -> Check:
    return Check(check, Result.OK, found)


def warn(check: str, found: str, fix: str) -> Check:
    return Check(check, Result.WARN, found, fix)


def fail(check: str, found: str, fix: str) -> Check:
    return Check(check, Result.FAIL, found, fix)
