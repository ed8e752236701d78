"""The conversation a chat responder remembers: the last exchanges, forgotten after a silence,
optionally kept in a file across restarts.

An exchange is what the user said and what the assistant said back (as spoken: a reply cut by
barge-in is kept as cut). Times are wall-clock seconds (``time.time()``), so a conversation kept
in a file is forgotten after the same silence whether or not magoo was restarted meanwhile.
Runs on the event loop; the file is written in a worker thread, atomically.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import time
from collections import deque
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from magoo_core.output_files import OutputError, write_atomically

log = logging.getLogger("magoo.openai")

FORMAT = 1


@dataclass
class Exchange:
    """One turn of the conversation: the user's words, the assistant's (as spoken), when (wall clock)."""

    turn: int
    user: str
    assistant: str
    at: float


class Conversation:
    """The last ``history`` exchanges, forgotten ``forget_after`` seconds after the last one.

    :param path: a JSON file the conversation is kept in (read at :meth:`load`, written after each
        change); None keeps it in memory only.
    :param clock: wall-clock seconds (tests pass their own).
    """

    def __init__(
        self, history: int, forget_after: float, path: Path | None = None, *, clock: Callable[[], float] = time.time
    ) -> None:
        self.forget_after = forget_after
        self.path = path
        self._clock = clock
        self._exchanges: deque[Exchange] = deque(maxlen=history)
        self._writing: asyncio.Task | None = None

    def __len__(self) -> int:
        return len(self._exchanges)

    def messages(self) -> list[dict[str, str]]:
        """The remembered exchanges as chat messages (user, assistant, ...), oldest first; forgets
        them first when the last one is older than ``forget_after``."""
        self._forget_if_stale()
        messages: list[dict[str, str]] = []
        for exchange in self._exchanges:
            messages.append({"role": "user", "content": exchange.user})
            if exchange.assistant:
                messages.append({"role": "assistant", "content": exchange.assistant})
        return messages

    def add(self, turn: int, user: str, assistant: str) -> None:
        """Remember an exchange (the assistant's side may be "" when it said nothing)."""
        self._forget_if_stale()
        self._exchanges.append(Exchange(turn, user, assistant, self._clock()))
        self._save()

    def cut(self, turn: int, spoken: str) -> bool:
        """The reply of ``turn`` was cut short: keep only ``spoken``, what was said of it.
        Returns whether that turn was remembered."""
        for exchange in reversed(self._exchanges):
            if exchange.turn == turn:
                exchange.assistant = spoken + " …" if spoken else ""
                self._save()
                return True
        return False

    def _forget_if_stale(self) -> None:
        if self._exchanges and self._clock() - self._exchanges[-1].at > self.forget_after:
            log.info("forgetting the conversation (%d exchanges): no turn for %.0f s", len(self._exchanges), self.forget_after)
            self._exchanges.clear()
            self._save()

    # ---- the file -------------------------------------------------------------------------------

    def load(self) -> None:
        """Read the file, if any (blocking, small). A file that cannot be read as a conversation is
        renamed to ``<name>.bad`` with one warning, and the conversation starts empty."""
        if self.path is None or not self.path.exists():
            return
        try:
            document = json.loads(self.path.read_text(encoding="utf-8"))
            if document.get("format") != FORMAT:
                raise ValueError(f"format {document.get('format')!r}, expected {FORMAT}")
            exchanges = [Exchange(**item) for item in document["exchanges"]]
        except (OSError, ValueError, TypeError, KeyError, AttributeError) as exc:
            aside = self.path.with_name(self.path.name + ".bad")
            try:
                os.replace(self.path, aside)
                kept = f"it is kept as {aside}"
            except OSError:
                kept = "it is left as it is"
            log.warning("cannot read the conversation in %s (%s): starting a new one; %s", self.path, exc, kept)
            return
        self._exchanges.extend(exchanges)
        self._forget_if_stale()

    def _save(self) -> None:
        if self.path is None:
            return
        data = json.dumps({"format": FORMAT, "exchanges": [asdict(e) for e in self._exchanges]}, ensure_ascii=False, indent=1)
        previous = self._writing

        async def write() -> None:
            if previous is not None:  # in order: the last change is the one that stays
                await asyncio.gather(previous, return_exceptions=True)
            try:
                await asyncio.to_thread(write_atomically, self.path, data.encode("utf-8"), mode=0o600)
            except (OutputError, OSError) as exc:
                log.warning("cannot keep the conversation in %s: %s", self.path, exc)

        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # a reply closed by the garbage collector, outside the loop: write now
            try:
                write_atomically(self.path, data.encode("utf-8"), mode=0o600)
            except (OutputError, OSError) as exc:
                log.warning("cannot keep the conversation in %s: %s", self.path, exc)
            return
        self._writing = loop.create_task(write(), name="magoo-openai-memory")

    async def flush(self) -> None:
        """Wait until the last change is in the file."""
        if self._writing is not None:
            await asyncio.gather(self._writing, return_exceptions=True)
