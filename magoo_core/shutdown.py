"""Stopping: the signals that ask for it, and the stop at once that a second signal asks for.

The first SIGINT, SIGTERM or SIGHUP asks for the graceful stop (:meth:`Engine.request_stop
<magoo_core.engine.Engine.request_stop>`): the reply being spoken is cut off, the turns are
cancelled, every backend is left, each within ``[engine] shutdown_timeout`` seconds. A second
one while that runs (or one that comes while a stop asked for otherwise is running) asks for a
stop at once: :func:`stop_now` leaves what it can within :data:`HURRY` seconds and returns.
SIGHUP reloads the profile when the run has a reload (``Stopping.on_reload``, set by ``magoo run``:
:mod:`magoo_core.reload`); without one it stops like SIGTERM (a service manager's "reload" must not
kill magoo without leaving its backends).
Everything here runs on the event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Awaitable, Callable, Coroutine, Iterable
from typing import Any

from .duplex import Duplex
from .lifecycle import Backends
from .monitor import Monitor
from .turn import Turns
from .wake_worker import WakeWorker

log = logging.getLogger("magoo.engine")

#: the signals that stop magoo (first: gracefully; again: at once)
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
#: seconds a stop at once takes at most to leave the backends
HURRY = 1.0


class Stopping:
    """How a run stops: the owner of the stop signals and of the choice between the graceful stop
    and the stop at once.

    The signals go through ``loop.add_signal_handler``, so their handlers run on the loop thread,
    between callbacks. A signal while the engine runs asks for the graceful stop; a signal while it
    stops already (asked for by a signal or otherwise: ``--turns``, a fatal failure) asks for the
    stop at once, which cancels the graceful stop wherever it waits.

    :param request_stop: asks the engine for the graceful stop (its ``request_stop``).
    :param stopping: whether the engine stops already.
    """

    def __init__(self, request_stop: Callable[[], None], stopping: Callable[[], bool]) -> None:
        self._request_stop = request_stop
        self._stopping = stopping
        self._installed: list[signal.Signals] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._graceful: asyncio.Task | None = None
        #: what SIGHUP does instead of stopping (the reload of ``magoo run``); called on the loop
        self.on_reload: Callable[[], None] | None = None
        #: a stop at once was asked for: threads and tasks may be left running
        self.hurried = False

    async def run(self, graceful: Coroutine[Any, Any, None], now: Callable[[], Awaitable[None]]) -> None:
        """Stop: run ``graceful``; when a stop at once is asked for (before or while it runs),
        cancel it and await ``now()`` instead."""
        if self.hurried:
            graceful.close()
        else:
            self._graceful = asyncio.ensure_future(graceful)
            try:
                await self._graceful
            except asyncio.CancelledError:
                if not self.hurried:
                    raise
        if self.hurried:
            await now()

    def hurry(self) -> None:
        """Ask for the stop at once (safe from signal handlers on the loop thread)."""
        self.hurried = True
        self._request_stop()
        if self._graceful is not None:
            self._graceful.cancel()

    def install(self) -> None:
        """Take over the stop signals; where that is impossible (not the main thread: tests,
        an application embedding magoo) the caller stops the engine itself."""
        self._loop = asyncio.get_running_loop()
        for sig in STOP_SIGNALS:
            try:
                self._loop.add_signal_handler(sig, self._received, sig)
            except (NotImplementedError, RuntimeError, ValueError):
                continue
            self._installed.append(sig)

    def remove(self) -> None:
        """Give the signals back (a later Ctrl-C is Python's KeyboardInterrupt again)."""
        for sig in self._installed:
            self._loop.remove_signal_handler(sig)
        self._installed.clear()

    def _received(self, sig: signal.Signals) -> None:
        if sig is signal.SIGHUP and self.on_reload is not None:
            if self._stopping():
                log.info("SIGHUP while stopping: not reloading")
            else:
                log.info("SIGHUP: reloading the profile")
                self.on_reload()
            return
        if self._stopping():
            log.warning("%s while stopping: stopping at once", sig.name)
            self.hurry()
            return
        again = " (Ctrl-C again stops at once)" if sig is signal.SIGINT else ""
        log.info("%s: stopping%s", sig.name, again)
        self._request_stop()


async def stop_now(
    turns: Turns, tasks: Iterable[asyncio.Task], wake_worker: WakeWorker, backends: Backends, monitor: Monitor,
    duplex: Duplex | None = None,
) -> None:
    """The stop at once: cancel the turns and the engine's tasks without waiting for them, give
    other programs their volume back (``duplex``, within :data:`HURRY` seconds), and leave the
    backends, actuators first, within :data:`HURRY` seconds altogether (what is left after that is
    not left). The wake worker's thread is not waited for."""
    turns.abandon()
    for task in tasks:
        task.cancel()
    if duplex is not None:
        with contextlib.suppress(Exception):  # TimeoutError: a sound server that hangs keeps its volumes
            await asyncio.wait_for(duplex.close(), HURRY)
    in_use = () if wake_worker.abandon() else (backends.wake,)
    await backends.stop(HURRY, within=HURRY, skip=in_use)
    monitor.close()
