"""The profile's backends at run time.

:class:`BackendSlot` is one configured backend: create, enter, fail, restart with backoff, leave.
:class:`Backends` is the collection of them, one slot per role, and owns the run's record of
their failures (``report``) and recoveries (``succeeded``). Everything here runs on the event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter, deque
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from .backoff import Backoff
from .errors import BackendError, describe_failure
from .plugins import Plugins
from .profile import BackendSpec, Profile
from .service_slots import ServiceRole, SharedService
from .settings import EngineSettings
from .types import BackendFailure, Outcome, TurnTimeline

log = logging.getLogger("magoo.engine")

HISTORY = 1000  # failures (and the engine's timelines) kept in memory for a run that lasts weeks

#: ``emit(event, **arguments)``: the engine's way of telling plugins (``Plugins.emit``).
Emit = Callable[..., Awaitable[None]]


class TurnDropped(Exception):
    """The turn was abandoned; the failure that dropped it has been reported already."""


def unexpected(item: object, expected: str) -> TypeError:
    """The error for a backend that yielded something its role does not allow."""
    return TypeError(f"yielded {type(item).__name__}; expected {expected}")


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
        return f"{self.spec.role.value}:{self.spec.backend}"

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
        enter = getattr(instance, "__aenter__", None)
        if enter is not None:
            await enter()
            self._entered = True
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
        if instance is None:
            return
        self.plugins.unregister_instance(instance)
        if self._entered:
            self._entered = False
            try:
                await asyncio.wait_for(instance.__aexit__(None, None, None), timeout)
            except Exception:
                log.exception("%s %s did not close cleanly", self.spec.section, self.spec.backend)

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


class Backends:
    """The profile's backends, one :class:`BackendSlot` per role, and the record of their failures.

    The slots are ``source``, ``wake``, ``stt``, ``responder``, ``tts``, ``player`` (None when the
    profile has no such section; a :class:`~magoo_core.service_slots.ServiceRole` for a role that
    a ``[services.NAME]`` serves, the service itself in ``services``) and ``actuators`` (a list;
    an actuator that cannot start is left out). ``failures`` and ``errors`` count every failure
    :meth:`report` was told of. Runs on the event loop.

    :param emit: how ``error`` and ``recovered`` events reach the plugins.
    :param on_out_of_restarts: called once with a message when the :class:`RestartBudget` runs out.
    """

    def __init__(self, profile: Profile, plugins: Plugins, emit: Emit, on_out_of_restarts: Callable[[str], None]) -> None:
        settings = profile.engine
        self.restart_budget = RestartBudget(settings.exit_after_restarts, settings.restart_window, on_out_of_restarts)

        #: the running ``[services.NAME]``, by NAME: one instance each, shared by the roles it serves
        self.services: dict[str, SharedService] = {}

        def slot(spec: BackendSpec | None) -> BackendSlot | ServiceRole | None:
            if spec is not None and spec.service is not None:
                return self._served(spec, settings, plugins)
            return None if spec is None else BackendSlot(spec, settings, plugins, self.restart_budget)

        self.source: BackendSlot = slot(profile.audio_source)
        self.wake = slot(profile.wake)
        self.stt: BackendSlot = slot(profile.stt)
        self.responder = slot(profile.responder)
        self.tts = slot(profile.tts)
        self.player = slot(profile.player)
        self.actuators: list[BackendSlot] = [slot(spec) for spec in profile.actuators]
        self.failures: deque[BackendFailure] = deque(maxlen=HISTORY)
        self.errors = 0
        self._emit = emit
        self._warnings = profile.warnings

    def _served(self, spec: BackendSpec, settings: EngineSettings, plugins: Plugins) -> ServiceRole:
        """The slot of a role that ``service = NAME`` serves: the service's one instance, shared
        with its other roles, and the role's own backup (:mod:`magoo_core.service_slots`)."""
        shared = self.services.get(spec.service)
        if shared is None:
            shared = self.services[spec.service] = SharedService(spec, settings, plugins, self.restart_budget)
        backup = BackendSlot(spec.backup, settings, plugins, self.restart_budget) if spec.backup is not None else None
        return ServiceRole(spec, shared, backup, settings)

    def slots(self) -> list[BackendSlot]:
        """Every running slot in role order, actuators last."""
        candidates = [self.source, self.wake, self.stt, self.responder, self.tts, self.player, *self.actuators]
        return [s for s in candidates if s is not None]

    async def start(self) -> str | None:
        """Start every backend in role order; None when all are running, else why the run cannot go on."""
        for warning in self._warnings:
            log.warning("%s", warning)
        for slot in self.slots():
            try:
                await slot.start()
            except Exception as exc:
                if slot in self.actuators:
                    await self._without_actuator(slot, exc)
                    continue
                failure = describe_failure(slot.spec, exc)
                if not isinstance(exc, BackendError):  # a plugin bug: the traceback goes to the log
                    log.error("could not start %s", failure.message, exc_info=exc)
                return f"could not start {failure.message}"
        return None

    async def _without_actuator(self, slot: BackendSlot, exc: Exception) -> None:
        """An actuator that cannot start (a servo without its GPIO daemon) is reported once and left
        out: the assistant goes on listening and speaking without it. One that got as far as being
        entered (its hooks could not be registered) is left first, so it is put at rest (an LED off)."""
        failure = describe_failure(slot.spec, exc)
        log.warning("%s; running without it", failure.message, exc_info=not isinstance(exc, BackendError))
        self.failures.append(failure)
        self.errors += 1
        self.actuators.remove(slot)
        await slot.stop(slot.stop_timeout)
        await self._emit("error", failure=failure)

    async def stop(self, timeout: float, *, within: float | None = None, skip: tuple[BackendSlot | None, ...] = ()) -> None:
        """Leave every backend, in reverse order (actuators first, so they rest), each within
        ``timeout`` seconds; never raises.

        :param within: seconds for all of them together (a stop at once); the backends not left
            by then are named in the log and not left.
        :param skip: slots not to leave (one still in use by a thread that is not waited for).
        """
        loop = asyncio.get_running_loop()
        deadline = None if within is None else loop.time() + within
        slots = [slot for slot in reversed(self.slots()) if slot not in skip]
        for index, slot in enumerate(slots):
            remaining = timeout if deadline is None else min(timeout, deadline - loop.time())
            if remaining <= 0:
                log.warning("not left in time: %s", ", ".join(f"{s.spec.section} {s.spec.backend}" for s in slots[index:]))
                return
            if deadline is None:
                await slot.stop(timeout)
                continue
            try:
                await asyncio.wait_for(slot.stop(remaining), remaining)  # its before_stop waits too
            except TimeoutError:
                log.warning("%s %s was not left within %.1f s", slot.spec.section, slot.spec.backend, remaining)

    async def report(self, slot: BackendSlot, exc: BaseException, turn: TurnTimeline | None = None) -> BackendFailure:
        """Log and record a failure of ``slot``'s backend, count it towards a restart, fail
        ``turn`` with it (when given) and emit ``error``."""
        failure = describe_failure(slot.spec, exc, turn.turn if turn else None)
        if isinstance(exc, (BackendError, TimeoutError)):
            log.warning("%s", failure.message)
        else:
            log.error("%s", failure.message, exc_info=exc)
        self.failures.append(failure)
        self.errors += 1
        slot.failed(failure, restart=getattr(exc, "restart", True))
        if turn is not None:
            turn.fail(Outcome.ERROR, failure.message)
        await self._emit("error", failure=failure)
        return failure

    async def succeeded(self, slot: BackendSlot) -> None:
        """The backend did its job; announce the recovery when it had been failing."""
        if not slot.unrecovered:
            slot.succeeded()
            return
        failures, downtime = slot.succeeded()
        log.info(
            "%s %s works again after %d failure%s (%.1f s)",
            slot.spec.section, slot.spec.backend, failures, "" if failures == 1 else "s", downtime,
        )
        await self._emit(
            "recovered", role=slot.spec.role.value, backend=slot.spec.backend, failures=failures, downtime=downtime
        )

    @staticmethod
    async def ready(slot: BackendSlot) -> Any:
        """The slot's instance, once any restart has finished.

        :raises BackendError: its last restart failed (it retries with backoff).
        """
        instance = await slot.ready()
        if instance is None:
            raise BackendError("is not running: its last restart failed; retrying with backoff")
        return instance

    async def ready_or_drop(self, slot: BackendSlot, turn: TurnTimeline) -> Any:
        """:meth:`ready`, or the failure reported against ``turn`` and :class:`TurnDropped` raised."""
        try:
            return await self.ready(slot)
        except BackendError as exc:
            await self.report(slot, exc, turn)
            raise TurnDropped from None

    @contextlib.asynccontextmanager
    async def attempt(self, slot: BackendSlot, turn: TurnTimeline, timeout: float, waiting_for: str) -> AsyncIterator[None]:
        """One backend call for a turn: a timeout or a failure is reported and drops the turn
        (:class:`TurnDropped`); success counts as the backend working."""
        try:
            async with asyncio.timeout(timeout):
                yield
        except TurnDropped:
            raise
        except TimeoutError:
            await self.report(slot, BackendError(f"gave no {waiting_for} within {timeout:.0f} s"), turn)
            raise TurnDropped from None
        except Exception as exc:
            await self.report(slot, exc, turn)
            raise TurnDropped from None
        await self.succeeded(slot)

    def health(self) -> dict[str, tuple[str, dict[str, float]]]:
        """Each slot's status key (``"role:name"``, a second use of a backend ``"#2"`` ...), its
        health (``ok``, ``failing``, ``restarting``, ``stopped``) and its ``stats()``."""
        seen: dict[str, int] = {}
        out: dict[str, tuple[str, dict[str, float]]] = {}
        for slot in self._health_rows():
            seen[slot.key] = seen.get(slot.key, 0) + 1
            key = slot.key if seen[slot.key] == 1 else f"{slot.key}#{seen[slot.key]}"
            stats = getattr(slot.instance, "stats", None)
            try:
                figures = dict(stats()) if callable(stats) else {}
            except Exception:
                log.debug("stats() of %s raised", key, exc_info=True)
                figures = None
            out[key] = (slot.health() if isinstance(slot, SharedService) else _health(slot), figures)
        return out

    def _health_rows(self) -> list[BackendSlot | SharedService]:
        """What the status shows: each slot, but a service once (keyed by its roles) and a role's
        backup only while it runs."""
        rows: list[BackendSlot | SharedService] = []
        for slot in self.slots():
            if not isinstance(slot, ServiceRole):
                rows.append(slot)
                continue
            if slot.service not in rows:
                rows.append(slot.service)
            if slot.backup is not None and slot.backup.instance is not None:
                rows.append(slot.backup)
        return rows

    def restarts(self) -> int:
        """Restarts of every backend so far; a service's count once, whatever the roles it serves."""
        return sum(slot.restarts for slot in self.slots()) + sum(service.restarts for service in self.services.values())


def _health(slot: BackendSlot) -> str:
    if slot.restarting:
        return "restarting"
    if slot.instance is None:
        return "stopped"
    # a backend whose failures never reach the engine (an actuator's own delivery) says so by ``healthy``
    return "failing" if slot.unrecovered or not getattr(slot.instance, "healthy", True) else "ok"
