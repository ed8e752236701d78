"""The far-end reference of echo cancellation: what the speaker is playing, kept with its clock.

The reference is read from the sound server's **monitor of the output sink** (``parec`` of
``@DEFAULT_MONITOR@``), not teed from the player: the monitor carries exactly what the sink
renders, already decoded (an mp3 from a cloud TTS, a chime, another program's sound all included),
whichever player made it, and its timing does not depend on the player's buffering, so an mpv that
is restarted or buffers more changes nothing here. On a Pi this is PulseAudio's or pipewire-pulse's
monitor of the card's sink; the two streams (monitor and microphone) are placed on one time line by
their arrival clocks (:class:`StreamClock`) and the rest of the delay is measured
(:mod:`magoo_core.echo_delay`).

Threads: :class:`MonitorReference` reads ``parec`` on its own daemon thread; :class:`ReferenceBuffer`
is safe to push from that thread and read from another.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import threading
import time
from collections import deque

import numpy as np

from .echo_backends import EchoUnavailable

__all__ = ["MonitorReference", "ReferenceBuffer", "StreamClock"]

log = logging.getLogger("magoo.echo")


class StreamClock:
    """Maps a sample index of a live stream to the monotonic time it was captured (or played).

    Each arrival gives an upper bound (a piece arrives after its audio was made); the bound that
    came soonest after its audio over the last ``window`` seconds is the offset used. Samples
    counted are mono frames at ``rate`` Hz.
    """

    def __init__(self, rate: int, window: float = 2.0) -> None:
        self.rate = rate
        self.count = 0
        self._window = window
        self._offsets: deque[tuple[float, float]] = deque()

    def arrived(self, frames: int, at: float) -> None:
        """``frames`` more samples arrived; the last of them was made at monotonic ``at``."""
        self.count += frames
        self._offsets.append((at, at - self.count / self.rate))
        while self._offsets and self._offsets[0][0] < at - self._window:
            self._offsets.popleft()

    @property
    def offset(self) -> float:
        """Seconds: time of sample ``i`` = ``i / rate + offset``."""
        return min(o for _, o in self._offsets) if self._offsets else 0.0

    def index_at(self, moment: float) -> int:
        return round((moment - self.offset) * self.rate)

    def time_of(self, index: int) -> float:
        return index / self.rate + self.offset


class ReferenceBuffer:
    """The last ``seconds`` of far-end audio (int16 mono), indexed by the count of samples pushed."""

    def __init__(self, rate: int, seconds: float = 8.0) -> None:
        self.rate = rate
        self.clock = StreamClock(rate)
        self._ring = np.zeros(int(rate * seconds), dtype=np.int16)
        self._lock = threading.Lock()

    @property
    def end(self) -> int:
        """Index one past the last sample pushed."""
        return self.clock.count

    def push(self, samples: np.ndarray, at: float | None = None) -> None:
        """Append ``samples`` whose last one was played at monotonic ``at`` (default: now)."""
        samples = np.asarray(samples, dtype=np.int16)[-len(self._ring):]
        with self._lock:
            start = self.clock.count % len(self._ring)
            first = min(len(samples), len(self._ring) - start)
            self._ring[start : start + first] = samples[:first]
            self._ring[: len(samples) - first] = samples[first:]
            self.clock.arrived(len(samples), time.monotonic() if at is None else at)

    def index_at(self, moment: float) -> int:
        with self._lock:
            return self.clock.index_at(moment)

    def read(self, start: int, frames: int) -> np.ndarray:
        """Samples ``start .. start+frames``; zeros where there are none (not yet, or long gone)."""
        out = np.zeros(frames, dtype=np.int16)
        with self._lock:
            end = self.clock.count
            lo, hi = max(start, end - len(self._ring), 0), min(start + frames, end)
            if lo < hi:
                index = np.arange(lo, hi) % len(self._ring)
                out[lo - start : hi - start] = self._ring[index]
        return out


class MonitorReference:
    """``parec`` of the sink's monitor into a :class:`ReferenceBuffer`, on a daemon thread.

    :param device: the PulseAudio source to read (``@DEFAULT_MONITOR@``: the default sink's monitor).
    :raises EchoUnavailable: from :meth:`start` when ``parec`` is not installed.
    """

    def __init__(self, buffer: ReferenceBuffer, device: str) -> None:
        self.buffer = buffer
        self.device = device
        self._proc: subprocess.Popen | None = None
        self._thread: threading.Thread | None = None
        self._closed = False

    def start(self) -> None:
        """Start reading (returns at once; the first samples come some 10-100 ms later)."""
        if shutil.which("parec") is None:
            raise EchoUnavailable("the reference is read with parec, not found: sudo apt-get install pulseaudio-utils")
        args = [
            "parec", "--raw", f"--device={self.device}", "--format=s16le", f"--rate={self.buffer.rate}",
            "--channels=1", "--latency-msec=10", "--client-name=magoo-echo-reference",
        ]
        self._proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self._thread = threading.Thread(target=self._read, args=(self._proc,), name="magoo-echo-reference", daemon=True)
        self._thread.start()

    @property
    def alive(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def problem(self) -> str:
        """Why the reader stopped, in one line (parec's stderr), once it has."""
        if self._proc is None or self._proc.poll() is None:
            return ""
        err = self._proc.stderr.read().decode(errors="replace").strip().splitlines() if self._proc.stderr else []
        return f"parec of {self.device} exited ({self._proc.returncode}): {err[-1] if err else 'no message'}"

    def _read(self, proc: subprocess.Popen) -> None:
        fd = proc.stdout.fileno()
        left = b""
        while chunk := os.read(fd, 4096):
            data = left + chunk
            whole = len(data) // 2 * 2
            left = data[whole:]
            self.buffer.push(np.frombuffer(data[:whole], dtype="<i2"), time.monotonic())

    def close(self) -> None:
        """Stop ``parec`` and its thread; safe to call twice."""
        proc, self._proc = self._proc, None
        if proc is None:
            return
        if proc.poll() is None:
            proc.terminate()
        try:
            proc.wait(timeout=2.0)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if self._thread is not None:
            self._thread.join(timeout=2.0)
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()
