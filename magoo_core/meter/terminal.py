"""The meter's terminal: the alternate screen, keys one at a time, frames drawn in place.

Plain ANSI escape codes and termios, nothing else: it works over SSH and in tmux. When stdout is
not a terminal the frames are written one after another (a log of the screen); when stdin is not
a terminal there are no keys (Ctrl-C still stops). Used on the event loop's thread only.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import sys
from collections.abc import Callable
from typing import TextIO

ENTER = "\x1b[?1049h\x1b[?25l\x1b[H\x1b[2J"  # the alternate screen, the cursor hidden
LEAVE = "\x1b[?25h\x1b[?1049l"


class Terminal:
    """``with Terminal() as terminal:`` takes the screen and the keyboard, and gives them back
    however the block ends.

    :param out: where frames go (stdout).
    :param keys: where keys come from (stdin).
    :param mask: applied to each frame's text before it is written (the profile's secrets).
    """

    def __init__(self, out: TextIO | None = None, keys: TextIO | None = None, mask: Callable[[str], str] | None = None) -> None:
        self.out = out or sys.stdout
        self._mask = mask or (lambda text: text)
        self.keys = keys or sys.stdin
        self.screen = self.out.isatty()
        self._fd = self.keys.fileno() if self.keys.isatty() else None
        self._saved: list | None = None
        self._shown: list[str] = []  # the lines on the screen now
        self._width = 0
        self._reading = False

    def __enter__(self) -> Terminal:
        if self._fd is not None:
            import termios
            import tty

            self._saved = termios.tcgetattr(self._fd)
            tty.setcbreak(self._fd)  # keys without Enter, no echo; Ctrl-C still interrupts
        if self.screen:
            self.out.write(ENTER)
            self.out.flush()
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._reading:
            with contextlib.suppress(Exception):
                asyncio.get_running_loop().remove_reader(self._fd)
            self._reading = False
        if self._saved is not None:
            import termios

            termios.tcsetattr(self._fd, termios.TCSADRAIN, self._saved)
            self._saved = None
        if self.screen:
            self.out.write(LEAVE)
            self.out.flush()

    @property
    def width(self) -> int:
        return shutil.get_terminal_size((80, 24)).columns

    def on_key(self, handle: Callable[[str], None]) -> bool:
        """Call ``handle(key)`` on the loop for each key pressed; False when there is no keyboard."""
        if self._fd is None:
            return False
        fd = self._fd

        def ready() -> None:
            try:
                data = os.read(fd, 64)
            except OSError:
                data = b""
            for key in data.decode(errors="ignore"):
                handle(key)

        asyncio.get_running_loop().add_reader(fd, ready)
        self._reading = True
        return True

    def draw(self, lines: list[str]) -> None:
        """One frame: on a terminal, only the lines that changed since the last frame are rewritten
        (most of the screen stays the same ten times a second); else the frame is appended."""
        lines = self._mask("\n".join(lines)).split("\n")
        if not self.screen:
            self.out.write("\n".join(lines) + "\n\n")
            self.out.flush()
            return
        width = self.width
        if width != self._width:  # resized: everything again
            self._shown, self._width = [], width
            self.out.write("\x1b[H\x1b[2J")
        changes = [f"\x1b[{row};1H{line}\x1b[K" for row, line in enumerate(lines, 1)
                   if row > len(self._shown) or self._shown[row - 1] != line]
        if len(lines) < len(self._shown):
            changes.append(f"\x1b[{len(lines) + 1};1H\x1b[J")
        self._shown = lines
        if changes:
            self.out.write("".join(changes))
            self.out.flush()
