"""Where things are in a TOML file: tomllib reports no positions, so profile errors find lines here."""

from __future__ import annotations

import re
import tomllib


_HEADER = re.compile(r"^(\[\[?)\s*(.+?)\s*\]\]?\s*(#.*)?$")
_KEY = re.compile(r"""^("(?:[^"\\]|\\.)*"|'[^']*'|[A-Za-z0-9_-]+)\s*[.=]""")
_NAME_PART = re.compile(r""""[^"]*"|'[^']*'|[^.\s]+""")
_STRING = re.compile(r""""(?:[^"\\]|\\.)*"|'[^']*'""")


class TomlLines:
    """Line numbers of table headers and top-level keys, read from the raw TOML text.

    Not a TOML parser: it knows headers (``[stt]``, ``[[actuators]]``, dotted ``[stt.options]``),
    ``key =`` lines, and enough about multi-line arrays and strings to skip their insides.
    """

    def __init__(self, text: str) -> None:
        self.sections: dict[str, int] = {}
        self.keys: dict[tuple[str, str], int] = {}
        arrays: dict[str, int] = {}
        current, in_subtable, depth, in_string = "", False, 0, None
        for number, raw in enumerate(text.splitlines(), 1):
            line = raw.strip()
            if in_string:
                if line.count(in_string) % 2:
                    in_string = None
                continue
            if depth > 0:
                depth += _bracket_balance(line)
                continue
            header = _HEADER.match(line)
            if header:
                brackets, name = header.group(1), header.group(2)
                parts = [part.strip("\"'") for part in _NAME_PART.findall(name)]
                if not parts:
                    continue
                if brackets == "[[" and len(parts) == 1:
                    arrays[parts[0]] = arrays.get(parts[0], 0) + 1
                count = arrays.get(parts[0], 0)
                current = f"[[{parts[0]}]] #{count}" if count else f"[{parts[0]}]"
                self.sections.setdefault(current, number)
                in_subtable = len(parts) > 1
                if in_subtable:
                    self.keys.setdefault((current, parts[1]), number)
                continue
            key = _KEY.match(line)
            if key:
                if not in_subtable:
                    self.keys.setdefault((current, key.group(1).strip("\"'")), number)
                value = line[key.end():]
                for quotes in ('"""', "'''"):
                    if value.count(quotes) % 2:
                        in_string = quotes
                if not in_string:
                    depth = max(0, _bracket_balance(value))

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


def _bracket_balance(text: str) -> int:
    text = _STRING.sub("", text).split("#", 1)[0]
    return text.count("[") + text.count("{") - text.count("]") - text.count("}")


def toml_error(exc: tomllib.TOMLDecodeError) -> tuple[str, int | None]:
    """tomllib's message without its "(at line X, column Y)" suffix, and X."""
    match = re.search(r"\s*\(at line (\d+), column \d+\)$", str(exc))
    if match is None:
        return str(exc), getattr(exc, "lineno", None)
    return str(exc)[: match.start()], int(match.group(1))
