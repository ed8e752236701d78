"""The JSON bodies the webhook actuator sends: what each event becomes, and the turn's timing.

Every body starts with the same envelope (``event``, ``id``, ``assistant``, ``turn``, ``time``)
and adds the event's own fields. Times inside a turn's ``timeline`` are seconds since the turn
started; ``timestamp`` fields are wall-clock epoch seconds, converted from the engine's
monotonic clock, so a receiver on another machine can read them.
"""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime
from typing import Any

from magoo_core.types import TurnTimeline

#: The moments of a turn, in the order they happen; the keys of every ``timeline`` object.
STEPS = ("started", "wake", "detected", "speech_end", "transcript", "reply", "first_audio", "ended")
#: Turns whose steps are remembered at most (a turn that never ends must not grow the memory).
MAX_OPEN_TURNS = 8


def epoch(monotonic: float) -> float:
    """The wall-clock time (epoch seconds, ms precision) of a ``time.monotonic()`` reading."""
    return round(time.time() - time.monotonic() + monotonic, 3)


def envelope(event: str, assistant: str | None, turn: int | None) -> dict[str, Any]:
    """The fields every body starts with.

    :param event: the hook's name without ``magoo_on_`` (``"wake"``).
    :param assistant: the profile's ``[magoo] name``.
    :param turn: the turn the event belongs to, or None outside a turn.
    """
    return {
        "event": event,
        "id": uuid.uuid4().hex,  # the same on every attempt: a receiver can drop a retried duplicate
        "assistant": assistant,
        "turn": turn,
        "time": datetime.now(UTC).isoformat(timespec="milliseconds"),
    }


def relative(steps: dict[str, float | None], started: float) -> dict[str, float | None]:
    """Each step of ``STEPS`` in seconds after ``started`` (None for a step that did not happen)."""
    return {name: None if steps.get(name) is None else round(steps[name] - started, 3) for name in STEPS}


def finished_timeline(timeline: TurnTimeline) -> dict[str, Any]:
    """The fields of a ``turn_end`` body: outcome, error, the timeline and the engine's latencies."""
    steps = {name: getattr(timeline, name) for name in STEPS}
    return {
        "outcome": timeline.outcome.value,
        "error": timeline.error,
        "timeline": {"started_at": epoch(timeline.started), **relative(steps, timeline.started)},
        "latencies_ms": timeline.latencies(),
    }


class TurnSteps:
    """What is known of each open turn's timing, from the events seen so far.

    The engine hands over a turn's :class:`TurnTimeline` only when the turn ends; transcript and
    reply bodies carry this partial one instead. Steps are noted whatever events are sent.
    """

    def __init__(self) -> None:
        self._turns: dict[int, dict[str, float]] = {}

    def note(self, turn: int | None, step: str, at: float) -> None:
        """``step`` of ``turn`` happened at monotonic time ``at``; the first note starts the turn."""
        if turn is None:
            return
        steps = self._turns.get(turn)
        if steps is None:
            while len(self._turns) >= MAX_OPEN_TURNS:
                self._turns.pop(next(iter(self._turns)))
            steps = self._turns[turn] = {"started": at}
        steps.setdefault(step, at)

    def so_far(self, turn: int) -> dict[str, Any]:
        """The ``timeline`` object of a turn in progress: the steps seen, the rest null."""
        steps = self._turns.get(turn, {})
        started = steps.get("started")
        if started is None:
            return {"started_at": None, **dict.fromkeys(STEPS)}
        return {"started_at": epoch(started), **relative(steps, started)}

    def forget(self, turn: int) -> None:
        self._turns.pop(turn, None)
