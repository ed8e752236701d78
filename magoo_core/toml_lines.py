"""Where things are in a TOML file: tomllib reports no positions, so profile errors find lines here."""

from __future__ import annotations

import bisect
import re
import tomllib
from dataclasses import dataclass

# Every pattern is a single character class repeated, or a literal: the scanner jumps from one
# character that matters to the next, so its time and memory grow linearly with the text,
# whatever a string, a comment or a line holds.
_BLANK = re.compile(r"[ \t\r\n]*")
_SPACE = re.compile(r"[ \t]*")
_BARE = re.compile(r"[A-Za-z0-9_-]+")
_VALUE_STOP = re.compile(r"[\"'\[\]{}#\n]")
_BASIC_STOP = re.compile(r'[\\"\n]')
_LITERAL_STOP = re.compile(r"['\n]")
_MULTILINE_BASIC_STOP = re.compile(r'\\|"""')


@dataclass(frozen=True)
class Definition:
    """One header or ``key =`` line, as :meth:`TomlLines.twice` reports it.

    :param section: ``"[engine]"``, ``"[[actuators]] #2"``, ``"[player.backup]"``; ``""`` for the top level.
    :param key: the dotted key as written (``"models"``, ``"a.b"``); None for a table header.
    """

    line: int
    section: str
    key: str | None
    path: tuple  # absolute: header parts, then key parts; an array table's part is followed by its number
    table_depth: int  # how much of path is the table the definition is in (all of it for a header)

    @property
    def table(self) -> bool:
        return self.key is None


