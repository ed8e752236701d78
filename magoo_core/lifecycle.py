"""The profile's backends at run time.

:class:`Backends` is the collection of them, one :class:`~magoo_core.backend_slot.BackendSlot` per
role, and owns the run's record of their failures (``report``) and recoveries (``succeeded``).
Everything here runs on the event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from .backend_slot import BackendSlot, RestartBudget
from .errors import BackendError, describe_failure
from .plugin_registry import Plugins
from .profile import BackendSpec, Profile
from .roles import ROLES, Role
from .service_slots import ServiceRole, SharedService
from .settings import EngineSettings
from .types import BackendFailure, Outcome, TurnTimeline

log = logging.getLogger("magoo.engine")

#: ``BackendSlot`` and ``RestartBudget`` live in :mod:`magoo_core.backend_slot`; imported from here too
__all__ = ["HISTORY", "BackendSlot", "Backends", "Emit", "RestartBudget", "TurnDropped", "unexpected"]

HISTORY = 1000  # failures (and the engine's timelines) kept in memory for a run that lasts weeks

#: ``emit(event, **arguments)``: the engine's way of telling plugins (``Plugins.emit``).
Emit = Callable[..., Awaitable[None]]


class TurnDropped(Exception):
    """The turn was abandoned; the failure that dropped it has been reported already."""


def unexpected(item: object, expected: str) -> TypeError:
    """The error for a backend that yielded something its role does not allow."""
    return TypeError(f"yielded {type(item).__name__}; expected {expected}")


class Backends:
    """The profile's backends, one :class:`BackendSlot` per configured backend, and the record of
    their failures.

    :meth:`of` gives a role's slots, in :data:`~magoo_core.roles.ROLES` order, and :meth:`slot` the one
    slot of a single-section role (None when the profile has no such section); each ``by_wake``
    table of a section has a slot of its own too (:meth:`for_turn`). A role that a
    ``[services.NAME]`` serves has a :class:`~magoo_core.service_slots.ServiceRole` for slot (the
    service itself is in ``services``). The properties
    ``source``, ``wake``, ``stt``, ``responder``, ``tts``, ``player`` and ``actuators`` (a list; an
    actuator that cannot start is left out) read them. ``failures`` and ``errors`` count every failure
    :meth:`report` was told of. Runs on the event loop.

    :param emit: how ``error`` and ``recovered`` events reach the plugins.
    :param on_out_of_restarts: called once with a message when the :class:`RestartBudget` runs out.
    """

    def __init__(self, profile: Profile, plugins: Plugins, emit: Emit, on_out_of_restarts: Callable[[str], None]) -> None:
        settings = profile.engine
        self.restart_budget = RestartBudget(settings.exit_after_restarts, settings.restart_window, on_out_of_restarts)
        #: the running ``[services.NAME]``, by NAME: one instance each, shared by the roles it serves
        self.services: dict[str, SharedService] = {}

        def slot(spec: BackendSpec) -> BackendSlot | ServiceRole:
            if spec.service is not None:
                return self._served(spec, settings, plugins)
            return BackendSlot(spec, settings, plugins, self.restart_budget)

        self._slots: dict[Role, list[BackendSlot | ServiceRole]] = {
            info.role: [slot(spec) for spec in profile.of(info.role)] for info in ROLES
        }
        #: the slots of the sections' ``by_wake`` tables, by role and wake word label
        self._by_wake: dict[Role, dict[str, BackendSlot]] = {
            role: {
                label: BackendSlot(override, settings, plugins, self.restart_budget)
                for slot in slots for label, override in slot.spec.by_wake.items()
            }
            for role, slots in self._slots.items()
        }
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

    def of(self, role: Role) -> list[BackendSlot]:
        """The slots of ``role`` (the list itself: an actuator left out is removed from it)."""
        return self._slots[role]

    def slot(self, role: Role) -> BackendSlot | None:
        """The one slot of a role with a single section, or None when the profile has none."""
        found = self._slots[role]
        return found[0] if found else None

    def for_turn(self, role: Role, turn: TurnTimeline | None) -> BackendSlot | None:
        """The slot that works for ``turn``: the ``by_wake`` table of its ``character`` (the wake word
        that started it, or started the turn a follow-up follows), else the section's own. Speech
        outside a turn (``turn`` None) and turns of continuous mode use the section's own."""
        label = turn.character if turn is not None else None
        found = self._by_wake[role].get(label) if label is not None else None
        return found if found is not None else self.slot(role)

    def use(self, settings: EngineSettings) -> None:
        """A reload's ``[engine]`` settings: every slot's, service's and backup's restart settings
        and the restart budget."""
        self.restart_budget.limit, self.restart_budget.window = settings.exit_after_restarts, settings.restart_window
        for slot in self.slots():
            slot.use(settings)
        for service in self.services.values():
            service.use(settings)

    def running(self, section: str) -> BackendSlot | ServiceRole | None:
        """The slot of ``section`` (``"[tts]"``, ``"[responder.by_wake.alexa]"``, ``"[[actuators]] #2"``),
        or None (an actuator left out at start)."""
        return next((slot for slot in self.slots() if slot.configured.section == section), None)

    @property
    def source(self) -> BackendSlot:
        slot = self.slot(Role.AUDIO_SOURCE)
        assert slot is not None, "a profile has an [audio_source]"
        return slot

    @property
    def wake(self) -> BackendSlot | None:
        return self.slot(Role.WAKE)

    @property
    def stt(self) -> BackendSlot:
        slot = self.slot(Role.STT)
        assert slot is not None, "a profile has an [stt]"
        return slot

    @property
    def responder(self) -> BackendSlot | None:
        return self.slot(Role.RESPONDER)

    @property
    def tts(self) -> BackendSlot | None:
        return self.slot(Role.TTS)

    @property
    def player(self) -> BackendSlot | None:
        return self.slot(Role.PLAYER)

    @property
    def actuators(self) -> list[BackendSlot]:
        return self._slots[Role.ACTUATOR]

    def slots(self) -> list[BackendSlot]:
        """Every running slot in role order (a role's ``by_wake`` slots after its section's), actuators last."""
        return [slot for info in ROLES for slot in (*self._slots[info.role], *self._by_wake[info.role].values())]

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
        """Each slot's status key (``"role:name"``, a second use of a backend ``"#2"``, a ``by_wake``
        table's ``"role:name@label"``), its health (``ok``, ``failing``, ``restarting``, ``stopped``)
        and its ``stats()``."""
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
