"""What the meter shows, folded from the run's level documents and event documents.

The documents are those of :class:`magoo_core.control.Control` (``levels()``, ``subscribe()``,
``snapshot()``) and of the control API's WebSocket, which sends the same. Times here are
``time.monotonic()`` seconds of this process, passed in by the caller (tests give their own).
Not thread-safe: one task feeds it and draws it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

#: seconds a clipping mark stays up after the last clipped sample
CLIP_HOLD = 1.5
#: seconds a wake model's highest score stays shown
PEAK_HOLD = 3.0
#: the timeline's steps, in order, and what the meter calls them
STEPS = (("wake", "wake"), ("speech_end", "speech end"), ("transcript", "transcript"), ("reply", "reply"),
         ("first_audio", "sound"), ("ended", "end"))


@dataclass
class WakeModel:
    """One wake model: its last score, its threshold, its highest score of the last :data:`PEAK_HOLD` s."""

    score: float = 0.0
    threshold: float | None = None
    peak: float = 0.0
    peak_at: float = 0.0


@dataclass
class Turn:
    """The last turn: what was heard and answered, its timeline (seconds from its start), its outcome."""

    number: int
    wake: str | None = None
    heard: str | None = None
    answered: str | None = None
    steps: list[tuple[str, float]] = field(default_factory=list)
    outcome: str | None = None  # None while it is going on
    error: str | None = None


@dataclass
class Board:
    """Everything the meter draws."""

    name: str = ""
    state: str = "?"
    muted: bool = False
    speaking: bool = False
    input: float = 0.0  # RMS, 0..1 of full scale
    peak: float = 0.0
    clipped_at: float | None = None
    wake: dict[str, WakeModel] = field(default_factory=dict)
    speech: bool | None = None  # voice activity from speech_start/speech_end; None: never told
    speech_at: float | None = None
    turn: Turn | None = None
    partial: str | None = None
    note: str = ""  # one line: a command's answer, an error event
    levels_seen: int = 0

    def clipping(self, now: float) -> bool:
        return self.clipped_at is not None and now - self.clipped_at <= CLIP_HOLD

    def take_levels(self, levels: dict[str, Any], now: float) -> None:
        """One ``{"type": "levels", ...}`` document."""
        self.levels_seen += 1
        self.state = str(levels.get("state", self.state))
        self.muted = bool(levels.get("muted", self.muted))
        self.speaking = bool(levels.get("speaking", False))
        self.input = float(levels.get("input") or 0.0)
        self.peak = float(levels.get("peak") or 0.0)
        if levels.get("clipping"):
            self.clipped_at = now
        for label, scores in (levels.get("wake") or {}).items():
            model = self.wake.setdefault(label, WakeModel())
            model.score = float(scores.get("score") or 0.0)
            model.threshold = scores.get("threshold")
            if model.score >= model.peak or now - model.peak_at > PEAK_HOLD:
                model.peak, model.peak_at = model.score, now

    def take_snapshot(self, snapshot: dict[str, Any], now: float) -> None:
        """A ``{"type": "snapshot", ...}`` document: the name, the levels, the last turn."""
        self.name = str(snapshot.get("name") or self.name)
        if isinstance(snapshot.get("levels"), dict):
            self.take_levels(snapshot["levels"], now)
        turns = snapshot.get("last_turns") or []
        if turns:
            last = turns[-1]
            self.turn = Turn(int(last.get("turn") or 0), wake=(last.get("wake") or {}).get("label"),
                             heard=last.get("heard"), answered=last.get("answered"))
            self._ended(last.get("timeline") or {})

    def take_event(self, document: dict[str, Any], now: float) -> None:
        """One ``{"type": "event", "event": ..., ...}`` document."""
        event = document.get("event")
        turn = document.get("turn")
        if event == "state_change":
            self.state = str(document.get("new"))
        elif event == "muted":
            self.muted = bool(document.get("muted"))
        elif event in ("speech_start", "speech_end"):
            self.speech, self.speech_at = event == "speech_start", now
        elif event == "wake":
            wake = document.get("wake") or {}
            self.turn = Turn(int(turn or 0), wake=f"{wake.get('label')} {float(wake.get('score') or 0):.2f}")
            self.partial = None
        elif event == "transcript":
            text = (document.get("transcript") or {}).get("text")
            if (document.get("transcript") or {}).get("final"):
                self._current(turn).heard, self.partial = text, None
            else:
                self.partial = text
        elif event == "reply" and (document.get("reply") or {}).get("final", True):
            self._current(turn).answered = (document.get("reply") or {}).get("text")
        elif event == "turn_end":
            timeline = document.get("timeline") or {}
            self._current(timeline.get("turn"))
            self._ended(timeline)
        elif event == "error":
            failure = document.get("failure") or {}
            self.note = f"error: {failure.get('role', '?')} {failure.get('backend', '')}: {failure.get('message', '')}"

    def _current(self, number: Any) -> Turn:
        if self.turn is None or (isinstance(number, int) and number != self.turn.number):
            self.turn = Turn(number if isinstance(number, int) else 0)
        return self.turn

    def _ended(self, timeline: dict[str, Any]) -> None:
        if self.turn is None or not timeline:
            return
        started = timeline.get("started")
        if isinstance(started, (int, float)):
            self.turn.steps = [(name, round(timeline[key] - started, 2)) for key, name in STEPS
                               if isinstance(timeline.get(key), (int, float))]
        self.turn.outcome = str(timeline.get("outcome") or "ok")
        self.turn.error = timeline.get("error")
