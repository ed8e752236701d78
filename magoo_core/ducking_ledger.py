"""What :class:`~magoo_core.ducking.Ducking` has lowered, kept in a file while it is lowered, so that
the next run puts it back when a run was killed outright (SIGKILL, a power cut of the process, the
out-of-memory killer) before it could.

One file per run and sound server: ``magoo-ducked-<server>-<pid>.json`` in ``$XDG_RUNTIME_DIR`` (the
system's temporary folder without it), holding each lowered stream's index, its program's process
id and its volumes before and after. A run reads the files of runs that are no longer alive on
the same server (:meth:`DuckingLedger.left_behind`). Plain file work: call it from the ducking
worker thread.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

__all__ = ["DuckingLedger", "LeftLowered"]

log = logging.getLogger("magoo.engine")


@dataclass(frozen=True)
class LeftLowered:
    """A stream a dead run lowered: put it back to ``original`` if it is still at ``ducked``."""

    index: int
    pid: int | None
    original: list[float]
    ducked: list[int]


class DuckingLedger:
    """The file of this run's lowered streams, and the files dead runs left.

    :param folder: where the files live (default ``$XDG_RUNTIME_DIR``, else the temporary folder).
    :param server: the sound server they belong to (default ``$PULSE_SERVER``; "" is the user's own).
    """

    def __init__(self, folder: Path | None = None, server: str | None = None) -> None:
        folder = folder or Path(os.environ.get("XDG_RUNTIME_DIR") or tempfile.gettempdir())
        server = os.environ.get("PULSE_SERVER", "") if server is None else server
        self._prefix = f"magoo-ducked-{os.getuid()}-{hashlib.sha256(server.encode()).hexdigest()[:12]}-"
        self.folder = folder
        self.path = folder / f"{self._prefix}{os.getpid()}.json"

    def write(self, streams: list[LeftLowered]) -> None:
        """Keep ``streams`` as what this run has lowered now (none: the file goes)."""
        try:
            if not streams:
                self.path.unlink(missing_ok=True)
                return
            temporary = self.path.with_suffix(".tmp")
            temporary.write_text(json.dumps([vars(stream) for stream in streams]), encoding="utf-8")
            temporary.replace(self.path)
        except OSError as exc:  # a full or read-only folder: ducking works on, without the safety net
            log.debug("ducking: cannot keep %s: %s", self.path, exc)

    def left_behind(self) -> list[LeftLowered]:
        """The streams of runs on this server that are gone; their files are removed."""
        streams: list[LeftLowered] = []
        for path in self.folder.glob(f"{self._prefix}*.json"):
            try:
                pid = int(path.stem.removeprefix(self._prefix))
            except ValueError:
                continue
            if pid == os.getpid() or _alive(pid):
                continue
            try:
                streams += [LeftLowered(**entry) for entry in json.loads(path.read_text(encoding="utf-8"))]
            except (OSError, ValueError, TypeError) as exc:
                log.debug("ducking: skipping %s: %s", path, exc)
            path.unlink(missing_ok=True)
        return streams


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: alive
        return True
    return True
