"""The event dispatcher: ``emit()`` calls every plugin's ``magoo_on_<event>`` hook, isolating each.

Hook timeouts, slow calls left in the background, and failures logged at most once a minute live
here; :class:`~magoo_core.plugins.Plugins` owns one dispatcher and forwards ``emit()`` to it.
Everything here runs on the event loop.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import sys
import time
from collections import deque
from collections.abc import Callable
from typing import Any

import pluggy

from .errors import BackendError
from .types import BackendFailure

log = logging.getLogger("magoo.plugins")

ERROR_REPEAT_WINDOW = 60.0
#: hook calls of one plugin left running in the background at most; beyond it the oldest is cancelled
MAX_SLOW_CALLS = 8

__all__ = ["ERROR_REPEAT_WINDOW", "MAX_SLOW_CALLS", "EventDispatcher"]


class EventDispatcher:
    """Calls the ``magoo_on_*`` hooks of a plugin manager. Use it on the event loop only.

    ``hook_timeout``: seconds ``emit()`` waits for async implementations; ``trace``: print every
    call to stderr (``MAGOO_TRACE_PLUGINS``).
    """

    def __init__(self, pm: pluggy.PluginManager, *, trace: bool = False) -> None:
        self.pm = pm
        self.trace = trace
        self.hook_timeout = 5.0
        self._slow: dict[str, deque[asyncio.Future]] = {}  # plugin -> its hook calls left running, oldest first
        self._reported: dict[tuple[str, str, str], float] = {}
        #: called with ``(event, arguments)`` before the hooks, for every event (the live watchers);
        #: a listener must be quick and must not raise
        self.listeners: list[Callable[[str, dict[str, Any]], None]] = []
        #: the run's ``startup`` arguments while it runs, for a plugin registered later (:meth:`catch_up`)
        self.started_with: dict[str, Any] | None = None
        self._catching_up: set[asyncio.Future] = set()

    async def emit(self, event: str, **kwargs: Any) -> None:
        """Call every ``magoo_on_<event>`` implementation, isolating each one.

        Sync implementations run inline; coroutines run concurrently and are awaited for at most
        ``hook_timeout`` seconds, after which the engine moves on and the slow call finishes in
        the background. While a plugin still has such a call running, its next coroutines go
        straight to the background (a hook hung on every call must not slow every event down by
        ``hook_timeout``), and beyond :data:`MAX_SLOW_CALLS` of them the oldest is cancelled, so
        they cannot pile up over weeks. A raising implementation is logged with its plugin's name
        and reported through ``magoo_on_error`` (not for ``error`` itself); repeats of the same
        failure, and of the same slowness, are logged at most once a minute.
        """
        if event in ("startup", "shutdown"):
            self.started_with = kwargs if event == "startup" else None
        for listener in self.listeners:
            try:
                listener(event, kwargs)
            except Exception:  # a watcher's bug must not stop the event reaching the plugins
                log.exception("a live-event listener failed on %s", event)
        hook = getattr(self.pm.hook, f"magoo_on_{event}")
        pending: dict[asyncio.Future, str] = {}
        failures: list[tuple[str, BaseException]] = []
        for impl in hook.get_hookimpls():
            arguments = {arg: kwargs[arg] for arg in impl.argnames if arg in kwargs}
            if self.trace:
                shown = ", ".join(f"{k}={v!r}" for k, v in arguments.items())
                print(f"magoo-trace: {impl.plugin_name}.magoo_on_{event}({shown})", file=sys.stderr)
            try:
                result = impl.function(**arguments)
                if inspect.isawaitable(result):
                    call = asyncio.ensure_future(result)
                    if self._slow.get(impl.plugin_name):
                        self._leave_behind(impl.plugin_name, event, call)
                    else:
                        pending[call] = impl.plugin_name
            except Exception as exc:
                failures.append((impl.plugin_name, exc))
        if pending:
            done, slow = await asyncio.wait(pending, timeout=self.hook_timeout)
            for task in done:
                if not task.cancelled() and task.exception() is not None:
                    failures.append((pending[task], task.exception()))
            for task in slow:
                if self._first_in_window((pending[task], event, "slow")):
                    log.warning(
                        "plugin %s: magoo_on_%s is still running after %.1f s; carrying on without it",
                        pending[task], event, self.hook_timeout,
                    )
                self._leave_behind(pending[task], event, task)
        for plugin_name, exc in failures:
            await self._hook_failed(plugin_name, event, exc)

    def catch_up(self, plugin: object) -> None:
        """A plugin registered after ``startup`` (a backend restarted after a failure or by a hot
        reload) has its own ``magoo_on_startup`` called now with the run's arguments, so a new
        actuator instance has the run's ``speech``, ``timers`` and ``control`` like the one it
        replaced. A coroutine runs in the background; a raise is logged."""
        if self.started_with is None:
            return
        for impl in self.pm.hook.magoo_on_startup.get_hookimpls():
            if impl.plugin is not plugin:
                continue
            try:
                result = impl.function(**{arg: self.started_with[arg] for arg in impl.argnames if arg in self.started_with})
                if inspect.isawaitable(result):
                    call = asyncio.ensure_future(result)
                    self._catching_up.add(call)
                    call.add_done_callback(self._catching_up.discard)
            except Exception:
                log.exception("%s: magoo_on_startup failed", impl.plugin_name)

    def _leave_behind(self, plugin_name: str, event: str, call: asyncio.Future) -> None:
        """Let a slow hook call finish in the background, cancelling the plugin's oldest one when
        it has more than :data:`MAX_SLOW_CALLS` there."""
        running = self._slow.setdefault(plugin_name, deque())
        running.append(call)
        call.add_done_callback(self._background_done(plugin_name, event))
        if len(running) > MAX_SLOW_CALLS:
            running.popleft().cancel()
            if self._first_in_window((plugin_name, "", "cancelled")):
                log.warning(
                    "plugin %s: %d of its hook calls are still running; cancelling the oldest ones so they do not pile up",
                    plugin_name, len(running),
                )

    def _background_done(self, plugin_name: str, event: str) -> Callable[[asyncio.Future], None]:
        def done(task: asyncio.Future) -> None:
            running = self._slow.get(plugin_name)
            if running is not None and task in running:
                running.remove(task)
                if not running:
                    del self._slow[plugin_name]
            if not task.cancelled() and task.exception() is not None:
                self._log_hook_failure(plugin_name, event, task.exception())

        return done

    async def _hook_failed(self, plugin_name: str, event: str, exc: BaseException) -> None:
        if not self._log_hook_failure(plugin_name, event, exc) or event == "error":
            return
        said = exc.message if isinstance(exc, BackendError) else f"raised {type(exc).__name__}: {exc}"
        failure = BackendFailure(role="plugin", backend=plugin_name, message=f"plugin {plugin_name}: magoo_on_{event} {said}")
        await self.emit("error", failure=failure)

    def _log_hook_failure(self, plugin_name: str, event: str, exc: BaseException) -> bool:
        if not self._first_in_window((plugin_name, event, f"{type(exc).__name__}: {exc}")):
            return False
        if isinstance(exc, BackendError):  # the plugin saying what is wrong: no traceback needed
            log.warning("plugin %s: magoo_on_%s: %s", plugin_name, event, exc.message)
        else:
            log.error("plugin %s: magoo_on_%s raised", plugin_name, event, exc_info=exc)
        return True

    def _first_in_window(self, key: tuple[str, str, str]) -> bool:
        """True when ``key`` (plugin, event, what happened) was not seen within :data:`ERROR_REPEAT_WINDOW`."""
        now = time.monotonic()
        if now - self._reported.get(key, -ERROR_REPEAT_WINDOW) < ERROR_REPEAT_WINDOW:
            return False
        # forget what was not seen for a window: messages that vary (a turn number) must not pile up over weeks
        self._reported = {k: t for k, t in self._reported.items() if now - t < ERROR_REPEAT_WINDOW}
        self._reported[key] = now
        return True

    async def drain(self, timeout: float) -> None:
        """Wait up to ``timeout`` seconds for slow hook calls still running, then cancel them."""
        running = {task for tasks in self._slow.values() for task in tasks}
        if running:
            _, slow = await asyncio.wait(running, timeout=timeout)
            for task in slow:
                task.cancel()
