"""The speech envelope of what a player plays, released when it is heard.

mpv measures the level of each block of decoded audio with ffmpeg's ``astats`` filter and prints
it with ``ametadata`` (``frame:N pts:P pts_time:T`` then ``lavfi.astats.Overall.RMS_level=-20.5``)
into a pipe. Decoding runs ahead of the speaker by the output buffer, so :class:`EnvelopePacer`
holds each level until the player's clock says that block is being heard.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

#: samples per measured block: 20 blocks/s at 16 kHz, 28 at 22.05 kHz, 55 at 44.1 kHz
BLOCK_SAMPLES = 800
LEVEL_KEY = "lavfi.astats.Overall.RMS_level"


def level_filter(path: str) -> str:
    """The mpv ``--af`` value that prints one RMS level per block to ``path``.

    ``direct=1`` makes ffmpeg write each line at once instead of buffering 32 KB.
    """
    return (
        f"lavfi=[asetnsamples=n={BLOCK_SAMPLES}:p=0,astats=metadata=1:reset=1,"
        f"ametadata=mode=print:key={LEVEL_KEY}:file={path}:direct=1]"
    )


@dataclass(frozen=True, slots=True)
class Level:
    """The RMS level (0..1 of full scale) of the block that starts at ``position`` seconds."""

    position: float
    level: float


class LevelParser:
    """Turns the text ``ametadata`` prints, fed in arbitrary pieces, into :class:`Level` s."""

    def __init__(self) -> None:
        self._buffer = b""
        self._position: float | None = None

    def feed(self, data: bytes) -> list[Level]:
        self._buffer += data
        *lines, self._buffer = self._buffer.split(b"\n")
        levels = []
        for raw in lines:
            line = raw.decode("ascii", "replace").strip()
            if line.startswith("frame:"):
                self._position = _pts_time(line)
            elif line.startswith(LEVEL_KEY + "=") and self._position is not None:
                levels.append(Level(self._position, _amplitude(line.partition("=")[2])))
                self._position = None
        return levels


def _pts_time(line: str) -> float | None:
    for field in line.split():
        if field.startswith("pts_time:"):
            try:
                return float(field.removeprefix("pts_time:"))
            except ValueError:
                return None
    return None


def _amplitude(decibels: str) -> float:
    """dBFS (``-inf`` for digital silence) → linear RMS, 0..1."""
    try:
        value = float(decibels)
    except ValueError:
        return 0.0
    if math.isnan(value) or value == -math.inf:
        return 0.0
    return min(1.0, 10 ** (value / 20))


class EnvelopePacer:
    """Releases levels at the moment their audio is heard, through ``emit(level, duration)``.

    The clock comes from the player: :meth:`heard` anchors "stream position ``position`` is
    coming out of the speaker now" (mpv's ``time-pos`` accounts for the output delay); between
    anchors the position runs at real time. Levels arrive earlier, from the decoder.
    Runs on the event loop; ``emit`` is called there.
    """

    def __init__(self, emit: Callable[[float, float], None]) -> None:
        self._emit = emit
        self._pending: deque[Level] = deque()
        self._anchor: tuple[float, float] | None = None  # (stream position, monotonic time)
        self._last_duration = BLOCK_SAMPLES / 22050
        self._wake = asyncio.Event()
        self.emitted = 0

    def add(self, levels: list[Level]) -> None:
        self._pending.extend(levels)
        self._wake.set()

    def heard(self, position: float, *, at: float | None = None) -> None:
        """Stream ``position`` (s) is heard at monotonic time ``at`` (default: now)."""
        self._anchor = (position, time.monotonic() if at is None else at)
        self._wake.set()

    def position(self) -> float | None:
        """The stream position being heard now, or None before playback started."""
        if self._anchor is None:
            return None
        position, at = self._anchor
        return position + time.monotonic() - at

    async def run(self) -> None:
        """Emit levels as they become due, until cancelled."""
        while True:
            now = self.position()
            if not self._pending or now is None:
                self._wake.clear()
                await self._wake.wait()
                continue
            due = self._pending[0].position - now
            if due > 0:
                self._wake.clear()
                # not wait_for: on Python 3.11 it can swallow a cancellation that comes as the
                # event is set, and this loop would then wait for good (a barge-in hung on it)
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(due):
                        await self._wake.wait()
                continue
            self._release(self._pending.popleft())

    def flush(self) -> None:
        """The stream ended: everything decoded has been heard; emit what is left."""
        while self._pending:
            self._release(self._pending.popleft())

    def _release(self, level: Level) -> None:
        if self._pending:
            self._last_duration = max(0.0, self._pending[0].position - level.position) or self._last_duration
        self.emitted += 1
        self._emit(level.level, self._last_duration)
