"""The meter's loop: a frame every 1/``rate`` s, keys handled as they come, until quit or the end.

Also :class:`LogTail`, where a profile run in this process logs while the screen is taken, and
:func:`run_profile`, the whole of ``magoo meter -p PROFILE``.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from typing import TYPE_CHECKING, Protocol

from .board import Board
from .render import frame
from .terminal import Terminal

if TYPE_CHECKING:
    from ..engine import Engine, RunResult

#: frames a second (the issue asks for at least ten)
RATE = 12.0
#: log lines kept (and shown: the last few) while the screen is taken
LOG_LINES = 200
LOG_SHOWN = 3


class Feed(Protocol):
    source: str
    finished: asyncio.Event

    async def open(self, board: Board) -> None: ...
    def poll(self, board: Board, now: float) -> None: ...
    async def mute(self, board: Board) -> None: ...
    async def stop(self, board: Board) -> None: ...
    async def quit(self) -> None: ...
    async def close(self) -> None: ...


class LogTail:
    """A stream for :func:`magoo_core.logs.setup_logging`: keeps the last lines, prints nothing."""

    def __init__(self, size: int = LOG_LINES) -> None:
        self.lines: deque[str] = deque(maxlen=size)

    def write(self, text: str) -> int:
        self.lines.extend(line for line in text.splitlines() if line.strip())
        return len(text)

    def flush(self) -> None:
        pass

    def isatty(self) -> bool:
        return False


async def show(feed: Feed, terminal: Terminal, *, rate: float = RATE, log: LogTail | None = None) -> None:
    """Draw ``feed`` on ``terminal`` until ``q`` (then ``feed.quit()``) or the feed finishes.

    Keys: ``m`` mutes or unmutes, ``s`` stops what is being said, ``q`` quits. A key's command
    starts at once; its effect shows in the next frame.
    """
    board = Board()
    quitting = asyncio.Event()
    commands: set[asyncio.Task] = set()

    async def command(work) -> None:
        try:
            await work
        except Exception as exc:  # a closed connection, a refused command: shown, the meter goes on
            board.note = f"failed: {exc}"

    def pressed(key: str) -> None:
        key = key.lower()
        if key == "q":
            quitting.set()
        elif key in ("m", "s"):
            task = asyncio.get_running_loop().create_task(command(feed.mute(board) if key == "m" else feed.stop(board)))
            commands.add(task)
            task.add_done_callback(commands.discard)

    await feed.open(board)
    has_keys = terminal.on_key(pressed)
    period = 1.0 / rate
    try:
        while not feed.finished.is_set():
            if quitting.is_set():
                await feed.quit()
                return
            now = time.monotonic()
            feed.poll(board, now)
            lines = frame(board, now, width=terminal.width, colour=terminal.screen, source=feed.source)
            if log is not None:
                lines[-1:-1] = [line[: terminal.width] for line in list(log.lines)[-LOG_SHOWN:]]
            if not has_keys:
                lines[-1] = "(no keyboard: Ctrl-C stops)"
            terminal.draw(lines)
            await asyncio.sleep(max(0.0, now + period - time.monotonic()))
    finally:
        for task in list(commands):
            task.cancel()
        await feed.close()


async def run_profile(engine: Engine, terminal: Terminal, *, rate: float = RATE, log: LogTail | None = None) -> RunResult:
    """Run ``engine`` (as ``magoo run`` would) with the meter on it; quitting the meter stops it."""
    from .feeds import LocalFeed

    feed = LocalFeed(engine)
    running = asyncio.get_running_loop().create_task(engine.run(), name="magoo-meter engine")
    running.add_done_callback(lambda _: feed.finished.set())
    try:
        await show(feed, terminal, rate=rate, log=log)
    finally:
        if not running.done():
            engine.request_stop()
    return await running
