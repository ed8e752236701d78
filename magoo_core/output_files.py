"""Files magoo writes (recorded replies, ``status.json``, event logs): only regular files, and a
failing write is said once, then reminded of at a bounded pace.

A path from a profile may name anything: ``/dev/full``, a fifo, a symbolic link into another
folder. An atomic rename onto such a path replaces the device node or the link itself (as root
it replaced ``/dev/full`` with a file), and opening a fifo blocks. So every writer goes through
:func:`write_atomically` or :func:`open_for_append`, which write regular files only.

Symbolic links are refused, not followed: a rename would replace the link rather than write
where it points, and following it would write wherever the link leads, out of what the profile
named. The error names the link's target, so the fix is one edit (name the target itself).
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import stat
import tempfile
import time
from pathlib import Path
from typing import IO

#: Seconds between two reminders of the same failing write.
REMIND_EVERY = 600.0


class OutputError(OSError):
    """A path magoo was told to write is not a regular file it may replace; the message says why
    and what to do."""


def check_target(path: str | os.PathLike, *, base: str | os.PathLike | None = None) -> Path:
    """``path`` as a :class:`Path` when magoo may write it: absent, or a regular file, not a symbolic link.

    :param base: when given, ``path`` must stay inside this folder once its parent's links are resolved.
    :raises OutputError: a device node, fifo, socket, folder or symbolic link is there, or the
        path leads out of ``base``.
    """
    path = Path(path)
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        info = None
    if info is not None and stat.S_ISLNK(info.st_mode):
        raise OutputError(
            f"{path} is a symbolic link (to {os.readlink(path)}); magoo writes only regular files:"
            " give the link's target itself as the path, or remove the link"
        )
    if info is not None and not stat.S_ISREG(info.st_mode):
        raise OutputError(
            f"{path} is {_kind(info.st_mode)}, not a regular file; magoo does not replace it:"
            " give the path of a file (it is created when missing)"
        )
    if base is not None:
        folder = Path(base).resolve()
        if not path.parent.resolve().is_relative_to(folder):
            raise OutputError(f"{path} leads out of {folder}; give a path inside that folder")
    return path


def write_atomically(path: str | os.PathLike, data: bytes, *, mode: int = 0o644, base: str | os.PathLike | None = None) -> Path:
    """Replace the regular file ``path`` with ``data``: a temporary file in the same folder,
    fsynced, then renamed, so a reader never sees half a file. Creates missing parent folders.

    Blocking file I/O: call it through ``asyncio.to_thread`` from the event loop.

    :param mode: permissions of a new file; a file that exists keeps its own.
    :raises OutputError: see :func:`check_target`.
    :raises OSError: the folder cannot be written (full disk, read-only, no permission).
    """
    path = check_target(path, base=base)
    with contextlib.suppress(FileNotFoundError):
        mode = stat.S_IMODE(os.lstat(path).st_mode)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        os.chmod(temporary, mode)
        check_target(path, base=base)  # a link or node put there meanwhile is not replaced either
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise
    return path


def open_for_append(path: str | os.PathLike, *, mode: int = 0o644, base: str | os.PathLike | None = None) -> IO[str]:
    """The regular file ``path`` opened to append UTF-8 text (created with ``mode`` when missing,
    with its parent folders). Never follows a symbolic link and never blocks on a fifo.

    Blocking file I/O (one open).

    :raises OutputError: see :func:`check_target`.
    :raises OSError: the file cannot be opened.
    """
    path = check_target(path, base=base)
    path.parent.mkdir(parents=True, exist_ok=True)
    flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags, mode)
    except OSError as exc:
        if os.path.islink(path):
            check_target(path)  # raises the readable message
        raise exc
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode):  # replaced between the check and the open
        os.close(fd)
        raise OutputError(f"{path} is {_kind(info.st_mode)}, not a regular file; magoo does not write to it")
    os.set_blocking(fd, True)
    return os.fdopen(fd, "a", encoding="utf-8")


def _kind(mode: int) -> str:
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device node"
    if stat.S_ISFIFO(mode):
        return "a fifo"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISDIR(mode):
        return "a folder"
    return "not a regular file"


class WriteFailures:
    """Says a repeatedly failing write once, then reminds at most every ``remind_every`` seconds.

    The first failure is a warning with the fix; later ones are counted, and a reminder with the
    count goes out when ``remind_every`` has passed; a success after failures says so once. Not
    thread-safe: call it from one thread (the event loop).

    :param what: what is written, for the messages ("the status file").
    :param clock: monotonic seconds (tests pass their own).
    """

    def __init__(
        self,
        what: str,
        log: logging.Logger,
        *,
        remind_every: float = REMIND_EVERY,
        clock=time.monotonic,
    ) -> None:
        self.what = what
        self._log = log
        self._remind_every = remind_every
        self._clock = clock
        self.failures = 0  # since the last success
        self._said_at: float | None = None

    def failed(self, path: str | os.PathLike, exc: OSError) -> None:
        """A write of ``path`` failed with ``exc``: warn now, or count it for the next reminder."""
        self.failures += 1
        now = self._clock()
        if self._said_at is None:
            self._said_at = now
            self._log.warning("cannot write %s %s: %s; %s", self.what, path, _reason(exc), _fix(exc))
        elif now - self._said_at >= self._remind_every:
            self._log.warning(
                "still cannot write %s %s (%d failures since the first): %s",
                self.what, path, self.failures, _reason(exc),
            )
            self._said_at = now

    def succeeded(self, path: str | os.PathLike) -> None:
        """A write of ``path`` worked: after failures, say it works again (once)."""
        if self._said_at is not None:
            self._log.info("%s %s is written again (after %d failures)", self.what, path, self.failures)
        self.failures = 0
        self._said_at = None


def _reason(exc: OSError) -> str:
    return str(exc) if isinstance(exc, OutputError) else (exc.strerror or str(exc))


def _fix(exc: OSError) -> str:
    if isinstance(exc, OutputError):
        return "magoo goes on without it"
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return "the disk is full: free some space; magoo goes on and retries"
    if exc.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
        return "the folder is read-only for magoo's user: give a writable path; magoo goes on and retries"
    return "magoo goes on and retries"
