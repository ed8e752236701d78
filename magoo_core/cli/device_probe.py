"""Run one backend's ``list_devices`` in a child process, with its stderr kept apart.

PortAudio does not only print: where ALSA has no device at all it fails an assertion and aborts
the whole process, and a sound server that stopped answering holds it for good. ``magoo devices``
therefore lists each backend in a forked child (blocking, main thread; Linux and macOS): a crash
or a hang becomes a :class:`Listing` with a problem instead of the end of the command. Whatever
the native libraries wrote to stderr is kept in ``noise``.
"""

from __future__ import annotations

import ctypes
import os
import pickle
import select
import signal
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from ..types import DeviceInfo

#: seconds one backend may take to list (probing every rate of a few devices takes 1-3 s)
LIST_TIMEOUT = 30.0
_PR_SET_PDEATHSIG = 1


@dataclass
class Listing:
    """What one backend listed: its devices, or why it could not; and what was printed meanwhile."""

    devices: list[DeviceInfo] = field(default_factory=list)
    problem: str | None = None
    noise: list[str] = field(default_factory=list)
    #: the native code killed the process (PortAudio's assertion where ALSA has no device at all)
    crashed: bool = False


def list_in_child(list_devices: Callable[[], list[DeviceInfo]], timeout: float = LIST_TIMEOUT) -> Listing:
    """``list_devices()`` in a forked child, killed after ``timeout`` seconds; where there is no
    fork, in this process."""
    if not hasattr(os, "fork"):
        return _listing(list_devices)
    with tempfile.TemporaryFile() as stderr:
        read_end, write_end = os.pipe()
        parent = os.getpid()
        pid = os.fork()
        if pid == 0:
            _child(list_devices, parent, read_end, write_end, stderr.fileno())  # never returns
        os.close(write_end)
        answer, finished = _read_until(read_end, time.monotonic() + timeout)
        if not finished:
            os.kill(pid, signal.SIGKILL)
        _, status = os.waitpid(pid, 0)
        stderr.seek(0)
        noise = stderr.read().decode(errors="replace").splitlines()
    if not finished:
        listing = Listing(problem=f"no answer within {timeout:g} s (a sound server that stopped answering?)")
    elif answer:
        listing = pickle.loads(answer)
    elif os.WIFSIGNALED(status):
        last = next((line.strip().rstrip(".") for line in reversed(noise) if line.strip()), "")
        crash = signal.Signals(os.WTERMSIG(status)).name
        listing = Listing(problem=f"PortAudio crashed ({crash}) while listing devices{f': {last}' if last else ''}", crashed=True)
    else:
        listing = Listing(problem=f"the listing process ended with exit code {os.WEXITSTATUS(status)} and no answer")
    listing.noise = noise
    return listing


def _child(list_devices: Callable[[], list[DeviceInfo]], parent: int, read_end: int, write_end: int, stderr: int) -> None:
    """The forked child: list, send the pickled :class:`Listing`, exit without Python's clean-up."""
    try:
        os.close(read_end)
        _die_with_parent(parent)
        # keep no copy of the parent's stdout: whoever reads it (the doctor) would wait for this child too
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 1)
        os.dup2(stderr, 2)
        os.write(write_end, pickle.dumps(_listing(list_devices)))
    finally:
        os._exit(0)


def _die_with_parent(parent: int) -> None:
    """Ask Linux to kill this child when ``magoo devices`` dies (killed by the doctor's timeout)."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):  # not Linux: the timeout still ends it
        pass
    if os.getppid() != parent:  # the parent died before prctl
        os._exit(1)


def _read_until(fd: int, deadline: float) -> tuple[bytes, bool]:
    """Everything written to ``fd`` until its end, or until ``deadline``: (data, whether it ended)."""
    chunks = []
    with os.fdopen(fd, "rb", buffering=0) as pipe:
        while True:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([pipe], [], [], left)[0]:
                return b"".join(chunks), False
            chunk = pipe.read(65536)
            if not chunk:
                return b"".join(chunks), True
            chunks.append(chunk)


def _listing(list_devices: Callable[[], list[DeviceInfo]]) -> Listing:
    try:
        return Listing(devices=list_devices())
    except Exception as exc:
        return Listing(problem=str(exc) or type(exc).__name__)
