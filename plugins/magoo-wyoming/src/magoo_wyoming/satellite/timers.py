"""Home Assistant's timers as the satellite knows them: Home Assistant counts down, the
satellite shows them and rings when one finishes (``timer-started/updated/cancelled/finished``)."""

from __future__ import annotations

import time
from dataclasses import dataclass

#: timers kept at once; Home Assistant has a handful, a peer sending thousands must not grow memory
MAX_TIMERS = 64


@dataclass
class Timer:
    id: str
    name: str
    total_seconds: int
    ends_at: float  # monotonic
    active: bool = True

    def remaining(self, now: float) -> float:
        return max(0.0, self.ends_at - now) if self.active else float(self.total_seconds)


class Timers:
    """The timers Home Assistant runs for this satellite. Event-loop only.

    Each method returns a few words for the story (``"timer 'pasta' started (5 min)"``), or None
    when the event named no timer it knows.
    """

    def __init__(self) -> None:
        self.timers: dict[str, Timer] = {}
        self.finished = 0

    def started(self, timer_id: str, total_seconds: int, name: str | None, now: float | None = None) -> str:
        now = time.monotonic() if now is None else now
        if timer_id not in self.timers and len(self.timers) >= MAX_TIMERS:
            self.timers.pop(next(iter(self.timers)))
        timer = self.timers[timer_id] = Timer(timer_id, name or "", max(0, total_seconds), now + max(0, total_seconds))
        return f"timer {_label(timer)} started ({_duration(timer.total_seconds)})"

    def updated(self, timer_id: str, is_active: bool, total_seconds: int, now: float | None = None) -> str | None:
        timer = self.timers.get(timer_id)
        if timer is None:
            return None
        now = time.monotonic() if now is None else now
        timer.active, timer.total_seconds = is_active, max(0, total_seconds)
        timer.ends_at = now + timer.total_seconds
        return f"timer {_label(timer)} {'running' if is_active else 'paused'} ({_duration(timer.total_seconds)} left)"

    def cancelled(self, timer_id: str) -> str | None:
        timer = self.timers.pop(timer_id, None)
        return None if timer is None else f"timer {_label(timer)} cancelled"

    def finish(self, timer_id: str) -> str:
        timer = self.timers.pop(timer_id, None)
        self.finished += 1
        return f"timer {_label(timer) if timer else repr(timer_id)} finished"

    @property
    def active(self) -> int:
        return sum(1 for timer in self.timers.values() if timer.active)


def _label(timer: Timer) -> str:
    return repr(timer.name) if timer.name else repr(timer.id)


def _duration(seconds: int) -> str:
    if seconds >= 3600:
        return f"{seconds // 3600} h {seconds % 3600 // 60} min"
    if seconds >= 60:
        return f"{seconds // 60} min" + (f" {seconds % 60} s" if seconds % 60 else "")
    return f"{seconds} s"
