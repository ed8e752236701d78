"""Telling systemd how magoo is doing: the sd_notify datagram protocol, without libsystemd.

Under a ``Type=notify`` unit, systemd passes ``$NOTIFY_SOCKET`` (a unix datagram socket; a
leading ``@`` means the abstract namespace) and, with ``WatchdogSec=``, ``$WATCHDOG_USEC``. Each
message is one datagram of ``KEY=value`` lines: ``READY=1`` once the service works,
``WATCHDOG=1`` at least every ``WATCHDOG_USEC`` microseconds or systemd kills and restarts it,
``STATUS=...`` for ``systemctl status``, ``STOPPING=1`` when shutting down. Without
``$NOTIFY_SOCKET`` (a terminal, a test, another init system) every call does nothing.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Mapping

log = logging.getLogger("magoo.systemd")


class Notifier:
    """Sends sd_notify messages; never raises, never blocks (a full socket drops the message).

    :param address: ``$NOTIFY_SOCKET``; None: nothing is sent.
    :param watchdog_usec: ``$WATCHDOG_USEC``, when it is meant for this process.
    """

    def __init__(self, address: str | None, watchdog_usec: int | None = None) -> None:
        self.address = address
        self.watchdog_usec = watchdog_usec
        self._socket: socket.socket | None = None
        self._failed = False

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] | None = None) -> Notifier:
        """The notifier systemd asked for, from ``environ`` (default: this process's)."""
        env = os.environ if environ is None else environ
        usec: int | None = None
        pid = env.get("WATCHDOG_PID")
        if env.get("WATCHDOG_USEC", "").isdigit() and (pid is None or pid == str(os.getpid())):
            usec = int(env["WATCHDOG_USEC"]) or None
        return cls(env.get("NOTIFY_SOCKET") or None, usec)

    @property
    def enabled(self) -> bool:
        return self.address is not None

    @property
    def watchdog_interval(self) -> float | None:
        """Seconds between two pings (half the watchdog's timeout, as systemd advises); None: no watchdog."""
        if self.address is None or self.watchdog_usec is None:
            return None
        return self.watchdog_usec / 2e6

    def ready(self, status: str | None = None) -> None:
        self.send(READY="1", STATUS=status)

    def watchdog(self) -> None:
        self.send(WATCHDOG="1")

    def status(self, text: str) -> None:
        self.send(STATUS=text)

    def stopping(self, status: str | None = None) -> None:
        self.send(STOPPING="1", STATUS=status)

    def send(self, **fields: str | None) -> None:
        """One datagram of ``KEY=value`` lines (None values left out; newlines in a value become spaces)."""
        if self.address is None:
            return
        lines = [f"{key}={' '.join(value.splitlines())}" for key, value in fields.items() if value is not None]
        try:
            if self._socket is None:
                self._socket = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
                self._socket.setblocking(False)
            address = "\0" + self.address[1:] if self.address.startswith("@") else self.address
            self._socket.sendto("\n".join(lines).encode("utf-8"), address)
        except OSError as exc:
            if not self._failed:  # once: systemd gone is no reason to fill the log
                log.warning("cannot notify systemd at %s: %s", self.address, exc.strerror or exc)
                self._failed = True

    def close(self) -> None:
        if self._socket is not None:
            self._socket.close()
            self._socket = None
