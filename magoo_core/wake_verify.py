"""A second opinion before a turn starts: ``[wake.verify]``'s detector must hear the same wake word.

When the ``[wake]`` detector fires (a *candidate*), :class:`WakeVerifier` runs its own detector
over the audio around it: the last ``before`` seconds at once, then each chunk that comes, until
it detects the same wake word (by label: the turn starts then, with the first detection's event)
or ``within`` seconds of audio have passed since the candidate (the wake is dropped, counted in
:attr:`WakeVerifier.rejected` and logged at debug with both detectors' scores).

The second detector scores only the audio around a candidate, never every frame: with
microWakeWord verifying openWakeWord that costs 2 % of openWakeWord's CPU on the repository's
recordings, where scoring every frame would cost 11 % for the same answers (``bench/verify.py``). A verifier that cannot start is said in one
line and the first detector decides alone; one that fails while verifying is said once and left
out for the rest of the run.
"""

from __future__ import annotations

import logging
from collections import deque
from typing import Any

from .audio import AudioConverter
from .profile_model import VerifySpec
from .types import AudioChunk, WakeEvent

log = logging.getLogger("magoo.wake")


class WakeVerifier:
    """The second detector of ``[wake.verify]`` and the candidate it is verifying.

    Threads: :meth:`load` and :meth:`close` run on the event loop; :meth:`hear`, :meth:`check` and
    :meth:`reset` on the thread that scores wakes (the wake worker for a live source, the loop for
    a lock-step one), one call at a time, in order. :attr:`rejected` may be read from any thread.

    :param spec: the ``[wake.verify]`` table.
    """

    def __init__(self, spec: VerifySpec) -> None:
        self.spec = spec
        self.rejected = 0  # wakes dropped because the second detector did not agree
        self.accepted = 0
        #: seconds of audio after its candidate the last confirmed wake waited for (its extra latency, with the scoring)
        self.last_waited = 0.0
        self._detector: Any = None  # None: not started, or failed (every candidate then passes)
        self._entered: Any = None  # what close() leaves, even after it failed
        self._labels: frozenset[str] | None = None  # what it can report; None: it does not say
        self._converter: AudioConverter | None = None
        self._history: deque[AudioChunk] = deque()  # the last `before` seconds of audio
        self._held = 0.0  # seconds in _history
        self._candidate: WakeEvent | None = None  # the wake being verified
        self._waited = 0.0  # seconds of audio heard since the candidate
        self._best = 0.0  # the second detector's highest score for the candidate's word

    async def load(self) -> None:
        """Create and enter the second detector; when it cannot start, say so in one line (the first
        detector then decides alone). Never raises."""
        spec = self.spec.detector
        try:
            detector = spec.create()
            await detector.__aenter__()
        except Exception as exc:  # a missing library or model must not stop the assistant
            log.warning(
                "%s %s cannot start (%s: %s); wakes are not verified, [wake] alone decides",
                spec.section, spec.backend, type(exc).__name__, str(exc).splitlines()[0] if str(exc) else "",
            )
            return
        labels = getattr(type(detector), "labels", None)
        self._labels = frozenset(labels(spec.config)) if callable(labels) else None
        self._converter = AudioConverter(detector.input_format, detector.frame_samples)
        self._detector = self._entered = detector

    async def close(self) -> None:
        """Leave the second detector; call it once nothing scores any more (after the wake worker
        stopped). Never raises."""
        detector, self._detector, self._entered = self._entered, None, None
        if detector is None:
            return
        try:
            await detector.__aexit__(None, None, None)
        except Exception:
            log.warning("%s: leaving the verifier raised", self.spec.detector.section, exc_info=True)

    # ---- the scoring thread -----------------------------------------------------------------------

    def hear(self, chunk: AudioChunk) -> WakeEvent | None:
        """Keep ``chunk`` (the last ``before`` seconds are kept); while a candidate is being verified,
        score it too.

        :returns: the candidate, once the second detector agreed; else None (nothing pending, still
            waiting, or dropped now).
        """
        if self._detector is None:
            return None
        self._history.append(chunk)
        self._held += chunk.duration
        while self._held - self._history[0].duration >= self.spec.before:
            self._held -= self._history.popleft().duration
        if self._candidate is None:
            return None
        self._waited += chunk.duration
        if self._agrees([chunk]):
            return self._accept()
        if self._waited >= self.spec.within - 1e-9:
            self._reject()
        return None

    def check(self, wake: WakeEvent) -> WakeEvent | None:
        """A candidate from the first detector (the chunk it came in was given to :meth:`hear`
        already): the second detector hears the last ``before`` seconds.

        :returns: ``wake`` when it agrees at once (or cannot judge: not started, a word it has no
            model for); None while it waits for more audio (see :meth:`hear`), or when the wake
            is dropped (``within`` is 0), or when another candidate is being verified.
        """
        if self._detector is None or (self._labels is not None and wake.label not in self._labels):
            return wake
        if self._candidate is not None:
            return None  # the first detector fired again on the word being verified
        self._candidate, self._waited, self._best = wake, 0.0, 0.0
        try:
            self._converter.reset()
            self._detector.reset()
        except Exception as exc:
            self._failed(exc)
            return self._accept()
        if self._agrees(list(self._history)):
            return self._accept()
        if self._waited >= self.spec.within - 1e-9:
            self._reject()
        return None

    def reset(self) -> None:
        """Forget the audio heard and the candidate (a turn started, the microphone was muted)."""
        self._history.clear()
        self._held = 0.0
        self._candidate = None

    def _agrees(self, chunks: list[AudioChunk]) -> bool:
        label = self._candidate.label
        detector = self._detector
        try:
            for chunk in chunks:
                for frame in self._converter.convert(chunk):
                    event = detector.process(frame)
                    score = (getattr(detector, "scores", None) or {}).get(label)
                    if score is not None:
                        self._best = max(self._best, float(score))
                    if event is not None and event.label == label:
                        self._best = max(self._best, event.score)
                        return True
        except Exception as exc:
            self._failed(exc)
            return True  # it cannot judge: the candidate passes
        return False

    def _accept(self) -> WakeEvent:
        wake, self._candidate = self._candidate, None
        self.accepted += 1
        self.last_waited = self._waited
        log.debug(
            "wake word %s (score %.2f) confirmed by %s %s (score %.2f) %.0f ms of audio after it",
            wake.label, wake.score, self.spec.detector.section, self.spec.detector.backend, self._best, self._waited * 1000,
        )
        return wake

    def _reject(self) -> None:
        wake, self._candidate = self._candidate, None
        self.rejected += 1
        threshold = (getattr(self._detector, "thresholds", None) or {}).get(wake.label)
        of = "" if threshold is None else f" of {threshold:.2f}"
        log.debug(
            "wake word %s (score %.2f ≥ %.2f) dropped: %s %s did not hear it within %.1f s (its highest score %.2f%s)",
            wake.label, wake.score, wake.threshold, self.spec.detector.section, self.spec.detector.backend,
            self.spec.within, self._best, of,
        )

    def _failed(self, exc: Exception) -> None:
        """The second detector raised: said once, left out for the rest of the run (the candidate
        being verified passes: the caller accepts it)."""
        log.error(
            "%s %s failed while verifying (%s: %s); wakes are not verified from now on, [wake] alone decides",
            self.spec.detector.section, self.spec.detector.backend, type(exc).__name__, exc,
        )
        self._detector = None
