"""A backend's config keys as text for ``magoo backends --options``, readable at any width.

One line per key — the key in one piece, its type and its default as a profile writes them
(``"a" | "b"``, ``int | None``, ``list[str]``; ``"out.wav"``, ``true``, ``unset``) — and the
description wrapped under it::

      device         str | int | None  (default: unset)
          Part of the input device's name, or its index; unset: the default input.

Plain text: nothing in a description (``[responder]``) is taken for markup.
"""

from __future__ import annotations

import enum
import json
import textwrap
import types
import typing
from pathlib import PurePath
from typing import Any

from pydantic import BaseModel, SecretStr

#: a default longer than this is cut (a list of jokes is not what the listing is for)
MAX_DEFAULT = 48
KEY_INDENT = "  "
DESCRIPTION_INDENT = "      "


def options_text(config: type[BaseModel], width: int) -> str:
    """Every key of ``config``, wrapped to ``width`` columns (keys never break)."""
    rows = []
    for key, field in config.model_fields.items():
        default = "(required)" if field.is_required() else f"(default: {describe_default(field.get_default(call_default_factory=True))})"
        rows.append((key, f"{describe_type(field.annotation)}  {default}", field.description or ""))
    key_width = min(max((len(key) for key, _, _ in rows), default=0), max(width // 3, 12))
    lines = []
    for key, what, description in rows:
        head = f"{KEY_INDENT}{key:<{key_width}}  "
        follow = " " * len(head) if len(head) < width // 2 else DESCRIPTION_INDENT
        lines += textwrap.wrap(what, width, initial_indent=head, subsequent_indent=follow, break_on_hyphens=False) or [head]
        lines += textwrap.wrap(
            description, width, initial_indent=DESCRIPTION_INDENT, subsequent_indent=DESCRIPTION_INDENT, break_on_hyphens=False
        )
    return "\n".join(lines)


def describe_type(annotation: Any) -> str:
    """``"a" | "b"`` for a Literal, ``int | None`` for an Optional, ``list[str]``, ``Path``."""
    if annotation is None or annotation is type(None):
        return "None"
    origin = typing.get_origin(annotation)
    arguments = typing.get_args(annotation)
    if origin is typing.Annotated:
        return describe_type(arguments[0])
    if origin is typing.Literal:
        return " | ".join(describe_default(value) for value in arguments)
    if origin in (typing.Union, types.UnionType):
        return " | ".join(describe_type(argument) for argument in arguments)
    if origin is not None:
        name = getattr(origin, "__name__", str(origin))
        inner = ", ".join("..." if a is Ellipsis else describe_type(a) for a in arguments)
        return f"{name}[{inner}]" if inner else name
    if isinstance(annotation, type):
        return annotation.__name__
    return str(annotation).replace("typing.", "")


def describe_default(value: Any) -> str:
    """A default as TOML writes it: ``"text"``, ``true``, ``["a", "b"]``, ``{ key = 1 }``; ``unset`` for None."""
    text = _toml(value)
    return text if len(text) <= MAX_DEFAULT else text[: MAX_DEFAULT - 1] + "…"


def _toml(value: Any) -> str:
    if value is None:
        return "unset"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, SecretStr):
        return "(secret)"
    if isinstance(value, enum.Enum):
        return _toml(value.value)
    if isinstance(value, str | PurePath):
        return json.dumps(str(value), ensure_ascii=False)
    if isinstance(value, BaseModel):
        return _toml(value.model_dump())
    if isinstance(value, dict):
        if not value:
            return "{}"
        return "{ " + ", ".join(f"{key} = {_toml(item)}" for key, item in value.items()) + " }"
    if isinstance(value, list | tuple | set | frozenset):
        return "[" + ", ".join(_toml(item) for item in value) + "]"
    return repr(value)
