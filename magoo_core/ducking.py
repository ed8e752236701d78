"""Ducking: other programs' sound is lowered while the assistant listens to a command and speaks.

:class:`Ducking` lowers every playback stream (a *sink input*) of the PulseAudio or PipeWire server
by ``[engine.ducking] amount_db``, except magoo's own (streams of this process and of its children,
such as an ``mpv`` player), and puts each back to exactly the volume it had, unless the user changed
it while it was lowered: then the user's volume stays. Streams that start while it is lowered are
lowered too (within a second).

It talks to the server with ``pulsectl`` (libpulse through ctypes, no subprocess per change; it
also works with PipeWire's pulse server), imported when the profile turns ducking on. libpulse
calls block, so they run on a worker thread of their own (``magoo-ducking``), one at a time, in order.

The engine calls :meth:`Ducking.want` on the event loop with every captured chunk (cheap: work is
queued only when the wish changes, or once a second while lowered) and :meth:`Ducking.close` at
shutdown, which restores the volumes: after a normal turn, a barge-in, a failed or cancelled turn
(the state is back to listening and nothing plays) and on SIGINT/SIGTERM (the engine's shutdown).
A run killed outright (SIGKILL) cannot: what it lowered is in a file (:mod:`.ducking_ledger`), and
the next run on the same sound server puts those streams back as it starts.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .ducking_ledger import DuckingLedger, LeftLowered
from .settings import DuckingSettings

__all__ = ["Ducking", "lowered", "own_pids"]

log = logging.getLogger("magoo.engine")

#: seconds between two looks for new streams while lowered
RESCAN = 1.0


def lowered(values: list[float], amount_db: float) -> list[float]:
    """Channel volumes (PulseAudio's, 1.0 = 100 %) lowered by ``amount_db``: PulseAudio's volume is
    cubic (its dB is 60·log10 of the value), so the factor is 10^(-dB/60)."""
    factor = 10 ** (-amount_db / 60)
    return [value * factor for value in values]


def own_pids(root: int | None = None) -> set[int]:
    """``root`` (default: this process) and every process under it, from ``/proc``."""
    root = os.getpid() if root is None else root
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
            children.setdefault(parent, []).append(int(entry.name))
    found, todo = {root}, [root]
    while todo:
        for child in children.get(todo.pop(), ()):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


@dataclass
class _Lowered:
    original: list[float]
    ducked: list[int]  # as the server keeps them (integer volumes), to see whether the user changed it
    pid: int | None  # the stream's program, so that a later run knows the stream again


class Ducking:
    """Lowers the other programs' streams while :meth:`want` says so; see the module docstring.

    :param settings: ``[engine.ducking]``.
    :param connect: makes the connection (a ``pulsectl.Pulse``); by default one to the server the
        environment names (``PULSE_SERVER``, else the user's). Called on the worker thread.
    :param ledger: where the lowered streams are kept while lowered (default: see :class:`DuckingLedger`).
    """

    def __init__(self, settings: DuckingSettings, connect: Any = None, ledger: DuckingLedger | None = None) -> None:
        self.settings = settings
        self._connect = connect
        self._worker = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="magoo-ducking")
        self._pulse: Any = None  # worker thread only
        self._lowered: dict[int, _Lowered] = {}  # worker thread only: sink input index → its volumes
        self._warned = False  # worker thread only: the server could not be reached, and the log said so
        self._wanted = False
        self._last_scan = 0.0
        self._closed = False
        self._ledger = ledger or DuckingLedger()
        self._pending: concurrent.futures.Future | None = self._worker.submit(self._put_back_left_behind)

    @classmethod
    def of_settings(cls, settings: DuckingSettings | None) -> Ducking | None:
        """The ducking a profile asks for; None when it asks for none."""
        if settings is None or not settings.enabled or settings.amount_db == 0:
            return None
        return cls(settings)

    @property
    def wanted(self) -> bool:
        """Other streams are (to be) lowered now."""
        return self._wanted

    def want(self, on: bool) -> None:
        """Lower the other streams (``on``) or put them back; on the event loop, returns at once."""
        now = time.monotonic()
        if self._closed or (on == self._wanted and not (on and now - self._last_scan >= RESCAN)):
            return
        self._wanted, self._last_scan = on, now
        self._pending = self._worker.submit(self._duck if on else self._restore)

    async def close(self) -> None:
        """Put every lowered stream back and end the worker (the engine's shutdown; blocks a thread
        for a few ms). A second call does nothing."""
        if self._closed:
            return
        self._wanted, self._closed = False, True
        self._worker.submit(self._restore)
        self._worker.submit(self._disconnect)
        await asyncio.to_thread(self._worker.shutdown, wait=True)

    async def settled(self) -> None:
        """Until the last change asked for has reached the server (tests, the doctor)."""
        pending = self._pending
        if pending is not None:
            await asyncio.wrap_future(pending)

    # ---- on the worker thread ---------------------------------------------------------------------

    def _server(self) -> Any:
        if self._pulse is None:
            try:
                if self._connect is not None:
                    self._pulse = self._connect()
                else:
                    import pulsectl

                    self._pulse = pulsectl.Pulse("magoo-ducking")
            except Exception as exc:  # ImportError, pulsectl.PulseError: no server, no library
                if not self._warned:
                    self._warned = True
                    log.warning(
                        "[engine.ducking] cannot lower other sounds: %s. It needs pulsectl (uv pip install pulsectl)"
                        " and a PulseAudio or PipeWire server (PULSE_SERVER); it tries again at the next turn", exc,
                    )
        return self._pulse

    def _duck(self) -> None:
        pulse = self._server()
        if pulse is None:
            return
        before = len(self._lowered)
        try:
            mine = own_pids()
            for stream in pulse.sink_input_list():
                if stream.index in self._lowered or _pid(stream) in mine:
                    continue
                original = list(stream.volume.values)
                pulse.volume_set(stream, _volume(lowered(original, self.settings.amount_db)))
                ducked = pulse.sink_input_info(stream.index).volume.values
                self._lowered[stream.index] = _Lowered(original, _raw(ducked), _pid(stream))
                log.debug("ducking stream %d (%s)", stream.index, stream.proplist.get("application.name", "?"))
        except Exception as exc:
            self._broken(exc)
        if len(self._lowered) != before:  # one write for all the streams lowered now
            self._keep()

    def _restore(self) -> None:
        if not self._lowered or (pulse := self._server()) is None:
            return
        streams, self._lowered = self._lowered, {}
        for index, volumes in streams.items():
            try:
                now = pulse.sink_input_info(index).volume.values
                if _raw(now) != volumes.ducked:  # the user set a volume while it was lowered: theirs stays
                    continue
                pulse.volume_set(pulse.sink_input_info(index), _volume(volumes.original))
            except Exception as exc:  # the stream ended meanwhile (pulsectl.PulseIndexError), or the server went
                if type(exc).__name__ != "PulseIndexError":
                    self._broken(exc)
        self._keep()

    def _keep(self) -> None:
        self._ledger.write([LeftLowered(i, v.pid, v.original, v.ducked) for i, v in self._lowered.items()])

    def _put_back_left_behind(self) -> None:
        """Put back what a run killed outright left lowered on this server (still at its lowered
        volume: a stream the user set since, or a new one with its index, is left alone)."""
        left = self._ledger.left_behind()
        if not left or (pulse := self._server()) is None:
            return
        put_back = 0
        for stream in left:
            try:
                info = pulse.sink_input_info(stream.index)
                if _pid(info) == stream.pid and _raw(info.volume.values) == stream.ducked:
                    pulse.volume_set(info, _volume(stream.original))
                    put_back += 1
            except Exception as exc:  # gone since (pulsectl.PulseIndexError), or the server went
                if type(exc).__name__ != "PulseIndexError":
                    self._broken(exc)
                    return
        if put_back:
            log.info("ducking: put %d stream(s) back to their volume; a run killed outright had left them lowered", put_back)

    def _broken(self, exc: Exception) -> None:
        log.warning("ducking: the sound server failed (%s); reconnecting at the next change", exc)
        self._disconnect()

    def _disconnect(self) -> None:
        if self._pulse is not None:
            try:
                self._pulse.close()
            finally:
                self._pulse = None


def _pid(stream: Any) -> int | None:
    try:
        return int(stream.proplist.get("application.process.id", ""))
    except ValueError:
        return None


def _raw(values: list[float]) -> list[int]:
    return [round(value * 0x10000) for value in values]


def _volume(values: list[float]) -> Any:
    import pulsectl

    return pulsectl.PulseVolumeInfo(values)
