"""Running timers kept across restarts: one JSON file next to the profile.

The file is replaced atomically on every change (:func:`~magoo_core.output_files.write_atomically`),
so a crash or a power cut leaves the old list or the new one, never half of one. It is read once,
when the engine starts. A file that cannot be read as a list of timers is moved aside (renamed
``NAME.bad-YYYYmmdd-HHMMSS``, so nothing is lost silently), said in one log line, and the timers
start empty.

Its shape (``version`` 1)::

    {"version": 1, "timers": [{"id": "3f2a...", "name": "pasta", "total_seconds": 600.0, "ends_at": 1765000000.0}]}
"""

from __future__ import annotations

import json
import logging
import math
import os
import time
from collections.abc import Iterable
from pathlib import Path

from .output_files import WriteFailures, write_atomically
from .types import Timer

__all__ = ["TimerStore", "VERSION", "store_path"]

log = logging.getLogger("magoo.timers")

VERSION = 1
#: bytes of a timers file read at most: a list of timers is a few kilobytes
MAX_BYTES = 1 << 20


class TimerStore:
    """Reads and writes the timers file. Blocking file I/O: call its methods through
    ``asyncio.to_thread``, one at a time (the caller serializes writes).

    :param path: the JSON file; None: timers are not kept (every method does nothing).
    """

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._failures = WriteFailures("the timers file", log)

    def load(self) -> list[Timer]:
        """The timers in the file; ``[]`` when there is none. Never raises: a file that cannot be
        read or parsed is moved aside with one warning naming both paths, and ``[]`` is returned."""
        if self.path is None:
            return []
        try:
            with open(self.path, "rb") as file:
                data = file.read(MAX_BYTES + 1)
        except FileNotFoundError:
            return []
        except OSError as exc:
            log.warning("cannot read the timers file %s: %s; timers start empty", self.path, exc.strerror or exc)
            return []
        try:
            if len(data) > MAX_BYTES:
                raise ValueError(f"it is larger than {MAX_BYTES // 1024} KiB")
            return _parse(json.loads(data.decode("utf-8")))
        except (ValueError, TypeError, KeyError) as exc:
            aside = self._move_aside()
            kept = f"it is kept as {aside}" if aside else "it could not be moved aside"
            log.warning("the timers file %s is not a list of timers (%s); %s and timers start empty", self.path, _short(exc), kept)
            return []

    def save(self, timers: Iterable[Timer]) -> None:
        """Replace the file with ``timers``. A failed write is logged (once, then reminded of at a
        bounded pace) and never raises: the timers still ring in this run."""
        if self.path is None:
            return
        document = {
            "version": VERSION,
            "timers": [
                {"id": t.id, "name": t.name, "total_seconds": t.total_seconds, "ends_at": round(t.ends_at, 3)}
                for t in timers
            ],
        }
        try:
            write_atomically(self.path, (json.dumps(document, indent=1, ensure_ascii=False) + "\n").encode("utf-8"))
        except OSError as exc:
            self._failures.failed(self.path, exc)
        else:
            self._failures.succeeded(self.path)

    def _move_aside(self) -> Path | None:
        assert self.path is not None
        aside = self.path.with_name(f"{self.path.name}.bad-{time.strftime('%Y%m%d-%H%M%S')}")
        try:
            os.replace(self.path, aside)
        except OSError:
            return None
        return aside


def store_path(store: bool | Path, profile_path: Path | None) -> Path | None:
    """Where ``[engine.timers] store`` keeps the timers of the profile at ``profile_path``.

    ``true``: next to the profile, named after it (``kitchen.timers.json`` for ``kitchen.toml``);
    None for a profile that is not a file (built in code), whose timers are then not kept. A
    relative path starts at the profile's folder. ``false``: None.
    """
    if store is False:
        return None
    if store is True:
        return None if profile_path is None else profile_path.with_suffix(".timers.json")
    if not store.is_absolute() and profile_path is not None:
        return profile_path.parent / store
    return store


def _parse(document: object) -> list[Timer]:
    if not isinstance(document, dict) or document.get("version") != VERSION:
        raise ValueError(f"no \"version\": {VERSION}")
    entries = document.get("timers")
    if not isinstance(entries, list):
        raise ValueError('"timers" is not a list')
    timers = []
    for entry in entries:
        if not isinstance(entry, dict):
            raise ValueError("a timer is not an object")
        name, ident = entry["name"], entry["id"]
        total, ends_at = entry["total_seconds"], entry["ends_at"]
        if not isinstance(name, str) or not isinstance(ident, str) or not (0 < len(name) <= 100) or not (0 < len(ident) <= 40):
            raise ValueError("a timer's name or id is not short text")
        for number in (total, ends_at):
            if isinstance(number, bool) or not isinstance(number, int | float) or not math.isfinite(number) or number <= 0:
                raise ValueError("a timer's total_seconds or ends_at is not a positive number")
        timers.append(Timer(ident, name, float(total), float(ends_at)))
    return timers


def _short(exc: BaseException) -> str:
    if isinstance(exc, KeyError):
        return f"a timer has no {exc}"
    if isinstance(exc, UnicodeDecodeError):
        return "it is not UTF-8 text"
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return text[:200]
