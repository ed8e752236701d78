"""How near each wake word came: every model's highest score, for the story and the debug log.

A wake detector may report its scores (``scores`` and ``thresholds``, see
:class:`magoo_core.roles.WakeDetector`). The engine hands every frame it scored to one
:class:`WakeScoreboard`, which keeps each model's highest score since the start (what ``magoo run``
tells after a run with no turn) and over the current :data:`LOG_EVERY` seconds of audio. Under
debug logging, a stretch in which a model came near its threshold ends in one log line, so the
scores can be watched without a line per frame.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .types import AudioChunk

log = logging.getLogger("magoo.wake")

#: Seconds of audio scored per debug line, at most.
LOG_EVERY = 5.0
#: A score of at least this fraction of the model's threshold came near.
NEAR = 0.5
#: What counts as near for a model whose detector gives no threshold.
NEAR_WITHOUT_THRESHOLD = 0.1


@dataclass(frozen=True, slots=True)
class Peak:
    """A wake model's highest score over a stretch of audio.

    :param label: the wake word as the profile calls it.
    :param score: the highest score, 0..1.
    :param threshold: the score that wakes; None when the detector does not say.
    :param at: seconds of audio scored since the start when it was reached (muted audio that
        was not scored does not count).
    """

    label: str
    score: float
    threshold: float | None
    at: float

    @property
    def near(self) -> bool:
        """The score reached :data:`NEAR` times the threshold (a near miss, or a detection)."""
        floor = NEAR_WITHOUT_THRESHOLD if self.threshold is None else NEAR * self.threshold
        return self.score >= floor

    def __str__(self) -> str:
        digits = 2  # more where two would show a miss as equal to its threshold (0.997 of 0.999)
        while digits < 4 and self.threshold is not None and self.score < self.threshold and (
            f"{self.score:.{digits}f}" == f"{self.threshold:.{digits}f}"
        ):
            digits += 1
        threshold = "no threshold given" if self.threshold is None else f"threshold {self.threshold:.{digits}f}"
        return f"{self.label} peaked at {self.score:.{digits}f} ({threshold}) at {self.at:.1f} s of audio"


class WakeScoreboard:
    """Each wake model's peaks, fed with every frame the wake detector scored.

    Threads: :meth:`update` is called by one thread at a time (the engine's wake worker for a live
    source, the loop for a lock-step one), right after the detector's ``process()``, so the
    detector's ``scores`` are read where they were made. Everything else may be called from any
    thread (the loop: the story, a status); a lock keeps the two sides apart and is held only
    for a few dictionary updates.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._heard = 0.0  # seconds of audio scored
        self._frames = 0
        self._reports: bool | None = None  # the detector gives scores; None: no frame yet
        self._detector: Any = None  # whose thresholds are cached
        self._thresholds: dict[str, float] = {}
        self._best: dict[str, tuple[float, float]] = {}  # label -> (score, at), since the start
        self._window: dict[str, tuple[float, float]] = {}  # the same, since the window began
        self._window_start = 0.0
        self._latest: dict[str, float] = {}  # label -> score of the last frame scored
        self._broken: Any = None  # the detector whose scores raised (said once; a restarted one is tried)

    # ---- the scoring thread -----------------------------------------------------------------------

    def update(self, detector: Any, frame: AudioChunk) -> None:
        """Take the scores of the frame ``detector.process()`` was just given. Never raises."""
        scores = self._read(detector)
        with self._lock:
            self._heard += frame.duration
            self._frames += 1
            self._reports = scores is not None
            if scores:
                self._latest = scores
            for label, score in (scores or {}).items():
                if score > self._best.get(label, (-1.0, 0.0))[0]:
                    self._best[label] = (score, self._heard)
                if score > self._window.get(label, (-1.0, 0.0))[0]:
                    self._window[label] = (score, self._heard)
            if self._heard - self._window_start < LOG_EVERY:
                return
            window, self._window = self._window, {}
            seconds, self._window_start = self._heard - self._window_start, self._heard
            thresholds = self._thresholds
        near = [peak for peak in _peaks(window, thresholds) if peak.near]
        if near:
            log.debug("wake scores, last %.1f s of audio: %s", seconds, "; ".join(map(str, near)))

    def _read(self, detector: Any) -> Mapping[str, float] | None:
        """The detector's scores of its last frame, or None when it gives none (or they raised)."""
        if detector is self._broken:
            return None
        try:
            if detector is not self._detector:
                thresholds = dict(getattr(detector, "thresholds", None) or {})
                with self._lock:
                    self._detector, self._thresholds = detector, thresholds
            scores = getattr(detector, "scores", None)
            return None if scores is None else {str(label): float(score) for label, score in scores.items()}
        except Exception:  # an optional report must not take the wake detector down
            self._broken = detector
            log.warning("%s: reading its wake scores raised; they are not shown", type(detector).__name__, exc_info=True)
            return None

    # ---- any thread -------------------------------------------------------------------------------

    @property
    def frames(self) -> int:
        """Frames scored since the start."""
        return self._frames

    @property
    def reports_scores(self) -> bool | None:
        """Whether the wake detector gives its scores; None before its first frame."""
        return self._reports

    def latest(self) -> dict[str, tuple[float, float | None]]:
        """Each model's score in the last frame scored and its threshold (None when the detector
        does not say): ``{label: (score, threshold)}``; empty before the first frame or when the
        detector gives no scores."""
        with self._lock:
            latest, thresholds = self._latest, self._thresholds
        return {label: (score, thresholds.get(label)) for label, score in latest.items()}

    def peaks(self) -> list[Peak]:
        """Each model's highest score since the start, in the detector's order of models."""
        with self._lock:
            best, thresholds = dict(self._best), self._thresholds
        return _peaks(best, thresholds)


def _peaks(best: Mapping[str, tuple[float, float]], thresholds: Mapping[str, float]) -> list[Peak]:
    return [Peak(label, score, thresholds.get(label), at) for label, (score, at) in best.items()]
