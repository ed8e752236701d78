"""Prints what the assistant does, one readable line per step, for ``magoo run``."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, TextIO

from .plugins import hookimpl
from .secrets import Secrets
from .speakable import shown
from .types import BackendFailure, Reply, Transcript, TurnTimeline, WakeEvent
from .wake_scores import WakeScoreboard

if TYPE_CHECKING:
    from .engine import Engine


class ConsoleReporter:
    """An event plugin that writes a turn's story to a stream, timed from the reporter's creation.

    Runs on the event loop; every hook is a cheap write. Speak chunks are summed, not printed.
    At the end of a turn each backend may add a line of its own (``describe_turn()``). A run that
    ends with no turn says how near each wake word came; one that ends with exit code 1 says why.

    Every line is masked with the profile's secrets before it is written (a template, a path or
    a server's error may hold one).

    :param engine: the engine whose backends are described; None: the hooks' own lines only.
    :param secrets: what to mask; default: the engine's ``profile.secrets``.
    """

    def __init__(self, out: TextIO, engine: Engine | None = None, *, secrets: Secrets | None = None) -> None:
        self.out = out
        self.engine = engine
        if secrets is None:
            profile = getattr(engine, "profile", None)
            secrets = profile.secrets if profile is not None else Secrets()
        self.secrets = secrets
        self.t0 = time.monotonic()
        self._levels: list[float] = []
        self._sound_started: float | None = None  # the reply's first sound, until its speak_end
        self._backups_told: set[int] = set()  # slots whose backup took over, already said

    def _line(self, text: str, when: float | None = None) -> None:
        at = (when if when else time.monotonic()) - self.t0
        self.out.write(self.secrets.mask(f"[{at:7.2f}s] {text}\n"))
        self.out.flush()

    @hookimpl
    def magoo_on_startup(self) -> None:
        if self.engine is None:
            return
        self._tell_backups("could not start")
        engine = self.engine
        steps: list[str] = []
        for slot in engine.slots():
            if slot in engine.actuators:
                continue
            label = slot.configured.wake_label
            if label is None:
                steps.append(f"{slot.spec.role.value} {slot.spec.backend}")
            else:  # a by_wake table's backend comes right after its section's
                steps[-1] += f" ({label}: {slot.spec.backend})"
        chain = " → ".join(steps)
        actuators = ", ".join(slot.spec.backend for slot in engine.actuators)
        self._line(f"ready: {chain}" + (f"; actuators: {actuators}" if actuators else ""))

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
            self._line(f"turn {turn}: reply \"{shown(reply.text)}\"")  # from outside: no escapes, bounded

    @hookimpl
    def magoo_on_speak_start(self, text: str, turn: int | None) -> None:
        self._levels = []
        self._sound_started = time.monotonic()
        self._line(f"{_who(turn, text)}: sound started (microphone muted)")

    @hookimpl
    def magoo_on_speak_chunk(self, level: float) -> None:
        self._levels.append(level)

    @hookimpl
    def magoo_on_speak_end(self, turn: int | None, interrupted: bool) -> None:
        started, self._sound_started = self._sound_started, None
        if started is None:  # the TTS or the player failed before any sound: no duration to tell
            self._line(f"{_who(turn)}: no sound was played")
            return
        peak = max(self._levels, default=0.0)
        how = "interrupted" if interrupted else "ended"
        seconds = time.monotonic() - started
        self._line(f"{_who(turn)}: sound {how} after {seconds:.2f} s ({len(self._levels)} level updates, peak level {peak:.2f})")

    @hookimpl
    def magoo_on_error(self, failure: BackendFailure) -> None:
        self._line(f"error: {failure.message}")

    @hookimpl
    def magoo_on_recovered(self, role: str, backend: str, failures: int, downtime: float) -> None:
        self._line(f"recovered: {role} {backend} works again after {downtime:.1f} s")

    @hookimpl
    def magoo_on_shutdown(self) -> None:
        engine = self.engine
        if engine is None:
            return
        listened = engine.wake_scores.frames > 0 or engine.fatal is None  # a run that could not start never did
        if engine.turns_done == 0 and engine.wake is not None and listened:
            for line in no_wake_story(engine.wake_scores, f"{engine.wake.spec.section} {engine.wake.spec.backend}"):
                self._line(line)
        turns, errors = _count(engine.turns_done, "turn"), _count(engine.errors, "error")
        if engine.fatal is None:
            self._line(f"stopping after {turns}, {errors}")
        else:  # the run exits with 1: what stopped it, not a count that may say "0 errors"
            self._line(f"stopped after {turns}{f', {errors}' if engine.errors else ''}: {engine.fatal}")

    @hookimpl
    def magoo_on_turn_end(self, timeline: TurnTimeline) -> None:
        self._line(f"turn {timeline.turn}: {timeline.summary()}")
        for story in self._stories():
            self._line(f"turn {timeline.turn}: {story}")
        if self.engine is not None:
            self._tell_backups("failed for good")

    def _tell_backups(self, why: str) -> None:
        """One line for each backend whose backup has taken over since the last call."""
        for slot in self.engine.slots():
            if slot.replaced and id(slot) not in self._backups_told:  # the log's warning says why in full
                self._backups_told.add(id(slot))
                configured = slot.configured
                self._line(f"{configured.section} {configured.backend} {why} (the log says why); its backup {slot.spec.backend} runs instead")

    def _stories(self) -> list[str]:
        stories = []
        described: set[int] = set()  # a service serving several roles tells its story once
        for slot in self.engine.slots() if self.engine is not None else ():
            seen = id(slot.instance) in described
            described.add(id(slot.instance))
            describe = None if seen else getattr(slot.instance, "describe_turn", None)
            try:
                story = describe() if callable(describe) else None
            except Exception:  # a plugin's bug must not end the story
                story = None
            if story:
                stories.append(story)
            if getattr(slot, "on_backup", False):  # a service that was not there: say who answered instead
                configured = slot.configured
                stories.append(f"{configured.section} {configured.backend} was not available: its backup "
                               f"{slot.spec.backend} answered for [{configured.role.value}]")
        return stories


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" + ("" if n == 1 else "s")


def no_wake_story(board: WakeScoreboard, detector: str) -> list[str]:
    """Why a run had no turn, from the wake scores: one line per model, then what to check.

    :param detector: the wake detector as the profile names it (``"[wake] openwakeword"``).
    """
    check_microphone = "check the microphone's level (`input` in the log's status line, `input_level` in status.json)"
    if board.frames == 0:
        return [f"no wake word detected: no audio reached {detector}"]
    if not board.reports_scores:
        return [f"no wake word detected; {detector} reports no scores, so how near one came is unknown: {check_microphone}"]
    peaks = board.peaks()
    lines = [f"no wake word detected: {peak}" for peak in peaks]
    near = [peak.label for peak in peaks if peak.near]
    if near:
        lines.append(f"{' and '.join(near)} came near: say it closer to the microphone, or lower its threshold")
    else:
        lines.append(f"no wake word came near its threshold: {check_microphone} and that you say one of {detector}'s models")
    return lines


def _who(turn: int | None, text: str | None = None) -> str:
    """Whose sound a story line is about: a turn's reply, or speech outside a turn (issue 18)."""
    if turn is not None:
        return f"turn {turn}"
    return f"outside a turn (\"{shown(text)}\")" if text else "outside a turn"
