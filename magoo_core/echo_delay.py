"""How far the microphone lags the reference: the lag that maximises their cross-correlation.

:class:`DelayTracker` is fed the raw microphone (before cancellation) with the reference index its
clock mapping gave, and every ``every`` seconds of audio in which the far end was loud enough it
measures the offset between them with a phase-transform cross-correlation (GCC-PHAT: sharp peaks on
speech). The first measure is taken at once; a new offset then needs two measures in a row that
agree within 2 ms and differ from the one in force by more than ``hold`` seconds: a single bad one (the user speaking over the reply) moves
nothing, the few ms that room reflections make the peak wander do not disturb the canceller's
filter, and a changed echo path (another sink latency, a restarted sound server) is followed
within two measures. Pure numpy, synchronous, one thread.
"""

from __future__ import annotations

import numpy as np

__all__ = ["DelayTracker", "measure_lag"]

_FLOOR = 100.0  # RMS of the reference (int16) below which there is too little far end to measure
_SHARP = 6.0  # the peak over the correlation's spread that counts as a measure


def measure_lag(mic: np.ndarray, ref: np.ndarray, max_lag: int) -> int | None:
    """The lag ``d`` in ``0 .. max_lag`` at which ``mic[i] ≈ h * ref[i + max_lag - d]`` fits best
    (``ref`` holds ``max_lag`` samples more than ``mic``, before it), or None when no lag stands out."""
    n = len(mic)
    size = 1 << int(np.ceil(np.log2(n + len(ref))))
    spectrum = np.fft.rfft(ref.astype(np.float64), size) * np.conj(np.fft.rfft(mic.astype(np.float64), size))
    spectrum /= np.abs(spectrum) + 1e-9
    cc = np.fft.irfft(spectrum, size)[: max_lag + 1]  # cc[k] = sum mic[i] * ref[i + k]
    peak = int(np.argmax(cc))
    spread = float(np.std(cc)) + 1e-12
    if cc[peak] / spread < _SHARP:
        return None
    return max_lag - peak


class DelayTracker:
    """Keeps the offset ``ref_index - mic_index`` at which the reference lines up with the mic.

    :param rate: Hz of both streams.
    :param max_delay: seconds the echo may lag the clock mapping's guess, at most.
    :param lead: seconds it may come early (the clocks' own error).
    :param every: seconds of microphone between two measures.
    :param hold: seconds a new measure must differ by to replace the offset in force.
    """

    def __init__(
        self, rate: int, max_delay: float, *, lead: float = 0.05, every: float = 1.0, window: float = 1.0, hold: float = 0.015
    ) -> None:
        self.rate = rate
        self.max_lag = int((max_delay + lead) * rate)
        self.lead = int(lead * rate)
        self.every = int(every * rate)
        self.window = int(window * rate)
        self.hold = int(hold * rate)
        self.offset: int | None = None  # measured; None until the first measure
        self.measures = 0
        self._candidate: int | None = None
        self._since = 0

    def due(self, frames: int) -> bool:
        """Count ``frames`` of microphone; True when a measure is due."""
        self._since += frames
        if self._since < self.every:
            return False
        self._since = 0
        return True

    def measure(self, mic: np.ndarray, ref: np.ndarray, guess: int) -> int | None:
        """Measure with the last ``window`` samples of ``mic`` and the reference around them.

        :param ref: reference samples from ``mic_start + guess - max_lag + lead`` on, ``len(mic) +
            max_lag`` of them (``guess``: the clock mapping's offset).
        :returns: the offset now in force (``guess`` until one was measured).
        """
        if np.sqrt(np.mean(ref.astype(np.float64) ** 2)) < _FLOOR:
            return self.current(guess)
        lag = measure_lag(mic, ref, self.max_lag)
        if lag is None:
            return self.current(guess)
        found = guess + self.lead - lag
        self.measures += 1
        agreed = self._candidate is not None and abs(found - self._candidate) <= self.rate // 500
        if self.offset is None or (agreed and abs(found - self.offset) > self.hold):
            self.offset = found  # the first is taken at once: any measure beats the clocks' guess
        self._candidate = found
        return self.current(guess)

    def current(self, guess: int) -> int:
        return guess if self.offset is None else self.offset

    def shift(self, samples: int) -> None:
        """A stream restarted and the clocks' guess jumped by ``samples``: the offset in force
        moves with it (the echo path itself did not change); the next measures confirm it."""
        if self.offset is not None:
            self.offset += samples
        self._candidate = None
