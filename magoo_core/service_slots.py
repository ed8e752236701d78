"""Services at run time: one instance for all the roles it serves, and each role's backup.

:class:`SharedService` owns the one instance of a ``[services.NAME]``: entered once (by the first
role that starts), left once (when the last role using it is left), restarted once when failures
reported against any of its roles add up (every role waits for that one restart). While it cannot
start, or is restarting, it keeps retrying with backoff.

:class:`ServiceRole` is what :class:`~magoo_core.lifecycle.Backends` holds for a role served by a
service: the same interface as a :class:`~magoo_core.lifecycle.BackendSlot` (``spec``, ``instance``,
``ready``, ``failed``, ``succeeded``, ``start``, ``stop`` ...). While the service is up it answers;
while it is down or restarting, the role's own ``backup`` answers (started the first time it is
needed, then kept), and the service takes over again as soon as it is back.
Everything here runs on the event loop.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING, Any

from .backend_slot import enter_instance, leave_instance, use_settings
from .backoff import Backoff
from .errors import BackendError, describe_failure
from .profile_model import BackendSpec
from .settings import EngineSettings
from .types import BackendFailure

if TYPE_CHECKING:
    from .backend_slot import BackendSlot, RestartBudget
    from .plugin_registry import Plugins

log = logging.getLogger("magoo.engine")

#: seconds between two looks at an instance that is not ``available`` and has no ``until_available()``
AVAILABLE_POLL = 0.1

__all__ = ["ServiceRole", "SharedService"]


class SharedService:
    """The one running instance of a service, shared by the :class:`ServiceRole` slots that use it.

    :param spec: the spec of one of its roles (they share backend, config and section).
    """

    def __init__(self, spec: BackendSpec, settings: EngineSettings, plugins: Plugins, budget: RestartBudget | None) -> None:
        self.spec = spec
        self.plugins = plugins
        self.max_failures = settings.max_failures
        self.stop_timeout = settings.shutdown_timeout
        self.backoff = Backoff(settings.restart_backoff, settings.restart_backoff_max)
        self.budget = budget
        self.instance: Any = None
        self.last_instance: Any = None
        self.failures = 0
        self.unrecovered = 0
        self.failing_since = 0.0
        self.restarts = 0
        self.roles: list[ServiceRole] = []  # the role slots that use it, in role order
        self._entered = False
        self._starting: asyncio.Future | None = None
        self._start_error: BaseException | None = None
        self._restart: asyncio.Task | None = None
        self._held = 0  # role slots started and not yet left
        self._retrying = False  # a restart failed: the next attempts are logged quietly
        self._in = asyncio.Event()  # set while an instance is entered
        self._out = asyncio.Event()  # set while none is

    @property
    def name(self) -> str:
        return f"{self.spec.section} {self.spec.backend}"

    @property
    def key(self) -> str:
        """Its status key: its roles and its backend, ``"stt+responder+tts:homeassistant"``."""
        return f"{'+'.join(role.spec.role.value for role in self.roles)}:{self.spec.backend}"

    @property
    def restarting(self) -> bool:
        return self._restart is not None and not self._restart.done()

    @property
    def up(self) -> bool:
        """It answers now: entered, no restart in progress, and the instance says it is
        ``available`` (an optional attribute, True when absent: a satellite whose Home Assistant is
        not connected is entered, listening, and yet cannot answer; its roles' backups do)."""
        return self.instance is not None and not self.restarting and bool(getattr(self.instance, "available", True))

    async def start(self) -> Any:
        """Enter the service unless it runs already (the roles after the first share it).

        :raises: why it could not start (then it retries in the background, with backoff, so
            the roles' backups answer until it is back); every role that asks meanwhile gets
            the same error without a new attempt.
        """
        self._held += 1
        if self.instance is not None:
            return self.instance
        if self._starting is not None:
            return await asyncio.shield(self._starting)
        if self._start_error is not None:
            raise self._start_error
        self._starting = asyncio.get_running_loop().create_future()
        try:
            instance = await self._enter()
        except Exception as exc:
            self._start_error = exc
            self._starting.set_exception(exc)
            self._starting.exception()  # retrieved: the roles waiting on it raise it themselves
            self._restart = asyncio.get_running_loop().create_task(self._restart_after(self.backoff.next(), "could not start"))
            raise
        else:
            self._starting.set_result(instance)
            return instance
        finally:
            self._starting = None

    async def _enter(self) -> Any:
        instance = self.last_instance = self.spec.create()
        self._entered = await enter_instance(instance)
        self.instance = instance
        self.plugins.register_instance(instance, name=self.name)
        self._out.clear()
        self._in.set()
        return instance

    async def _leave(self, timeout: float) -> None:
        self._in.clear()
        self._out.set()
        instance, self.instance = self.instance, None
        entered, self._entered = self._entered, False
        if instance is not None:
            await leave_instance(instance, self.plugins, entered=entered, timeout=timeout, name=self.name)

    async def release(self, timeout: float) -> None:
        """A role that uses it is left; the last one leaves the service (and stops its retries)."""
        self._held = max(0, self._held - 1)
        if self._held:
            return
        if self._restart is not None and not self._restart.done() and self._restart is not asyncio.current_task():
            self._restart.cancel()
        await self._leave(timeout)

    async def until_up(self) -> None:
        """Returns once an instance is entered and no restart is in progress."""
        while not self.up:
            if self.instance is not None and not self.restarting:
                # entered but not available: its optional ``until_available()`` returns once it is,
                # unless the instance is left first (a restart, the end of the run)
                wait = getattr(self.instance, "until_available", None)
                waiting = asyncio.ensure_future(wait() if wait is not None else asyncio.sleep(AVAILABLE_POLL))
                left = asyncio.ensure_future(self._out.wait())
                try:
                    await asyncio.wait({waiting, left}, return_when=asyncio.FIRST_COMPLETED)
                finally:
                    for task in (waiting, left):
                        task.cancel()
                continue
            await self._in.wait()
            if self.restarting:
                await asyncio.shield(self._restart)

    async def ready(self) -> Any:
        """The instance once any restart in progress has finished (None: its restart failed)."""
        if self.restarting:
            await asyncio.shield(self._restart)
        return self.instance

    def use(self, settings: EngineSettings) -> None:
        """A reload's ``[engine]`` restart settings (:func:`~magoo_core.backend_slot.use_settings`)."""
        use_settings(self, settings)

    def succeeded(self) -> tuple[int, float]:
        failures, downtime = self.unrecovered, time.monotonic() - self.failing_since
        self.failures = self.unrecovered = 0
        self.backoff.reset()
        return failures, downtime

    def failed(self, failure: BackendFailure, *, restart: bool = True) -> None:
        """A failure reported against any of its roles: after ``max_failures`` in a row (at once for
        one retrying cannot fix by itself, a refused key), the one instance restarts with backoff."""
        if self.unrecovered == 0:
            self.failing_since = time.monotonic()
        self.unrecovered += 1
        self.failures += 1
        if self.restarting or not restart:
            return
        if not failure.retryable or self.failures >= self.max_failures:
            self._restart = asyncio.get_running_loop().create_task(self._restart_after(self.backoff.next()))

    async def _restart_after(self, delay: float, why: str = "") -> None:
        """Leave it now (the roles' backups answer meanwhile), wait ``delay``, enter it again;
        on failure, again later, ever more slowly.

        :param why: empty for a restart its failures asked for (it counts towards the process's
            :class:`~magoo_core.lifecycle.RestartBudget`); else it could not start or come back,
            and tries again: a server that is away is waited for, not a reason to exit, and the
            attempts after the first are logged at debug level only."""
        if not why:
            log.warning("%s failed %d time%s in a row; restarting it in %.1f s",
                        self.name, self.failures, "s" if self.failures != 1 else "", delay)
            if self.budget is not None:
                self.budget.spend(self.name)
        else:
            log.log(logging.DEBUG if self._retrying else logging.WARNING, "%s %s; trying again in %.1f s", self.name, why, delay)
        await self._leave(self.stop_timeout)
        await asyncio.sleep(delay)
        try:
            await self._enter()
        except Exception as exc:
            failure = describe_failure(self.spec, exc)
            if not self._retrying:
                log.error("restart failed: %s", failure.message, exc_info=not isinstance(exc, BackendError))
            self.restarts += 1
            self._retrying = True
            self._restart = asyncio.get_running_loop().create_task(self._restart_after(self.backoff.next(), "could not restart"))
            return
        self._retrying = False
        self.restarts += 1
        self.failures = 0
        self._start_error = None
        log.info("%s restarted: it serves %s again", self.name, ", ".join(f"[{r.spec.role.value}]" for r in self.roles))

    def health(self) -> str:
        if self.restarting:
            return "restarting"
        if self.instance is None:
            return "stopped"
        if not getattr(self.instance, "available", True):
            return "waiting"
        return "failing" if self.unrecovered or not getattr(self.instance, "healthy", True) else "ok"


class ServiceRole:
    """One role served by a :class:`SharedService`, with the role's own backup: what
    :class:`~magoo_core.lifecycle.Backends` holds in that role's place (a BackendSlot's interface).

    ``spec``, ``failures``, ``unrecovered`` and the like are those of whichever answered last:
    the service (its spec names ``[services.NAME]``) or the backup (``[stt.backup]``).

    :param backup: the slot of the role's ``backup`` (not started), or None.
    """

    def __init__(self, spec: BackendSpec, service: SharedService, backup: BackendSlot | None, settings: EngineSettings) -> None:
        self.configured = spec
        self.service = service
        self.backup = backup
        self.stop_timeout = settings.shutdown_timeout
        self.before_stop = None
        self.replaced: str | None = None
        self._on_backup = False  # the backup answered last
        self._backup_starting: asyncio.Future | None = None
        self._waking: asyncio.Future | None = None  # the backup's start begun by now()
        service.roles.append(self)

    # ---- who answers ----

    @property
    def _current(self) -> Any:
        return self.backup if self._on_backup else self.service

    @property
    def spec(self) -> BackendSpec:
        return self.backup.spec if self._on_backup else self.configured

    @property
    def instance(self) -> Any:
        return self.backup.instance if self._on_backup else self.service.instance

    @property
    def last_instance(self) -> Any:
        return self.backup.last_instance if self._on_backup else self.service.last_instance

    @property
    def key(self) -> str:
        return f"{self.spec.role.value}:{self.spec.backend}"

    @property
    def on_backup(self) -> bool:
        """The backup answered last (the service was down or restarting)."""
        return self._on_backup

    async def until_service_back(self) -> None:
        """Returns once the service answers again (continuous mode then ends the backup's
        stream between two turns, and opens the next one on the service)."""
        await self.service.until_up()

    @property
    def failures(self) -> int:
        return self._current.failures

    @property
    def unrecovered(self) -> int:
        return self._current.unrecovered

    @property
    def restarts(self) -> int:
        """The backup's restarts (the service's are counted once, by :class:`SharedService`)."""
        return self.backup.restarts if self.backup is not None else 0

    @property
    def backoff(self) -> Backoff:
        return self._current.backoff

    @property
    def restarting(self) -> bool:
        """Something is on its way back by itself (the service, or the backup): a failure that
        retrying cannot fix does not end the run."""
        return self.service.restarting or (self.backup is not None and self.backup.restarting)

    # ---- life ----

    async def start(self) -> Any:
        """Start the service (shared with its other roles); when it cannot start and this role has
        a backup, the backup answers until the service is back (it keeps retrying)."""
        try:
            instance = await self.service.start()
        except Exception as exc:
            if self.backup is None:
                raise
            reason = describe_failure(self.configured, exc).message
            self.replaced = reason
            log.warning("%s; %s %s answers for [%s] until it is back", reason, self.backup.spec.section,
                        self.backup.spec.backend, self.configured.role.value)
            return await self._use_backup()
        self._on_backup = False
        return instance

    async def _use_backup(self) -> Any:
        """The backup, started the first time it is needed (once, however many ask), then kept."""
        self._on_backup = True
        if self.backup.instance is None and not self.backup.restarting:
            if self._backup_starting is None:
                self._backup_starting = asyncio.ensure_future(self.backup.start())
            try:
                await asyncio.shield(self._backup_starting)
            finally:
                if self._backup_starting is not None and self._backup_starting.done():
                    self._backup_starting = None
        return await self.backup.ready()

    async def ready(self) -> Any:
        """The instance to use now: the service when it is up; else the backup (without one, the
        service once its restart has finished)."""
        if self.service.up:
            if self._on_backup:
                log.info("%s is back: it answers for [%s] again", self.service.name, self.configured.role.value)
                self._on_backup = False
            return self.service.instance
        if self.backup is not None:
            if not self._on_backup:
                log.warning("%s is not available; %s %s answers for [%s] meanwhile", self.service.name,
                            self.backup.spec.section, self.backup.spec.backend, self.configured.role.value)
            return await self._use_backup()
        return await self.service.ready()

    def now(self) -> Any:
        """The instance that answers at this moment, without waiting (the wake detector is chosen
        so for every captured chunk): the service while it is up; else the backup once it runs
        (its start is begun in the background the first time; None until then); without a
        backup, the service unless it restarts. Switching is logged as by :meth:`ready`."""
        if self.service.up:
            if self._on_backup:
                log.info("%s is back: it answers for [%s] again", self.service.name, self.configured.role.value)
                self._on_backup = False
            return self.service.instance
        if self.backup is None:
            return None if self.service.restarting else self.service.instance
        if not self._on_backup:
            log.warning("%s is not available; %s %s answers for [%s] meanwhile", self.service.name,
                        self.backup.spec.section, self.backup.spec.backend, self.configured.role.value)
            self._on_backup = True
        if self.backup.instance is None and self._waking is None and not self.backup.restarting:
            self._waking = asyncio.ensure_future(self._use_backup())
            self._waking.add_done_callback(self._backup_started)
        return None if self.backup.restarting else self.backup.instance

    def _backup_started(self, task: asyncio.Future) -> None:
        self._waking = None
        if not task.cancelled() and task.exception() is not None:
            log.warning("%s %s could not start: %s", self.backup.spec.section, self.backup.spec.backend, task.exception())

    def failed(self, failure: BackendFailure, *, restart: bool = True) -> None:
        """Counted for whichever answered last: the service (for all its roles), or the backup."""
        self._current.failed(failure, restart=restart)

    def succeeded(self) -> tuple[int, float]:
        return self._current.succeeded()

    def use(self, settings: EngineSettings) -> None:
        """A reload's ``[engine]`` settings, for this role and its backup (the service has its own ``use``)."""
        self.stop_timeout = settings.shutdown_timeout
        if self.backup is not None:
            self.backup.use(settings)

    async def stop(self, timeout: float) -> None:
        """Leave the backup if it ran, and let go of the service (left with its last role)."""
        if self._waking is not None:
            self._waking.cancel()
        if self.before_stop is not None and self.instance is not None:
            await self.before_stop()
        if self.backup is not None:
            await self.backup.stop(timeout)
        await self.service.release(timeout)
