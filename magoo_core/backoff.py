"""Capped exponential backoff with jitter, for restarting backends and reconnecting."""

from __future__ import annotations

import random


class Backoff:
    """Delays that double from ``base`` up to ``cap`` seconds, each spread by ``jitter``.

    With ``jitter=0.5`` a nominal delay of 4 s becomes a uniform draw from 2–4 s ("equal jitter"),
    so many devices that lost the same server do not come back in lock-step, while the delay
    still grows. ``reset()`` after a healthy period starts again from ``base``.
    Not thread-safe; use one per backend.
    """

    def __init__(self, base: float, cap: float, *, jitter: float = 0.5, rng: random.Random | None = None) -> None:
        if base <= 0 or cap < base:
            raise ValueError(f"backoff needs 0 < base <= cap, got base={base}, cap={cap}")
        if not 0 <= jitter <= 1:
            raise ValueError(f"jitter is a fraction from 0 to 1, got {jitter}")
        self.base = base
        self.cap = cap
        self.jitter = jitter
        self.attempts = 0
        self._rng = rng or random.Random()

    def nominal(self) -> float:
        """The un-jittered delay of the next attempt."""
        return min(self.cap, self.base * 2 ** min(self.attempts, 62))

    def next(self) -> float:
        """Seconds to wait before the next attempt; advances the attempt counter."""
        delay = self.nominal()
        self.attempts += 1
        return delay * (1 - self.jitter * self._rng.random())

    def reset(self) -> None:
        self.attempts = 0
