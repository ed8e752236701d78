"""Echo cancellation: the microphone with the speaker's own sound taken out, before wake and STT.

:class:`EchoCancel` is the stage ``process(chunk) -> chunk`` the engine applies to every captured
chunk. It reads the far end from the output sink's monitor (:mod:`magoo_core.echo_reference`: why
that and not a tee of the player), places each 10 ms of microphone against the reference by the
two streams' clocks plus the measured delay (:mod:`magoo_core.echo_delay`), and runs the chosen
canceller (:mod:`magoo_core.echo_backends`) on them.

It starts with the first chunk (the canceller is made for the microphone's rate). When it cannot
start (library missing, no ``parec``, a rate the method does not take) or its reference dies, it
logs ONE warning line, hands chunks through untouched from then on and :attr:`active` is False:
the :class:`~magoo_core.speaker.Speaker` mutes the microphone while speaking again (``mute =
"auto"``). Threads: called on the event loop for each chunk (about 1 % of a core at 16 kHz, see
docs/duplex.md); the reference is read on a thread of its own.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import numpy as np

from .echo_backends import Canceller, EchoUnavailable, make_canceller
from .echo_delay import DelayTracker
from .echo_reference import MonitorReference, ReferenceBuffer, StreamClock
from .settings import EchoCancelSettings
from .types import AudioChunk

__all__ = ["EchoCancel"]

log = logging.getLogger("magoo.echo")

_HISTORY = 4.0  # seconds of raw microphone kept for the delay measure
#: seconds the clocks' guess must jump to count as a stream restarted (a gap in one stream): the
#: measured offset then moves with it; smaller wander (a thread starved for a while) is left to
#: the measure, which follows real changes of the echo path
_REALIGN = 0.1
#: seconds the reference is handed over ahead of its measured echo: the filter is causal, and a
#: measure a few ms late (the peak on a strong early reflection) must not put the echo before it
_MARGIN = 0.01


class EchoCancel:
    """The echo-cancellation stage of one run.

    :param settings: the ``[engine.echo_cancel]`` table; None or ``enabled = false``: off, chunks
        pass through untouched and :attr:`active` is False (nothing is logged).
    :param reference: where the far end comes from; default: the output sink's monitor, read from
        the first chunk on. A caller that has the reference itself (``bench/duplex.py``) passes a
        :class:`ReferenceBuffer` and pushes into it.
    """

    def __init__(self, settings: EchoCancelSettings | None, reference: ReferenceBuffer | None = None) -> None:
        self.settings = settings or EchoCancelSettings(enabled=False)
        self._given = reference
        self._reference: ReferenceBuffer | None = reference
        self._monitor: MonitorReference | None = None
        self._canceller: Canceller | None = None
        self._failed: str | None = None if self.settings.enabled else "off"
        self._mic: StreamClock | None = None
        self._delay: DelayTracker | None = None
        self._pending = np.zeros(0, dtype=np.int16)
        self._pending_start = 0  # mic index of _pending[0]
        self._history = np.zeros(0, dtype=np.int16)
        self._guess: int | None = None
        self._cpu = 0.0
        self._seconds = 0.0

    @property
    def active(self) -> bool:
        """The canceller is running or will start with the next chunk (not failed, not closed)."""
        return self._failed is None

    @property
    def problem(self) -> str | None:
        """Why it is off, in one line; None while it is not."""
        return self._failed

    def status(self) -> dict[str, Any]:
        """What ``magoo doctor`` and the bench show: method, state, delay (ms), CPU (share of one core)."""
        delay = None
        if self._guess is not None and self._delay is not None and self._mic is not None:
            offset = self._delay.current(self._guess)
            delay = round((self._guess - offset) / self._mic.rate * 1000, 1)
        return {
            "enabled": self.settings.enabled, "method": self.settings.method, "active": self.active, "problem": self._failed,
            "delay_ms": delay, "measures": self._delay.measures if self._delay else 0,
            "cpu": self._cpu / self._seconds if self._seconds else None,
        }

    def process(self, chunk: AudioChunk) -> AudioChunk:
        """``chunk`` without the echo (whole 10 ms frames: up to 10 ms is held for the next
        chunk), or ``chunk`` itself when echo cancellation is off or failed."""
        if self._failed is not None:
            return chunk
        started = time.process_time()
        try:
            if self._canceller is None:
                self._start(chunk)
            elif self._monitor is not None and not self._monitor.alive:
                raise EchoUnavailable(self._monitor.problem() or "the reference stopped")
            out = self._cancel(chunk)
        except (EchoUnavailable, OSError) as exc:
            self._fail(str(exc))
            return chunk
        self._cpu += time.process_time() - started
        self._seconds += chunk.duration
        return out

    def _start(self, chunk: AudioChunk) -> None:
        if chunk.channels != 1 or chunk.sample_width != 2:
            raise EchoUnavailable(
                f"echo cancellation takes mono 16-bit audio, the microphone gives {chunk.channels} channel(s) of "
                f"{chunk.sample_width * 8} bits: set [audio_source] channels = 1"
            )
        rate = chunk.sample_rate
        self._canceller = make_canceller(self.settings.method, rate, self.settings.tail)
        if self._reference is None:
            self._reference = ReferenceBuffer(rate)
            self._monitor = MonitorReference(self._reference, self.settings.reference)
            self._monitor.start()
        self._mic = StreamClock(rate)
        self._delay = DelayTracker(rate, self.settings.max_delay)
        log.info("echo cancellation on: %s, reference %s", self.settings.method, "given" if self._given else self.settings.reference)

    def _cancel(self, chunk: AudioChunk) -> AudioChunk:
        mic, ref, canceller = self._mic, self._reference, self._canceller
        samples = np.frombuffer(chunk.pcm, dtype="<i2")
        now = chunk.timestamp or time.monotonic()
        mic.arrived(len(samples), now)
        guess = ref.index_at(mic.time_of(0)) if ref.end else 0
        if self._guess is None or abs(guess - self._guess) > _REALIGN * mic.rate:
            if self._guess is not None:
                self._delay.shift(guess - self._guess)
            self._guess = guess
        self._remember(samples)
        offset = self._measure_delay(len(samples))
        if self.settings.delay != "auto":
            offset = self._guess - round(float(self.settings.delay) / 1000 * mic.rate)
        offset += round(_MARGIN * mic.rate)
        frame = canceller.frame
        pending = np.concatenate([self._pending, samples])
        whole = len(pending) // frame * frame
        out = np.empty(whole, dtype=np.int16)
        for i in range(0, whole, frame):
            start = self._pending_start + i
            out[i : i + frame] = canceller.process(pending[i : i + frame], ref.read(start + offset, frame))
        self._pending = pending[whole:]
        self._pending_start += whole
        late = len(self._pending) / mic.rate
        return AudioChunk(out.tobytes(), chunk.sample_rate, 1, 2, now - late if chunk.timestamp else chunk.timestamp)

    def _remember(self, samples: np.ndarray) -> None:
        keep = int(_HISTORY * self._mic.rate)
        self._history = np.concatenate([self._history, samples])[-keep:]

    def _measure_delay(self, frames: int) -> int:
        delay = self._delay
        if self.settings.delay != "auto" or not delay.due(frames) or len(self._history) < delay.window:
            return delay.current(self._guess)
        mic = self._history[-delay.window :]
        first = self._mic.count - delay.window
        ref = self._reference.read(first + self._guess - delay.max_lag + delay.lead, delay.window + delay.max_lag)
        before = delay.offset
        offset = delay.measure(mic, ref, self._guess)
        if delay.offset is not None and delay.offset != before:
            log.info("echo delay measured: %.0f ms", (self._guess - offset) / self._mic.rate * 1000)
        return offset

    def _fail(self, why: str) -> None:
        self._failed = why
        log.warning("echo cancellation off, the microphone is muted while speaking: %s", why)
        self._close_parts()

    def close(self) -> None:
        """Stop the reference reader and free the canceller; :attr:`active` turns False."""
        self._close_parts()
        self._failed = self._failed or "closed"

    def _close_parts(self) -> None:
        if self._monitor is not None:
            self._monitor.close()
            self._monitor = None
        if self._canceller is not None:
            self._canceller.close()
            self._canceller = None
