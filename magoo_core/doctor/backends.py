"""The checks each backend brings for itself: its class's ``doctor`` classmethod, for every configured
backend of the profile, backups included.

The contract (docs/writing-plugins.md, "Doctor checks")::

    @classmethod
    def doctor(cls, config: Config, section: str) -> list[Check]: ...

It is called in a worker thread under :data:`BACKEND_CHECK_TIMEOUT`; what it raises, or a run past
the limit, becomes one FAIL row naming the distribution to report to. A backend whose section has
a ``backup`` cannot stop the assistant: its FAIL rows become WARN, saying the backup takes over.
"""

from __future__ import annotations

import asyncio
from dataclasses import replace

from ..profile import BackendSpec
from .context import Context
from .rows import Check, Result, fail
from .running import in_daemon_thread

#: one backend's own checks (finding files, importing its library, starting a binary once)
BACKEND_CHECK_TIMEOUT = 8.0


async def check_backends(context: Context) -> list[Check]:
    """The rows of every backend of the profile that has a ``doctor`` classmethod, in profile order."""
    return await backend_rows(context)


async def backend_rows(context: Context) -> list[Check]:
    """The backends' rows, computed once per run: other checks look at them to say nothing twice."""
    task = context.shared.get("backends")
    if task is None:
        task = context.shared["backends"] = asyncio.ensure_future(_all_rows(context))
    return await asyncio.shield(task)  # one waiter running out of time does not cancel it for the other


async def _all_rows(context: Context) -> list[Check]:
    specs = [spec for spec in context.specs() if callable(getattr(spec.info.cls, "doctor", None))]
    results = await asyncio.gather(*(_rows_of(spec) for spec in specs))
    return [row for rows in results for row in rows]


async def _rows_of(spec: BackendSpec) -> list[Check]:
    info = spec.info
    name = f"{spec.section} {spec.backend}"
    report = f"report it to {info.distribution}" + (f" {info.version}" if info.version else "")
    try:
        rows = await in_daemon_thread(lambda: info.cls.doctor(spec.config, spec.section), BACKEND_CHECK_TIMEOUT)
    except TimeoutError:
        found = f"its doctor checks did not finish within {BACKEND_CHECK_TIMEOUT:g} s"
        return [fail(name, found, f"run it again; if it hangs again, {report}")]
    except Exception as exc:
        return [fail(name, f"its doctor checks failed: {type(exc).__name__}: {exc}", f"a bug: {report}")]
    rows = list(rows or [])
    if not all(isinstance(row, Check) for row in rows):
        found = f"its doctor checks returned {[type(row).__name__ for row in rows]}, not Check rows"
        return [fail(name, found, f"a bug: {report}")]
    if spec.backup is None:
        return rows
    takes_over = f"; its backup {spec.backup.backend} takes over"
    return [replace(row, result=Result.WARN, found=row.found + takes_over) if row.result is Result.FAIL else row
            for row in rows]