class TomlLines:
    """Line numbers of table headers and keys, read from the raw TOML text in one linear pass.

    Not a TOML parser: it knows headers (``[stt]``, ``[[actuators]]``, dotted ``[stt.options]``),
    ``key =`` lines, strings of the four kinds, comments, and brackets, enough to skip the insides
    of values. Invalid TOML never makes it fail, only miss lines.

    :ivar max_depth: the deepest nesting of tables, arrays and inline tables: ``[a.b]`` is 2 deep,
        ``x = [[1]]`` in it 4 (as deep as tomllib's data will be, below its top-level table).
    :ivar depth_line: the line where that depth was first reached (None when nothing nests).
    """

    def __init__(self, text: str) -> None:
        self.sections: dict[str, int] = {}
        self.keys: dict[tuple[str, str], int] = {}
        self.max_depth = 0
        self.depth_line: int | None = None
        self._text = text
        self._definitions: list[Definition] = []
        self._arrays: dict[tuple, int] = {}  # array of tables (absolute path) -> tables so far
        self._top_arrays: dict[str, int] = {}
        self._current, self._in_subtable, self._table, self._shown = "", False, (), ""
        self._line, self._counted = 1, 0
        self._scan()

    def section(self, section: str) -> int | None:
        """The header's line; for an inline table (``stt = {...}``) the key's line."""
        if section in self.sections:
            return self.sections[section]
        name = re.sub(r"\s#\d+$|[\[\]]", "", section)
        if "." in name:  # a subtable ([player.backup]): its header is a key of the parent
            parent, _, child = name.partition(".")
            return self.keys.get((f"[{parent}]", child))
        return self.keys.get(("", name)) if name else None

    def key(self, section: str, key: str) -> int | None:
        """A key's line; at the top level, a key may also be written as a section header."""
        line = self.keys.get((section, key))
        if line is None and not section:
            line = self.sections.get(f"[{key}]") or self.sections.get(f"[[{key}]] #1")
        return line

    def at(self, path: tuple[str, ...]) -> int | None:
        """The line where the table or key at the absolute ``path`` is first defined
        (``("responder", "by_wake", "alexa", "system")``), as a header, a dotted key or a key;
        None when it is not found (a key inside an inline table, an array of tables)."""
        for definition in self._definitions:
            if definition.path == path:
                return definition.line
        return None

    def twice(self, line: int) -> tuple[Definition, Definition] | None:
        """For a tomllib error at ``line`` ("Cannot overwrite a value", "Cannot declare ... twice"):
        the earlier definition the one there collides with, and that one; None when none is found."""
        lines = [d.line for d in self._definitions]
        index = bisect.bisect_right(lines, line) - 1
        if index < 0:
            return None
        later = self._definitions[index]
        earlier = [d for d in self._definitions[:index] if d.path == later.path]
        earlier = earlier or [d for d in self._definitions[:index] if _collide(d, later)]
        if not earlier and later.table:  # [[e]] after [e]
            earlier = [d for d in self._definitions[:index] if d.table and d.path == later.path[:-1]]
        return (earlier[0], later) if earlier else None

    # ---- the scan ----

    def _scan(self) -> None:
        text, end = self._text, len(self._text)
        pos = 0
        while True:
            pos = _BLANK.match(text, pos).end()
            if pos >= end:
                return
            if text[pos] == "#":
                pos = self._end_of_line(pos)
            elif text[pos] == "[":
                pos = self._header(pos)
            else:
                pos = self._key_value(pos)

    def _header(self, pos: int) -> int:
        line = self._line_at(pos)
        array = self._text.startswith("[[", pos)
        parts, _ = self._dotted_key(pos + (2 if array else 1))
        if parts:
            self._add_header(parts, array, line)
        return self._end_of_line(pos)

    def _add_header(self, parts: list[str], array: bool, line: int) -> None:
        if array and len(parts) == 1:
            self._top_arrays[parts[0]] = self._top_arrays.get(parts[0], 0) + 1
        count = self._top_arrays.get(parts[0], 0)
        self._current = f"[[{parts[0]}]] #{count}" if count else f"[{parts[0]}]"
        self.sections.setdefault(self._current, line)
        self._in_subtable = len(parts) > 1
        if self._in_subtable:
            self.keys.setdefault((self._current, parts[1]), line)
        path: tuple = ()
        for index, part in enumerate(parts):
            path = (*path, part)
            if array and index == len(parts) - 1:
                self._arrays[path] = self._arrays.get(path, 0) + 1
                path = (*path, self._arrays[path])
            elif path in self._arrays:  # the array's latest table; [e] after [[e]] too, which tomllib refuses
                path = (*path, self._arrays[path])
        self._table = path
        self._deeper(len(path), line)  # an array of tables is two levels: the array, the table
        joined = ".".join(parts)
        if array:
            shown = f"[[{joined}]]" + (f" #{path[-1]}" if len(parts) == 1 else "")
        else:
            shown = self._current if len(parts) == 1 and not self._current.startswith("[[") else f"[{joined}]"
        self._shown = shown
        self._definitions.append(Definition(line, shown, None, path, len(path)))

    def _key_value(self, pos: int) -> int:
        line = self._line_at(pos)
        parts, after = self._dotted_key(pos)
        if not parts or not self._text.startswith("=", after):
            return self._end_of_line(pos)
        if not self._in_subtable:
            self.keys.setdefault((self._current, parts[0]), line)
        path = (*self._table, *parts)
        self._definitions.append(Definition(line, self._shown, ".".join(parts), path, len(self._table)))
        depth = len(path) - 1  # the tables the key is in; a scalar value adds nothing
        self._deeper(depth, line)
        return self._value(after + 1, depth)

    def _dotted_key(self, pos: int) -> tuple[list[str], int]:
        """The parts of ``a."b c".'d'`` at ``pos`` (quotes removed, escapes kept), and the position after it."""
        text, parts = self._text, []
        while True:
            pos = _SPACE.match(text, pos).end()
            start = pos
            if text.startswith('"', pos):
                pos = self._basic_string(pos + 1)
                parts.append(_unescaped(text[start:pos]))
            elif text.startswith("'", pos):
                pos = self._literal_string(pos + 1)
                parts.append(text[start + 1 : pos - 1])
            else:
                bare = _BARE.match(text, pos)
                if bare is None:
                    return parts, pos
                parts.append(bare.group())
                pos = bare.end()
            pos = _SPACE.match(text, pos).end()
            if not text.startswith(".", pos):
                return parts, pos
            pos += 1

    def _value(self, pos: int, outer: int = 0) -> int:
        """Skip a value (strings, arrays and inline tables across lines); returns the next line's start.

        :param outer: how deep the tables holding the value nest.
        """
        text, depth = self._text, 0
        while True:
            stop = _VALUE_STOP.search(text, pos)
            if stop is None:
                return len(text)
            char, pos = stop.group(), stop.start()
            if char == "\n":
                if depth == 0:
                    return pos + 1
                pos += 1
            elif char == "#":
                pos = self._end_of_line(pos)
                if depth == 0:  # a comment after the value ends its line, and the value
                    return pos
            elif char == '"':
                pos = self._multiline(pos + 3, '"') if text.startswith('"""', pos) else self._basic_string(pos + 1)
            elif char == "'":
                pos = self._multiline(pos + 3, "'") if text.startswith("'''", pos) else self._literal_string(pos + 1)
            elif char in "[{":
                depth += 1
                if outer + depth > self.max_depth:
                    self._deeper(outer + depth, self._line_at(pos))
                pos += 1
            else:
                depth = max(0, depth - 1)
                pos += 1

    def _basic_string(self, pos: int) -> int:
        """After the closing quote, or at the end of the line for an unterminated string."""
        while True:
            stop = _BASIC_STOP.search(self._text, pos)
            if stop is None:
                return len(self._text)
            if stop.group() == "\\":
                pos = stop.end() + 1
            elif stop.group() == '"':
                return stop.end()
            else:
                return stop.start()

    def _literal_string(self, pos: int) -> int:
        stop = _LITERAL_STOP.search(self._text, pos)
        if stop is None:
            return len(self._text)
        return stop.end() if stop.group() == "'" else stop.start()

    def _multiline(self, pos: int, quote: str) -> int:
        """After the closing triple quote (and up to two more quotes, which are content)."""
        text = self._text
        if quote == '"':
            while True:
                stop = _MULTILINE_BASIC_STOP.search(text, pos)
                if stop is None:
                    return len(text)
                if stop.group() == '"""':
                    pos = stop.end()
                    break
                pos = stop.end() + 1
        else:
            found = text.find("'''", pos)
            if found < 0:
                return len(text)
            pos = found + 3
        extra = 0
        while extra < 2 and text.startswith(quote, pos):
            pos, extra = pos + 1, extra + 1
        return pos

    def _deeper(self, depth: int, line: int) -> None:
        if depth > self.max_depth:
            self.max_depth, self.depth_line = depth, line

    def _end_of_line(self, pos: int) -> int:
        found = self._text.find("\n", pos)
        return len(self._text) if found < 0 else found + 1

    def _line_at(self, pos: int) -> int:
        """The 1-based line of ``pos``; positions only ever grow, so every newline is counted once."""
        self._line += self._text.count("\n", self._counted, pos)
        self._counted = pos
        return self._line


