"""``magoo tune --write``: one model's threshold set in the profile's text, the rest of it untouched.

The profile is edited as text, not parsed and dumped again, so its comments, order and layout
stay. The ``[wake]`` section's ``models`` may be written three ways, and each is edited in
place:

- an array, on one line or several: ``models = ["hey_jarvis", { name = "alexa", threshold = 0.6 }]``.
  A table's threshold value is replaced, or the key added before its ``}``; a bare name becomes
  a table (``{ name = "hey_jarvis", threshold = 0.42 }``);
- tables of their own, ``[[wake.models]]``: the ``threshold = ...`` line's value is replaced, or
  a line added under the header;
- no ``models`` key at all (the backend's default models): a ``models = [...]`` line is added
  under ``backend = ...``.

Every edit is checked: the new text must parse to exactly the old data with that one value
changed, or nothing is written (:class:`~magoo_core.tune.TuneError` says to do it by hand).
"""

from __future__ import annotations

import copy
import tomllib
from collections.abc import Sequence
from typing import Any

from .toml_lines import TomlLines
from .tune import Tunable, TuneError


def set_threshold(text: str, index: int, value: float, tunable: Tunable, defaults: Sequence[str]) -> str:
    """``text`` with the threshold of ``[wake]``'s model number ``index`` (0-based) set to ``value``.

    :param defaults: the names of the models the backend uses when ``models`` is left out.
    :raises TuneError: the profile keeps it somewhere this cannot edit safely.
    """
    data = tomllib.loads(text)
    wake = data.get("wake")
    if not isinstance(wake, dict):
        raise _by_hand("the profile has no [wake] table of its own")
    number = f"{value:.2f}"
    models = wake.get("models")
    lines = TomlLines(text)
    expected = copy.deepcopy(data)
    if models is None:
        entries = [{tunable.shorthand(name): name} for name in defaults]
        if index >= len(entries):
            raise _by_hand("[wake] has no models list")
        entries[index][tunable.key] = float(number)
        expected["wake"]["models"] = entries
        edited = _add_models(text, lines, entries)
    elif isinstance(models, list) and index < len(models):
        entry = models[index]
        if isinstance(entry, str):
            expected["wake"]["models"][index] = {tunable.shorthand(entry): entry, tunable.key: float(number)}
        elif isinstance(entry, dict):
            expected["wake"]["models"][index][tunable.key] = float(number)
        else:
            raise _by_hand(f"model {index + 1} of [wake] models is neither a name nor a table")
        header = lines.at(("wake", "models", index + 1))
        if header is not None and isinstance(entry, dict):
            edited = _in_table(text, lines, index, tunable.key, number, header)
        else:
            edited = _in_array(text, lines, index, tunable, number)
    else:
        raise _by_hand("[wake] models is not a list of models")
    try:
        if tomllib.loads(edited) != expected:
            raise _by_hand("the edit would change more than that value")
    except tomllib.TOMLDecodeError:
        raise _by_hand("the edit would not be valid TOML") from None
    return edited


def _by_hand(why: str) -> TuneError:
    return TuneError(f"cannot write the threshold into this profile safely: {why}; set it by hand")


# ---- the three forms ----------------------------------------------------------------------------


def _add_models(text: str, lines: TomlLines, entries: list[dict[str, Any]]) -> str:
    """A ``models = [...]`` line under ``[wake]``'s ``backend = ...`` line."""
    line = lines.key("[wake]", "backend")
    if line is None:
        raise _by_hand("no `backend = ...` line in [wake]")
    tables = ", ".join("{ " + ", ".join(f"{key} = {_toml(value)}" for key, value in entry.items()) + " }" for entry in entries)
    starts = _line_starts(text)
    at = starts[line] if line < len(starts) else len(text)
    before = text[:at] if text[:at].endswith("\n") else text[:at] + "\n"
    return before + f"models = [{tables}]\n" + text[at:]


def _in_table(text: str, lines: TomlLines, index: int, key: str, number: str, header: int) -> str:
    """``key = number`` in the ``[[wake.models]]`` table number ``index``: its value replaced, or a line added."""
    starts = _line_starts(text)
    line = lines.at(("wake", "models", index + 1, key))
    if line is None:
        at = starts[header] if header < len(starts) else len(text)
        before = text[:at] if text[:at].endswith("\n") else text[:at] + "\n"
        return before + f"{key} = {number}\n" + text[at:]
    start = text.index("=", starts[line - 1]) + 1
    end = _scalar_end(text, start)
    return text[:start] + f" {number}" + text[end:]


