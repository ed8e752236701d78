"""The running engine seen from outside: the heartbeat log line, systemd's notifications, ``status.json``.

:class:`Monitor` owns the periodic tasks that tell people and the service manager how the engine
is doing. It only reads: the engine hands it a ``status()`` callable and tells it when audio
starts flowing and when a finite source ended. Runs on the event loop.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from .output_files import WriteFailures
from .profile import Profile
from .status import status_document, status_line, write_status_file
from .systemd import Notifier
from .types import EngineStatus

log = logging.getLogger("magoo.engine")

#: the heartbeat's stats line is logged at most this often (seconds), however short
#: ``heartbeat_interval`` is: the heartbeat event may tick fast for a plugin, the journal must not flood
HEARTBEAT_LOG_EVERY = 10.0


class Monitor:
    """Heartbeat, systemd (READY, WATCHDOG, STATUS, STOPPING) and the status file of one run.

    :param status: the engine's status now (cheap; called once per tick).
    :param frames: chunks captured so far (the watchdog is fed only while it grows).
    :param emit: ``emit(event, **arguments)``, for the ``heartbeat`` event.
    """

    def __init__(
        self,
        profile: Profile,
        notifier: Notifier,
        status: Callable[[], EngineStatus],
        frames: Callable[[], float],
        emit: Callable[..., Awaitable[None]],
    ) -> None:
        self.profile = profile
        self.settings = profile.engine
        self.notifier = notifier
        self._status = status
        self._frames = frames
        self._emit = emit
        self._audio_ready = False  # the first chunk went through: READY was sent
        self._source_done = False
        self._status_failures = WriteFailures("the status file", log)

    def tasks(self) -> list[asyncio.Task]:
        """Start the periodic tasks this run needs; the engine cancels them at shutdown."""
        tasks = [asyncio.create_task(self._heartbeat(), name="magoo-heartbeat")]
        if self.notifier.enabled:
            tasks.append(asyncio.create_task(self._notify_systemd(), name="magoo-systemd"))
        if self.settings.status_file is not None:
            tasks.append(asyncio.create_task(self._write_status(), name="magoo-status"))
        return tasks

    def audio_arrived(self) -> None:
        """A captured chunk went through the engine; the first one tells systemd READY."""
        if not self._audio_ready:
            self._audio_ready = True
            self.notifier.ready(status_line(self._status()))

    def source_ended(self) -> None:
        """A finite source ran out: no more audio is expected, and the watchdog is fed regardless."""
        self._source_done = True

    def stopping(self, why: str) -> None:
        self.notifier.stopping(f"stopping ({why}); {status_line(self._status())}")

    def close(self) -> None:
        """Nothing more goes to systemd (its socket is closed)."""
        self.notifier.close()

    async def stopped(self) -> None:
        """The run is over: the status file says so (``running: false``)."""
        await self._write_status_once(running=False)

    async def _heartbeat(self) -> None:
        logged_at: float | None = None
        while True:
            await asyncio.sleep(self.settings.heartbeat_interval)
            status = self._status()
            now = asyncio.get_running_loop().time()
            if logged_at is None or now - logged_at >= HEARTBEAT_LOG_EVERY:
                log.info("%s", status_line(status))
                logged_at = now
            await self._emit("heartbeat", status=status)

    async def _notify_systemd(self) -> None:
        """STATUS for ``systemctl status``; WATCHDOG only while audio reaches the engine.

        Both start after READY: until the first audio went through, systemd shows the service as
        starting, and a status line saying "listening" would be untrue. This task runs on the event
        loop, so a blocked loop sends nothing; a source that stopped delivering (a frozen driver, a
        stalled device) stops the pings too. Either way systemd's ``WatchdogSec`` runs out and it
        restarts magoo. After a finite source ended, nothing more is expected, and the pings go on.
        """
        interval = self.notifier.watchdog_interval or self.settings.heartbeat_interval
        frames = -1.0
        starved = False
        while True:
            await asyncio.sleep(interval)
            if not self._audio_ready:
                continue  # a slow start (a busy machine, a model loading) sent STATUS before READY
            flowing = self._frames() > frames or self._source_done
            frames = self._frames()
            if flowing and self._audio_ready:
                if starved:
                    log.info("audio reaches the engine again; the systemd watchdog is fed again")
                starved = False
                self.notifier.watchdog()
            elif self._audio_ready and not starved:
                starved = True
                log.warning("no audio reached the engine for %.0f s; the systemd watchdog is not fed", interval)
            self.notifier.status(status_line(self._status()))

    async def _write_status(self) -> None:
        while True:
            await self._write_status_once(running=True)
            await asyncio.sleep(self.settings.status_interval)

    async def _write_status_once(self, *, running: bool) -> None:
        path = self.settings.status_file
        if path is None:
            return
        if not path.is_absolute() and self.profile.path is not None:
            path = self.profile.path.parent / path
        document = self.profile.secrets.mask_data(status_document(self._status(), name=self.profile.name, running=running))
        try:
            await asyncio.to_thread(write_status_file, path, document)
        except OSError as exc:
            self._status_failures.failed(path, exc)
        else:
            self._status_failures.succeeded(path)