def _unescaped(quoted: str) -> str:
    """A basic string's value (``"a\\tb"`` → ``a<tab>b``), as tomllib reads the key; the raw text inside
    the quotes when it is not a valid string."""
    if "\\" not in quoted:
        return quoted[1:-1]
    try:
        return tomllib.loads(f"k = {quoted}")["k"]
    except tomllib.TOMLDecodeError:
        return quoted[1:-1]


def _collide(earlier: Definition, later: Definition) -> bool:
    """Whether two definitions of different paths can be what tomllib refused: one path inside the
    other, and not a table holding its own keys or subtables."""
    short, long = sorted((earlier, later), key=lambda d: len(d.path))
    if long.path[: len(short.path)] != short.path:
        return False
    if short.table and long.table:
        return False  # [a] and [a.b] live together
    if short.table:  # [a.b] then, in [a], b.c = 1: the key reaches into the table
        return long.table_depth < len(short.path)
    return True  # a value, and something inside it


def toml_error(exc: tomllib.TOMLDecodeError) -> tuple[str, int | None]:
    """tomllib's message without its "(at line X, column Y)" suffix, and X."""
    match = re.search(r"\s*\(at line (\d+), column \d+\)$", str(exc))
    if match is None:
        text = re.sub(r"\s*\(at end of document\)$", " at the end of the file", str(exc))
        return text, getattr(exc, "lineno", None)
    return str(exc)[: match.start()], int(match.group(1))
