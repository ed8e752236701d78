"""``async def`` tests that run without any pytest configuration (part of magoo's pytest plugin).

A plugin author's repository has no ``asyncio_mode = "auto"``, so pytest would fail (or
pytest-asyncio in its default strict mode would leave alone) every unmarked ``async def test_...``.
These two hooks make such a test run on a fresh asyncio event loop, whatever is installed:

* with pytest-asyncio active, an unmarked coroutine test gets ``pytest.mark.asyncio`` as it is
  collected, exactly as if it were decorated; pytest-asyncio then runs it (and its
  ``@pytest_asyncio.fixture`` fixtures), in whatever mode the project configured;
* without pytest-asyncio, the test runs here, under :func:`asyncio.run`. Its fixtures must be
  plain (synchronous) fixtures.

A test marked ``anyio`` or ``trio``, or using anyio's ``anyio_backend`` fixture, belongs to that
framework's plugin and is left alone.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Generator
from typing import Any

import pluggy
import pytest

_OTHER_FRAMEWORKS = ("anyio", "trio")


def _asyncio_test(item: object) -> bool:
    """A coroutine test that no other async framework's plugin runs."""
    return (
        isinstance(item, pytest.Function)
        and inspect.iscoroutinefunction(item.obj)
        and not any(item.get_closest_marker(name) for name in _OTHER_FRAMEWORKS)
        and "anyio_backend" not in item.fixturenames
    )


# trylast makes this wrapper run inside pytest-asyncio's, so the mark is there when pytest-asyncio
# looks at the collected item (which is when it decides to run the test).
@pytest.hookimpl(hookwrapper=True, trylast=True)
def pytest_pycollect_makeitem(
    collector: pytest.Collector, name: str, obj: object
) -> Generator[None, Any, None]:
    outcome: pluggy.Result = yield
    if outcome.excinfo or not inspect.iscoroutinefunction(obj) or not collector.config.pluginmanager.hasplugin("asyncio"):
        return
    result = outcome.get_result()
    for item in result if isinstance(result, list) else [result]:
        if _asyncio_test(item) and not item.get_closest_marker("asyncio"):
            item.add_marker(pytest.mark.asyncio)


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem: pytest.Function) -> bool | None:
    """Run a coroutine test under :func:`asyncio.run` when pytest-asyncio is absent (marked
    ``asyncio`` or not: with pytest-asyncio absent, nothing else would run it)."""
    if pyfuncitem.config.pluginmanager.hasplugin("asyncio") or not _asyncio_test(pyfuncitem):
        return None
    arguments = {name: pyfuncitem.funcargs[name] for name in pyfuncitem._fixtureinfo.argnames}
    asyncio.run(pyfuncitem.obj(**arguments))
    return True
