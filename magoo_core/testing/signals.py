"""Checks on audio content for tests: where a known clip sits in a recording, and a tone's pitch.

Arrays are int16 (or any numeric) samples of one channel; 2-D ``(frames, 1)`` arrays are flattened.
"""

from __future__ import annotations

import numpy as np


def best_match(recorded: np.ndarray, reference: np.ndarray) -> tuple[int, float]:
    """The offset in ``recorded`` where ``reference`` fits best, and the normalised correlation
    there (-1..1; 0.0 when ``recorded`` is shorter than ``reference`` or silent)."""
    rec = np.asarray(recorded, dtype=np.float64).reshape(-1)
    ref = np.asarray(reference, dtype=np.float64).reshape(-1)
    if len(rec) < len(ref):
        return 0, 0.0
    size = 1 << (len(rec) + len(ref)).bit_length()
    lags = np.fft.irfft(np.fft.rfft(rec, size) * np.conj(np.fft.rfft(ref, size)), size)
    offset = int(np.argmax(lags[: len(rec) - len(ref) + 1]))
    window = rec[offset : offset + len(ref)]
    denominator = np.linalg.norm(window) * np.linalg.norm(ref)
    return offset, float(window @ ref / denominator) if denominator else 0.0


def match_in_pieces(recorded: np.ndarray, reference: np.ndarray, pieces: int = 8) -> float:
    """How well ``reference`` came through in ``recorded``, robust to a dropout: the median of
    :func:`best_match`'s correlation for each of ``pieces`` equal parts of ``reference``, each found
    on its own. A loaded machine's sound server may insert a gap or drop a few ms; that shifts
    everything after it, which sinks one whole-clip correlation but only one piece here. Another
    sound, or silence, still scores near 0.
    """
    ref = np.asarray(reference, dtype=np.float64).reshape(-1)
    size = len(ref) // pieces
    if size == 0:
        return best_match(recorded, ref)[1]
    return float(np.median([best_match(recorded, ref[i * size : (i + 1) * size])[1] for i in range(pieces)]))


def dominant_frequency(samples: np.ndarray, sample_rate: int) -> float:
    """The strongest frequency in ``samples``, in Hz (a Hann-windowed FFT's peak bin)."""
    data = np.asarray(samples, dtype=np.float64).reshape(-1)
    spectrum = np.abs(np.fft.rfft(data * np.hanning(len(data))))
    return float(np.fft.rfftfreq(len(data), 1 / sample_rate)[np.argmax(spectrum)])
