"""One configured backend at run time: :class:`BackendSlot` creates, enters, fails, restarts with
backoff and leaves it; :class:`RestartBudget` is how many restarts the process allows before it gives up.

Everything here runs on the event loop. :class:`~magoo_core.lifecycle.Backends` holds the slots.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter, deque
from collections.abc import Awaitable, Callable
from typing import Any

from .backoff import Backoff
from .errors import BackendError, describe_failure
from .plugin_registry import Plugins
from .profile import BackendSpec
from .settings import EngineSettings
from .types import BackendFailure

log = logging.getLogger("magoo.engine")

__all__ = ["BackendSlot", "RestartBudget", "use_settings"]


class RestartBudget:
    """How many backend restarts the process allows within a window before it gives up.

    Restarting a backend in the process fixes most faults; when restarts keep coming (a driver
    wedged until the process ends, a leak), only a fresh process helps. Past the budget,
    ``on_exhausted`` gets one message and the engine stops with an error, so the service manager
    (``Restart=on-failure``) starts magoo afresh. Runs on the event loop.

    :param limit: restarts within ``window`` seconds that exhaust it; 0: never.
    """

    def __init__(self, limit: int, window: float, on_exhausted: Callable[[str], None]) -> None:
        self.limit = limit
        self.window = window
        self.on_exhausted = on_exhausted
        self._restarts: deque[tuple[float, str]] = deque()

    def spend(self, who: str) -> None:
        """Count one restart of ``who`` (its section and backend)."""
        if not self.limit:
            return
        now = time.monotonic()
        self._restarts.append((now, who))
        while self._restarts[0][0] < now - self.window:
            self._restarts.popleft()
        if len(self._restarts) == self.limit:
            counts = Counter(name for _, name in self._restarts)
            which = ", ".join(f"{name} ×{n}" for name, n in counts.most_common())
            self.on_exhausted(
                f"{self.limit} backend restarts within {self.window:g} s ({which}): exiting, so the service"
                " manager starts magoo afresh ([engine] exit_after_restarts)"
            )


class BackendSlot:
    """Holds the running instance of one backend and restarts it when it keeps failing.

    All methods run on the event loop. ``instance`` is valid between ``start()`` and ``stop()``;
    during a restart ``ready()`` waits for the new instance.
    """

    def __init__(
        self, spec: BackendSpec, settings: EngineSettings, plugins: Plugins, budget: RestartBudget | None = None
    ) -> None:
        self.spec = spec  # what runs: the configured backend, or its backup once that took over
        self.configured = spec
        self.plugins = plugins
        self.max_failures = settings.max_failures
        self.stop_timeout = settings.shutdown_timeout
        self.backoff = Backoff(settings.restart_backoff, settings.restart_backoff_max)
        self.instance: Any = None
        self.last_instance: Any = None  # kept after stop(), for inspection by tests and tools
        self.failures = 0
        self.unrecovered = 0  # failures since the last success; unlike ``failures``, a restart keeps it
        self.failing_since = 0.0  # monotonic time of the first of them
        self.restarts = 0
        self.budget = budget
        self.replaced: str | None = None  # why the configured backend gave way to its backup
        self._entered = False
        self._restart: asyncio.Task | None = None
        # awaited before the instance is left: lets the engine finish work another thread does with it
        self.before_stop: Callable[[], Awaitable[None]] | None = None

    @property
    def key(self) -> str:
        """``role:backend`` (``responder:echo``); ``role:backend@label`` for a ``by_wake`` table's."""
        label = self.configured.wake_label
        return f"{self.spec.role.value}:{self.spec.backend}" + (f"@{label}" if label is not None else "")

    async def start(self) -> Any:
        """Create and enter the backend; its ``@hookimpl`` methods start receiving events.

        When it cannot start and its section has a ``backup``, the backup is started instead and
        stays for the rest of the run (``replaced`` says why); its failure is what is raised then.
        """
        try:
            return await self._enter()
        except Exception as exc:
            if self.spec.backup is None:
                raise
            self._use_backup(describe_failure(self.spec, exc).message, "")
            return await self._enter()

    def _use_backup(self, reason: str, how_long: str) -> None:
        """From now on the section's backup is what runs (``replaced`` says why); not yet entered."""
        backup = self.spec.backup
        assert backup is not None
        self.replaced = reason
        log.warning("%s; using %s %s instead%s", reason, backup.section, backup.backend, how_long)
        self.spec = backup

    async def _enter(self) -> Any:
        instance = self.last_instance = self.spec.create()
        self._entered = await enter_instance(instance)
        self.instance = instance  # only once entered: after a failed start, ready() must give None
        self.plugins.register_instance(self.instance, name=f"{self.spec.section} {self.spec.backend}")
        return self.instance

    async def stop(self, timeout: float) -> None:
        """Leave the backend, waiting at most ``timeout`` seconds; never raises."""
        if self._restart is not None and not self._restart.done() and self._restart is not asyncio.current_task():
            self._restart.cancel()  # but not the restart that is calling us to stop the old instance
        if self.instance is not None and self.before_stop is not None:
            await self.before_stop()
        instance, self.instance = self.instance, None
        entered, self._entered = self._entered, False
        if instance is not None:
            await leave_instance(instance, self.plugins, entered=entered, timeout=timeout, name=f"{self.spec.section} {self.spec.backend}")

    async def ready(self) -> Any:
        """The instance to use now, after any restart in progress has finished."""
        if self._restart is not None and not self._restart.done():
            await asyncio.shield(self._restart)
        return self.instance

    @property
    def restarting(self) -> bool:
        return self._restart is not None and not self._restart.done()

    def succeeded(self) -> tuple[int, float]:
        """The backend did its job: consecutive failures start counting from zero again.

        :returns: the failures that came before and the seconds since the first of them.
        """
        failures, downtime = self.unrecovered, time.monotonic() - self.failing_since
        self.failures = self.unrecovered = 0
        self.backoff.reset()
        return failures, downtime

    def failed(self, failure: BackendFailure, *, restart: bool = True) -> None:
        """Count a failure; after ``max_failures`` in a row, restart in the background with backoff.

        A failure that is not retryable (a refused key, a missing model) hands over to the
        section's ``backup`` at once, when there is one and it is not already running.

        :param restart: False for a failure the backend recovers from by itself (see
            :class:`~magoo_core.errors.BackendError`); it is counted but never triggers a restart.
        """
        if self.unrecovered == 0:
            self.failing_since = time.monotonic()
        self.unrecovered += 1
        self.failures += 1
        if self.restarting:
            return
        if not failure.retryable:
            if self.spec.backup is not None:
                self._restart = asyncio.get_running_loop().create_task(self._hand_over(failure.message))
        elif restart and self.failures >= self.max_failures:
            self._restart = asyncio.get_running_loop().create_task(self._restart_after(self.backoff.next()))

    def swap(self, spec: BackendSpec) -> asyncio.Task[str | None]:
        """Run ``spec`` (the section's new settings, from a reload) from now on, in a task: the
        running instance is left and one of ``spec`` created and entered, as a restart does, so
        :meth:`ready` waits for it. A restart in progress is cancelled first.

        :returns: the task; its result is None once ``spec`` runs (or its backup), else why it
            could not start, and then the settings it ran with are started again.
        """
        if self.restarting:
            self._restart.cancel()
        task = self._restart = asyncio.get_running_loop().create_task(self._swap(self.configured, spec))
        return task

    def use(self, settings: EngineSettings) -> None:
        """A reload's ``[engine]`` settings: ``max_failures``, ``shutdown_timeout``, ``restart_backoff``
        and ``restart_backoff_max`` (the restarts counted so far are kept)."""
        use_settings(self, settings)

    def reconfigured(self, spec: BackendSpec) -> None:
        """The running instance took ``spec``'s config in place (its ``reconfigure()`` said so)."""
        self.spec = self.configured = spec

    async def _swap(self, old: BackendSpec, spec: BackendSpec) -> str | None:
        await self.stop(self.stop_timeout)
        self.spec = self.configured = spec
        self.replaced = None
        try:
            await self.start()
        except Exception as exc:
            why = describe_failure(spec, exc).message
            log.error("%s could not start with its new settings: %s; starting it again with the old ones", spec.section, why,
                      exc_info=not isinstance(exc, BackendError))
            self.spec = self.configured = old
            try:
                await self.start()
            except Exception as again:
                log.error("restart failed: %s", describe_failure(old, again).message, exc_info=not isinstance(again, BackendError))
                self._restart = asyncio.get_running_loop().create_task(self._restart_after(self.backoff.next()))
            return why
        self.failures = self.unrecovered = 0
        self.backoff.reset()
        return None

    async def _hand_over(self, reason: str) -> None:
        """The configured backend failed for good: its backup takes over for the rest of the run."""
        await self.stop(self.stop_timeout)
        self._use_backup(reason, " for the rest of the run")
        self.failures = 0
        self.backoff.reset()
        try:
            await self._enter()
        except Exception as exc:
            failure = describe_failure(self.spec, exc)
            log.error("%s could not take over: %s", self.spec.section, failure.message, exc_info=not isinstance(exc, BackendError))
            self._restart = asyncio.get_running_loop().create_task(self._restart_after(self.backoff.next()))

    async def _restart_after(self, delay: float) -> None:
        log.warning(
            "%s %s failed %d times in a row; restarting it in %.1f s",
            self.spec.section, self.spec.backend, self.failures, delay,
        )
        if self.budget is not None:
            self.budget.spend(f"{self.spec.section} {self.spec.backend}")
        await asyncio.sleep(delay)
        await self.stop(self.stop_timeout)
        try:
            await self.start()
        except Exception as exc:
            # keep trying, ever more slowly: a device may come back, a file may be fixed
            failure = describe_failure(self.spec, exc)
            log.error("restart failed: %s", failure.message, exc_info=not isinstance(exc, BackendError))
            self.restarts += 1
            self._restart = asyncio.get_running_loop().create_task(self._restart_after(self.backoff.next()))
            return
        self.restarts += 1
        self.failures = 0
        log.info("%s %s restarted", self.spec.section, self.spec.backend)


def use_settings(slot: Any, settings: EngineSettings) -> None:
    """Give a slot (a :class:`BackendSlot`, a service's) a reload's ``[engine]`` restart settings."""
    slot.max_failures = settings.max_failures
    slot.stop_timeout = settings.shutdown_timeout
    slot.backoff.base = settings.restart_backoff
    slot.backoff.cap = max(settings.restart_backoff, settings.restart_backoff_max)


async def enter_instance(instance: Any) -> bool:
    """Enter a backend ``instance`` that is an async context manager; whether it was one (and so
    must be left). Raises what its ``__aenter__`` raises."""
    enter = getattr(instance, "__aenter__", None)
    if enter is None:
        return False
    await enter()
    return True


async def leave_instance(instance: Any, plugins: Plugins, *, entered: bool, timeout: float, name: str) -> None:
    """Take a backend ``instance`` off the plugin manager and leave it (when ``entered``) within
    ``timeout`` seconds; never raises: a backend that does not close cleanly is logged as ``name``."""
    plugins.unregister_instance(instance)
    if not entered:
        return
    try:
        await asyncio.wait_for(instance.__aexit__(None, None, None), timeout)
    except Exception:
        log.exception("%s did not close cleanly", name)
