"""Prints what the assistant does, one readable line per step, for ``magoo run``."""

from __future__ import annotations

import time
from typing import TextIO

from .plugins import hookimpl
from .types import BackendFailure, Reply, Transcript, TurnTimeline, WakeEvent


class ConsoleReporter:
    """An event plugin that writes a turn's story to a stream, timed from the run's start.

    Runs on the event loop; every hook is a cheap write. Speak chunks are summed, not printed.
    """

    def __init__(self, out: TextIO) -> None:
        self.out = out
        self.t0 = time.monotonic()
        self._levels: list[float] = []

    def _line(self, text: str, when: float | None = None) -> None:
        at = (when if when else time.monotonic()) - self.t0
        self.out.write(f"[{at:7.2f}s] {text}\n")
        self.out.flush()

    @hookimpl
    def magoo_on_wake(self, wake: WakeEvent, turn: int) -> None:
        self._line(f"turn {turn}: wake word '{wake.label}' (score {wake.score:.2f}, threshold {wake.threshold:.2f})", wake.timestamp)

    @hookimpl
    def magoo_on_transcript(self, transcript: Transcript, turn: int) -> None:
        if transcript.final:
            self._line(f"turn {turn}: heard \"{transcript.text}\"")

    @hookimpl
    def magoo_on_reply(self, reply: Reply, turn: int) -> None:
        if reply.final:
            self._line(f"turn {turn}: reply \"{reply.text}\"")

    @hookimpl
    def magoo_on_speak_start(self, turn: int) -> None:
        self._levels = []
        self._line(f"turn {turn}: sound started (microphone muted)")

    @hookimpl
    def magoo_on_speak_chunk(self, level: float) -> None:
        self._levels.append(level)

    @hookimpl
    def magoo_on_speak_end(self, turn: int, interrupted: bool) -> None:
        peak = max(self._levels, default=0.0)
        how = "interrupted" if interrupted else "ended"
        self._line(f"turn {turn}: sound {how} ({len(self._levels)} level updates, peak level {peak:.2f})")

    @hookimpl
    def magoo_on_error(self, failure: BackendFailure) -> None:
        self._line(f"error: {failure.message}")

    @hookimpl
    def magoo_on_recovered(self, role: str, backend: str, failures: int, downtime: float) -> None:
        self._line(f"recovered: {role} {backend} works again after {downtime:.1f} s")

    @hookimpl
    def magoo_on_turn_end(self, timeline: TurnTimeline) -> None:
        self._line(f"turn {timeline.turn}: {timeline.summary()}")
