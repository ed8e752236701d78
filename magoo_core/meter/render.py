"""The meter's screen as lines of plain text with ANSI colours: no curses, works over SSH.

:func:`frame` draws a :class:`~.board.Board`; the lines never exceed ``width`` visible characters
(colour codes do not count), so the terminal never wraps them.
"""

from __future__ import annotations

import math

from .board import Board

#: the input bar's range, dBFS
FLOOR_DB = -60.0
#: SGR colours (:func:`frame` with ``colour=False`` leaves them out)
RED, YELLOW, GREEN, DIM, BOLD, RESET = "\x1b[31m", "\x1b[33m", "\x1b[32m", "\x1b[2m", "\x1b[1m", "\x1b[0m"
KEYS = "m mute/unmute · s stop · q quit"


def decibels(level: float) -> float:
    """A level (0..1 of full scale) in dBFS; -inf for silence."""
    return 20 * math.log10(level) if level > 0 else -math.inf


def level_bar(rms: float, peak: float, width: int) -> str:
    """``rms`` as ``#`` and the peak as ``|`` on a bar from :data:`FLOOR_DB` to 0 dBFS."""
    def cells(level: float) -> int:
        db = decibels(level)
        return 0 if db <= FLOOR_DB else min(width, round((db - FLOOR_DB) / -FLOOR_DB * width))

    filled, at = cells(rms), cells(peak)
    bar = ["#" if i < filled else "." for i in range(width)]
    if at > 0:
        bar[at - 1] = "|"
    return "".join(bar)


def score_bar(score: float, threshold: float | None, width: int) -> str:
    """``score`` (0..1) as ``#``, the threshold marked ``|`` (``+`` where the score passes it)."""
    filled = min(width, round(max(0.0, score) * width))
    bar = ["#" if i < filled else "." for i in range(width)]
    if threshold is not None:
        mark = min(width - 1, max(0, round(threshold * width) - 1))
        bar[mark] = "+" if filled > mark else "|"
    return "".join(bar)


def _cut(text: str, width: int) -> str:
    return text if len(text) <= width else text[: max(0, width - 1)] + "…"


class _Lines:
    def __init__(self, width: int, colour: bool) -> None:
        self.width, self.colour, self.lines = width, colour, []

    def paint(self, text: str, style: str) -> str:
        return f"{style}{text}{RESET}" if self.colour and style else text

    def add(self, *parts: tuple[str, str] | str) -> None:
        """Parts of one line, each plain or (text, style); cut at the width."""
        room, out = self.width, []
        for part in parts:
            text, style = (part, "") if isinstance(part, str) else part
            text = _cut(text, room) if len(text) > room else text
            room -= len(text)
            out.append(self.paint(text, style))
            if room <= 0:
                break
        self.lines.append("".join(out))


def frame(board: Board, now: float, *, width: int = 80, colour: bool = True, source: str = "") -> list[str]:
    """The screen for ``board`` at ``now`` (monotonic seconds), ``width`` characters wide."""
    out = _Lines(max(40, width), colour)
    bar = max(10, out.width - 40)
    mic = ("MUTED", RED + BOLD) if board.muted else ("live", GREEN)
    out.add(("magoo meter", BOLD), f" {board.name}" if board.name else "", f" {source}" if source else "")
    out.add("state ", (board.state.upper(), BOLD), "   mic ", mic, "   speaking" if board.speaking else "")
    db = decibels(board.input)
    clip = board.clipping(now)
    out.add("input  ", (level_bar(board.input, board.peak, bar), RED if clip else GREEN),
            f" {db:6.1f} dBFS" if db > -200 else "   -inf dBFS", ("  CLIP" if clip else "", RED + BOLD))
    if board.speech is None:
        out.add("speech ", ("(no voice activity reported yet)", DIM))
    else:
        since = "" if board.speech_at is None else f" for {now - board.speech_at:4.1f} s"
        out.add("speech ", ("● speaking", YELLOW + BOLD) if board.speech else ("· silent", DIM), since)
    out.add("")
    if not board.wake:
        out.add(("wake words: no scores (no wake word, or a detector that does not give its scores)", DIM))
    for label, model in sorted(board.wake.items()):
        over = model.threshold is not None and model.score >= model.threshold
        near = model.threshold is not None and model.score >= model.threshold / 2
        style = RED + BOLD if over else YELLOW if near else GREEN
        threshold = "  ?  " if model.threshold is None else f"{model.threshold:.2f}"
        name = _cut(label, 14).ljust(14)
        out.add(f"{name} ", (score_bar(model.score, model.threshold, bar), style),
                f" {model.score:.2f}/{threshold}", f"  peak {model.peak:.2f}")
    out.add("")
    turn = board.turn
    if turn is None:
        out.add(("no turn yet", DIM))
    else:
        status = "in progress" if turn.outcome is None else turn.outcome
        out.add(f"turn {turn.number}: ", (status, GREEN if status in ("ok", "in progress") else RED),
                f"  woken by {turn.wake}" if turn.wake else "", f"  ({turn.error})" if turn.error else "")
        if board.partial and turn.heard is None:
            out.add("  hearing ", (f'"{board.partial}"', DIM))
        out.add("  heard    ", f'"{turn.heard}"' if turn.heard is not None else "-")
        out.add("  answered ", f'"{turn.answered}"' if turn.answered is not None else "-")
        if turn.steps:
            out.add("  " + " → ".join(f"{name} {at:.2f}" for name, at in turn.steps) + " s")
    out.add("")
    out.add((board.note, YELLOW) if board.note else "", )
    out.add((KEYS, DIM))
    return out.lines
