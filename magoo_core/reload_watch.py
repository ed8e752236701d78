"""Watching the profile's file for a hot reload (``[engine] watch_profile``), with ``watchfiles``.

watchfiles waits on inotify in a thread of its own; the thread wakes every :data:`STEP_MS` to see
whether it should stop: about 10 ms of CPU per idle minute on the development machine, a fifth of
watchfiles' default 50 ms step (``bench/reload_watch.py``). A change is seen within about two
seconds (the step, and watchfiles grouping the writes of one save).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from pathlib import Path

log = logging.getLogger("magoo.reload")

__all__ = ["STEP_MS", "ProfileWatch"]

#: milliseconds between two looks of the watching thread at its stop flag (and at changes seen)
STEP_MS = 500


class ProfileWatch:
    """Calls ``on_change`` on the event loop when the profile at ``path`` or the ``.env`` beside it
    is written, replaced (an editor's save by rename), created or deleted. Runs on the event loop;
    watchfiles' thread only waits.

    :param path: the profile as given to ``magoo run`` (a symbolic link is watched at the link and
        at its target).
    """

    def __init__(self, path: Path, on_change: Callable[[], None]) -> None:
        path = path.absolute()
        self._files = {str(path), str(path.resolve()), str(path.parent / ".env")}
        self._folders = sorted({str(path.parent), str(path.resolve().parent)})
        self._on_change = on_change
        self._task: asyncio.Task | None = None
        self._stop: asyncio.Event | None = None

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    def start(self) -> None:
        """Start watching (idempotent)."""
        if self.running:
            return
        self._stop = asyncio.Event()
        self._task = asyncio.get_running_loop().create_task(self._watch(self._stop), name="magoo-profile-watch")

    async def stop(self) -> None:
        """Stop watching and wait for the thread to notice (at most about :data:`STEP_MS`)."""
        if self._task is None:
            return
        self._stop.set()
        task, self._task = self._task, None
        try:
            await asyncio.wait_for(task, 5.0)
        except TimeoutError:
            task.cancel()
        except Exception:
            log.debug("the profile watch ended with an error", exc_info=True)

    async def _watch(self, stop: asyncio.Event) -> None:
        from watchfiles import awatch  # a native extension: imported when watching starts

        try:
            async for _changes in awatch(
                *self._folders, watch_filter=lambda _change, path: path in self._files,
                stop_event=stop, step=STEP_MS, recursive=False,
            ):
                self._on_change()
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a folder gone, inotify watches exhausted: SIGHUP still reloads
            log.warning("not watching the profile any more (%s); send SIGHUP to reload it", exc)
        with contextlib.suppress(Exception):
            stop.set()
