"""What every bench script shares (imported as ``common``: a script's own folder is on sys.path)."""

from __future__ import annotations

import contextlib
import signal
from collections.abc import Iterator

from magoo_core.testing.virtual_audio import VirtualAudio


def stop_on_sigterm() -> None:
    """Make SIGTERM unwind like Ctrl-C, so servers, players and load processes are cleaned up."""

    def interrupt(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupt)


@contextlib.contextmanager
def private_audio(script: str) -> Iterator[VirtualAudio]:
    """A private PulseAudio server in a temporary directory for the ``with`` block; ``os.environ``
    points at it, so devices and players opened here use its ``virtmic`` and ``speaker``.

    :raises SystemExit: naming ``script`` and the reason, when the server cannot run here.
    """
    server = contextlib.ExitStack()
    try:
        audio = server.enter_context(VirtualAudio.temporary(prefix="magoo-bench-audio-"))
    except RuntimeError as e:
        raise SystemExit(f"{script}: PulseAudio: {e}") from e
    with server:
        yield audio
