"""Reading a profile and its ``.env`` from disk: bounded in size and nesting, every problem one line.

Whatever the bytes on disk, these functions return text or data, or raise :class:`FileProblem`
(or ``OSError`` for a file that cannot be opened): never ``UnicodeDecodeError``,
``RecursionError`` or ``MemoryError``. The limits are far beyond any real profile and keep a
hostile or mistaken file (a recording renamed ``.toml``, a generated array nested thousands deep)
from costing more than a few tens of MB or a crash.
"""

from __future__ import annotations

import codecs
import io
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .toml_lines import TomlLines, toml_error

#: the largest profile read, in bytes (real profiles are a few kB)
MAX_BYTES = 1024 * 1024
#: the largest .env read, in bytes (a few keys; python-dotenv's parser needs ~65 bytes per byte of a quoted value)
MAX_DOTENV_BYTES = 64 * 1024
#: the deepest nesting of tables, arrays and inline tables in a profile (the examples reach 3)
MAX_DEPTH = 32

_UTF16_32 = (
    (codecs.BOM_UTF32_LE, "UTF-32"), (codecs.BOM_UTF32_BE, "UTF-32"),
    (codecs.BOM_UTF16_LE, "UTF-16"), (codecs.BOM_UTF16_BE, "UTF-16"),
)
_SAVE_AS_UTF8 = "save it as UTF-8 (in Notepad: Save As, Encoding: UTF-8)"


class FileProblem(Exception):
    """What is wrong with a file's bytes or syntax, in the words of a :class:`ProfileIssue`."""

    def __init__(
        self, message: str, suggestion: str | None = None, *, line: int | None = None,
        section: str = "", key: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message, self.suggestion, self.line, self.section, self.key = message, suggestion, line, section, key


def read_text(path: Path, what: str = "profile", limit: int = MAX_BYTES) -> str:
    """The file's text: UTF-8, a leading byte order mark dropped. Blocking.

    :param what: how messages call the file ("profile", ".env").
    :param limit: the most bytes it may have.
    :raises OSError: the file cannot be opened or read (not found, a folder, no permission).
    :raises FileProblem: larger than ``limit``, or not UTF-8 (naming the encoding when
        it is UTF-16 or UTF-32, and the line of the first bad byte otherwise).
    """
    with open(path, "rb") as file:  # noqa: PTH123 - a FIFO or /dev/stdin is read as far as the limit, too
        data = file.read(limit + 1)
    if len(data) > limit:
        raise _too_big(path, what, limit)
    return decode(data, what)


def decode(data: bytes, what: str = "profile") -> str:
    """UTF-8 bytes as text without a byte order mark; :class:`FileProblem` for any other encoding."""
    for bom, name in _UTF16_32:
        if data.startswith(bom):
            raise FileProblem(f"the {what} is {name} text, not UTF-8", _SAVE_AS_UTF8)
    if data.count(b"\x00") * 4 > len(data):  # every other byte NUL: UTF-16 without its mark (valid UTF-8!)
        raise FileProblem(f"the {what} is UTF-16 text (no byte order mark), not UTF-8", _SAVE_AS_UTF8)
    try:
        return data.decode("utf-8").removeprefix("\ufeff")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise FileProblem(
            f"the {what} is not UTF-8 text: byte 0x{data[exc.start]:02x} ({exc.reason})",
            _SAVE_AS_UTF8,
            line=line,
        ) from None


def parse_toml(text: str, lines: TomlLines) -> dict[str, Any]:
    """tomllib's data for ``text``, after checking its nesting; ``lines`` is ``TomlLines(text)``.

    :raises FileProblem: a TOML syntax error (a value or table defined twice names both lines),
        or nesting deeper than :data:`MAX_DEPTH`.
    """
    if lines.max_depth > MAX_DEPTH:
        raise _too_deep(lines.depth_line)
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise _syntax(exc, lines) from None
    except RecursionError:  # the scan above should have caught it; tomllib's recursion is the limit
        raise _too_deep(None) from None
    if _depth(data) > MAX_DEPTH:  # dotted keys and headers: [a.b.c.d ...]
        raise _too_deep(None)
    return data


@dataclass(frozen=True)
class Dotenv:
    """A ``.env`` file's variables, and the lines python-dotenv could not read (1-based)."""

    values: dict[str, str] = field(default_factory=dict)
    bad_lines: tuple[int, ...] = ()


def read_dotenv(path: Path) -> Dotenv:
    """The ``NAME=value`` lines of a ``.env`` file (python-dotenv's format, ``${OTHER}`` expanded),
    empty when there is none. Lines it cannot read are listed, not logged. Blocking.

    :raises FileProblem: the file is larger than :data:`MAX_DOTENV_BYTES` or not UTF-8.
    :raises OSError: it exists but cannot be read.
    """
    if not path.is_file():
        return Dotenv()
    from dotenv.main import resolve_variables
    from dotenv.parser import parse_stream

    bindings = list(parse_stream(io.StringIO(read_text(path, ".env", MAX_DOTENV_BYTES))))
    values = resolve_variables(((b.key, b.value) for b in bindings if b.key is not None), override=True)
    return Dotenv(
        {name: value for name, value in values.items() if value is not None},
        tuple(b.original.line for b in bindings if b.error),
    )


# ---- problems -----------------------------------------------------------------------------------


def _too_big(path: Path, what: str, limit: int) -> FileProblem:
    try:
        size = f"{path.stat().st_size:,} bytes"
    except OSError:
        size = "larger than that"
    return FileProblem(
        f"the {what} is {size}; magoo reads {limit:,} bytes ({_binary(limit)}) at most",
        "is this the right file? A profile is a few kB of TOML" if what == "profile" else "is this the right file?",
    )


def _binary(size: int) -> str:
    return f"{size >> 20} MiB" if size % (1 << 20) == 0 else f"{size >> 10} KiB"


def _too_deep(line: int | None) -> FileProblem:
    return FileProblem(
        f"nested more than {MAX_DEPTH} levels deep (tables, dotted keys, arrays, inline tables);"
        f" magoo reads profiles nested {MAX_DEPTH} levels at most",
        "flatten it: real profiles nest 3 or 4 levels",
        line=line,
    )


def _syntax(exc: tomllib.TOMLDecodeError, lines: TomlLines) -> FileProblem:
    message, line = toml_error(exc)
    twice = lines.twice(line) if line is not None and message.startswith("Cannot ") else None
    if twice is None:
        return FileProblem(message, line=line)
    first, again = twice
    where = f"on lines {first.line} and {again.line}"
    if first.table and again.table:
        message, hint = f"declared twice, {where}", "merge them into one table"
    elif not first.table and not again.table:
        message, hint = f"set twice, {where}", "keep one of them"
    else:
        kinds = ("a table", "a key") if first.table else ("a key", "a table")
        message, hint = f"defined twice, as {kinds[0]} on line {first.line} and as {kinds[1]} on line {again.line}", (
            "keep one of the two"
        )
    return FileProblem(message, hint, line=again.line, section=again.section, key=again.key)


def _depth(data: Mapping[str, Any]) -> int:
    """How deep tables and arrays nest below ``data`` (``{"a": {"b": 1}}`` is 1), without recursion."""
    deepest, stack = 0, [(data, 0)]
    while stack:
        value, depth = stack.pop()
        deepest = max(deepest, depth)
        if depth > MAX_DEPTH:
            return depth
        children = value.values() if isinstance(value, Mapping) else value
        stack.extend((child, depth + 1) for child in children if isinstance(child, Mapping | list))
    return deepest