def _in_array(text: str, lines: TomlLines, index: int, tunable: Tunable, number: str) -> str:
    """The model number ``index`` of an inline ``models = [...]`` array."""
    line = lines.at(("wake", "models"))
    if line is None:
        raise _by_hand("[wake] models was not found in the text")
    starts = _line_starts(text)
    opening = _skip_blank(text, text.index("=", starts[line - 1]) + 1)
    if not text.startswith("[", opening):
        raise _by_hand("[wake] models is not an array")
    items, _ = _items(text, opening)
    start, end = items[index]
    if text[start] in "\"'":  # a bare name becomes a table
        return text[:start] + f"{{ {tunable.shorthand(_string(text[start:end]))} = {text[start:end]}, {tunable.key} = {number} }}" + text[end:]
    if text[start] != "{":
        raise _by_hand(f"model {index + 1} of [wake] models is neither a name nor a table")
    pairs, closing = _items(text, start)
    for pair_start, pair_end in pairs:
        equals = _equals(text, pair_start, pair_end)
        if _string(text[pair_start:equals].strip()) == tunable.key:
            value = _skip_blank(text, equals + 1)
            return text[:value] + number + text[pair_end:]
    if not pairs:
        return text[:start] + f"{{ {tunable.key} = {number} }}" + text[closing + 1 :]
    last = pairs[-1][1]
    return text[:last] + f", {tunable.key} = {number}" + text[last:]


# ---- a small scanner: strings, comments, brackets -----------------------------------------------


def _line_starts(text: str) -> list[int]:
    """The offset of each line's first character (index 0 is line 1)."""
    starts = [0]
    starts.extend(i + 1 for i, char in enumerate(text) if char == "\n")
    return starts


def _skip_blank(text: str, pos: int) -> int:
    while pos < len(text) and text[pos] in " \t":
        pos += 1
    return pos


def _after_string(text: str, pos: int) -> int:
    """The position after the string that starts at ``pos`` (any of TOML's four kinds)."""
    quote = text[pos]
    if text.startswith(quote * 3, pos):
        end = pos + 3
        while True:
            found = text.find(quote * 3, end)
            if found < 0:
                raise _by_hand("a string is not closed")
            if quote == '"' and _escaped(text, found):
                end = found + 1
                continue
            end = found + 3
            while text.startswith(quote, end):  # up to two quotes of content before the closing three
                end += 1
            return end
    end = pos + 1
    while end < len(text) and text[end] != "\n":
        if quote == '"' and text[end] == "\\":
            end += 2
            continue
        if text[end] == quote:
            return end + 1
        end += 1
    raise _by_hand("a string is not closed")


def _escaped(text: str, pos: int) -> bool:
    backslashes = 0
    while pos - backslashes - 1 >= 0 and text[pos - backslashes - 1] == "\\":
        backslashes += 1
    return backslashes % 2 == 1


def _items(text: str, opening: int) -> tuple[list[tuple[int, int]], int]:
    """The spans of the items of the array or inline table that opens at ``opening`` (without the
    spaces, commas and comments around them), and the position of its closing bracket."""
    closer = "]" if text[opening] == "[" else "}"
    items: list[tuple[int, int]] = []
    start: int | None = None
    last = opening + 1
    depth, pos = 0, opening + 1
    while pos < len(text):
        char = text[pos]
        if char in " \t\r\n":
            pos += 1
            continue
        if char == "#":
            newline = text.find("\n", pos)
            pos = len(text) if newline < 0 else newline
            continue
        if depth == 0 and char in (",", closer):
            if start is not None:
                items.append((start, last))
                start = None
            if char == closer:
                return items, pos
            pos += 1
            continue
        if start is None:
            start = pos
        if char in "\"'":
            pos = _after_string(text, pos)
        else:
            if char in "[{":
                depth += 1
            elif char in "]}":
                depth -= 1
            pos += 1
        last = pos
    raise _by_hand("an array or table is not closed")


def _equals(text: str, start: int, end: int) -> int:
    """The ``=`` of a ``key = value`` pair between ``start`` and ``end`` (keys may be quoted)."""
    pos = start
    while pos < end:
        if text[pos] in "\"'":
            pos = _after_string(text, pos)
        elif text[pos] == "=":
            return pos
        else:
            pos += 1
    raise _by_hand("a table's key has no value")


def _scalar_end(text: str, start: int) -> int:
    """The end of a one-line number or boolean value starting after ``start`` (before a comment)."""
    pos = _skip_blank(text, start)
    while pos < len(text) and text[pos] not in " \t\r\n#,}":
        pos += 1
    return pos


def _string(literal: str) -> str:
    """The text of a TOML string literal (or the bare key as it is)."""
    if literal[:1] in "\"'":
        return tomllib.loads(f"k = {literal}")["k"]
    return literal


def _toml(value: Any) -> str:
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return f"{value:.2f}" if isinstance(value, float) else str(value)
