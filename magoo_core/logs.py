"""How ``magoo run`` writes its log: to stderr, as text, journald lines or JSON, secrets masked.

Every component logs under ``magoo.<tag>`` (``magoo.engine``, ``magoo.mpv``, ``magoo.servo`` ...).
Nothing is logged per audio frame above DEBUG; the engine writes one stats line per heartbeat.

- ``text``: ``12:00:01 INFO    magoo.engine: ...`` for a terminal.
- ``journal``: ``<6>magoo.engine: ...``: journald adds the time itself and reads the ``<N>``
  prefix as the line's priority, so ``journalctl -p warning`` works.
- ``json``: one JSON object per line (``time``, ``level``, ``logger``, ``message``, ``exception``)
  for log shippers.

``auto`` is ``journal`` when stderr is connected to the journal (systemd sets ``$JOURNAL_STREAM``
to its device and inode), else ``text``.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from collections.abc import Iterable
from datetime import datetime, timezone
from typing import Literal, TextIO

from .secrets import CONTROL as _CONTROL
from .secrets import Secrets, escape_controls

LogFormat = Literal["auto", "text", "journal", "json"]
#: syslog priorities of Python's levels, for journald's ``<N>`` prefix
_PRIORITY = {logging.CRITICAL: 2, logging.ERROR: 3, logging.WARNING: 4, logging.INFO: 6, logging.DEBUG: 7}


def setup_logging(
    level: str,
    *,
    log_format: LogFormat = "auto",
    secrets: Secrets | Iterable[str] = (),
    stream: TextIO | None = None,
) -> logging.Handler:
    """Send every log record at ``level`` or above to ``stream`` (stderr) in ``log_format``,
    with each of ``secrets`` masked wherever it appears, in any encoding (messages and tracebacks
    alike; ``profile.secrets``).

    Replaces the root logger's handlers, so calling it again (tests, a second run) does not
    duplicate lines. Returns the handler.
    """
    stream = stream if stream is not None else sys.stderr
    chosen = _resolve(log_format, stream)
    inner: logging.Formatter
    if chosen == "json":
        inner = JsonFormatter()
    elif chosen == "journal":
        inner = JournalFormatter()
    else:
        inner = logging.Formatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s", "%H:%M:%S")
    handler = logging.StreamHandler(stream)
    handler.setFormatter(RedactingFormatter(inner, secrets))
    root = logging.getLogger()
    for old in root.handlers[:]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(getattr(logging, level.upper()))
    return handler


class RedactingFormatter(logging.Formatter):
    """Formats with ``inner``, every secret masked by :class:`~magoo_core.secrets.Secrets`.

    The message and the traceback are masked before ``inner`` formats them (so JSON escaping
    cannot hide a secret that holds a quote or a backslash), and the finished text once more (a
    secret in a logger's name, or split by the format). Control characters in the message (not
    in a traceback, which has lines of its own) are escaped first (:func:`printable`): one record
    is one line.
    """

    def __init__(self, inner: logging.Formatter, secrets: Secrets | Iterable[str]) -> None:
        super().__init__()
        self.inner = inner
        self.secrets = secrets if isinstance(secrets, Secrets) else Secrets(secrets)

    def format(self, record: logging.LogRecord) -> str:
        mask = self.secrets.mask
        message = record.getMessage()
        if _CONTROL.search(message):  # a name, a transcript, a server's answer: never a second line
            message = printable(message)
        exc_text = record.exc_text
        if record.exc_info and not exc_text:
            exc_text = self.inner.formatException(record.exc_info)
        fields = {"msg": mask(message), "args": None, "exc_info": None, "exc_text": mask(exc_text) if exc_text else None}
        if record.stack_info:
            fields["stack_info"] = mask(record.stack_info)
        return mask(self.inner.format(logging.makeLogRecord({**record.__dict__, **fields})))


def printable(text: str) -> str:
    """``text`` with each control character but tab written as its escape (``\\n``, ``\\x1b``), so that
    text from outside (a profile's name, a transcript, a server's error) stays on one line and
    cannot move a terminal's cursor."""
    return escape_controls(text)


class JournalFormatter(logging.Formatter):
    """``<priority>logger: message``; tracebacks follow on their own lines, as journald keeps them."""

    def __init__(self) -> None:
        super().__init__("%(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        priority = _PRIORITY.get(record.levelno, 6 if record.levelno < logging.WARNING else 3)
        return f"<{priority}>{super().format(record)}"


class JsonFormatter(logging.Formatter):
    """One JSON object per record: ``time`` (ISO 8601, UTC), ``level``, ``logger``, ``message``,
    and ``exception`` (the formatted traceback) when there is one."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            entry["exception"] = record.exc_text
        return json.dumps(entry, ensure_ascii=False)


def _resolve(log_format: LogFormat, stream: TextIO) -> str:
    if log_format != "auto":
        return log_format
    return "journal" if _is_journal(stream) else "text"


def _is_journal(stream: TextIO) -> bool:
    """True when ``stream`` is the journal's socket (systemd's ``$JOURNAL_STREAM`` is ``dev:inode``)."""
    expected = os.environ.get("JOURNAL_STREAM", "")
    try:
        stat = os.fstat(stream.fileno())
    except (OSError, ValueError, AttributeError):
        return False
    return bool(expected) and expected == f"{stat.st_dev}:{stat.st_ino}"
