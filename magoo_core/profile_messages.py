"""The words of profile issues: where a pydantic error points and what it means in TOML's terms,
which section an unknown one probably means, and the small helpers that keep every message one
readable line (never quoting a value the profile holds).

Pure functions and tables; no state. :mod:`magoo_core.profile` and the parts of its validation read them.
"""

from __future__ import annotations

import difflib
import enum
import re
import types
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal, Union, get_args, get_origin

from pydantic import BaseModel, SecretBytes, SecretStr
from pydantic_core.core_schema import ErrorType

from . import services
from .roles import ROLES
from .settings import EngineSettings, MagooSettings

#: the top-level sections that hold settings rather than a backend
SETTINGS_SECTIONS = ("magoo", "engine")


def toml_key(key: str) -> str:
    """``key`` as a TOML header writes it: bare when it can be, else quoted."""
    return key if re.fullmatch(r"[A-Za-z0-9_-]+", key) else '"' + key.replace("\\", "\\\\").replace('"', '\\"') + '"'


# Pydantic's own messages never quote the input; these carry a validator's own words, which may.
QUOTES_NO_INPUT = frozenset(get_args(ErrorType)) - {"value_error", "assertion_error"}


@dataclass
class Where:
    """Where a pydantic error points, translated to what the profile's author wrote."""

    path: tuple = ()
    annotation: Any = None  # of the value at path, when known
    owner: type[BaseModel] | None = None  # the model whose keys path[-1] is among
    field: Any = None  # pydantic FieldInfo of path[-1], when it is a model field
    union: bool = False  # the error is inside one member of a union


def locate(model: type[BaseModel], loc: Sequence[str | int]) -> Where:
    """Follow ``loc`` through the model's annotations.

    Union members show up in pydantic locations as tags (``'int'``, ``'list[str]'``); they mean
    nothing to the profile's author, so the walk stops there and reports the union.
    """
    where = Where(annotation=model)
    for index, part in enumerate(loc):
        annotation = _unwrap(where.annotation)
        if _is_union(annotation):
            where.union = True
            where.annotation = annotation
            return where
        where.path = (*where.path, part)
        origin = get_origin(annotation)
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            fields = keys_of(annotation)
            where.owner, where.field = annotation, fields.get(str(part))
            where.annotation = where.field.annotation if where.field is not None else None
        elif origin in (list, tuple, set, frozenset, Sequence) and isinstance(part, int):
            args = get_args(annotation)
            where.annotation = args[0] if args else None
            where.owner = where.field = None
        elif origin in (dict, Mapping) and part != "[key]":
            args = get_args(annotation)
            where.annotation = args[1] if len(args) == 2 else None
            where.owner = where.field = None
        else:
            where.path = (*where.path, *loc[index + 1 :])
            where.annotation = where.owner = where.field = None
            return where
    return where


def keys_of(model: type[BaseModel]) -> dict[str, Any]:
    """A model's fields by the key a profile uses for them (the alias, when there is one)."""
    fields = {}
    for name, info in model.model_fields.items():
        alias = info.validation_alias if isinstance(info.validation_alias, str) else info.alias
        fields[alias or name] = info
    return fields


def _unwrap(annotation: Any) -> Any:
    while get_origin(annotation) is Annotated:
        annotation = get_args(annotation)[0]
    if get_origin(annotation) in (Union, types.UnionType):
        members = [arg for arg in get_args(annotation) if arg is not type(None)]
        if len(members) == 1:
            return _unwrap(members[0])
    return annotation


def _is_union(annotation: Any) -> bool:
    return get_origin(annotation) in (Union, types.UnionType)


def key_hint(key: str, owner: type[BaseModel]) -> str:
    valid = list(keys_of(owner))
    close = difflib.get_close_matches(key, valid, n=1)
    if close:
        return f"did you mean '{close[0]}'?"
    if not valid:
        return "no keys are accepted here"
    return "valid keys: " + ", ".join(valid)


def error_message(error: Mapping[str, Any], annotation: Any) -> str:
    """Pydantic's message (which never contains the input), plus the expected type when it helps."""
    message = error["msg"]
    message = message[:1].lower() + message[1:]
    if annotation is not None and error["type"].endswith(("_type", "_parsing")):
        expected = describe_type(annotation)
        if expected not in message:
            message += f" (expected {expected})"
    return message


def describe_type(annotation: Any) -> str:
    """Describe a type in TOML's words: 'integer', 'array of string', 'table', 'path (string)'."""
    annotation = _unwrap(annotation)
    origin, args = get_origin(annotation), get_args(annotation)
    if annotation is None or annotation is type(None):
        return "nothing"
    if origin is Literal:
        return " or ".join(repr(arg) for arg in args)
    if _is_union(annotation):
        return " or ".join(dict.fromkeys(describe_type(arg) for arg in args if arg is not type(None)))
    if origin in (list, tuple, set, frozenset, Sequence):
        return f"array of {describe_type(args[0])}" if args else "array"
    if origin in (dict, Mapping):
        return "table"
    if isinstance(annotation, type):
        for kind, word in (
            (bool, "boolean"), (int, "integer"), (float, "number"), (str, "string"), (Path, "path (string)"),
            (SecretStr, "string"), (SecretBytes, "string"), (BaseModel, "table"),
        ):
            if issubclass(annotation, kind):
                return word
        if issubclass(annotation, enum.Enum):
            return " or ".join(repr(member.value) for member in annotation)
        return annotation.__name__
    return str(annotation).replace("typing.", "")


#: every section a profile may have, as it is written
SECTIONS = {
    **{name: f"[{name}]" for name in SETTINGS_SECTIONS},
    **{info.role.value: info.section for info in ROLES},
    services.SECTION: f"[{services.SECTION}.NAME]",
}


#: words people name a section by, for an unknown one: [speach] -> [stt] or [tts], [mic] -> [audio_source]
_SECTION_WORDS = {
    "magoo": ("assistant", "general", "settings", "logging"),
    "engine": ("timing", "turns", "loop", "mute", "barge"),
    **{info.role.value: info.words for info in ROLES},
    services.SECTION: ("service", "shared", "pipeline", "connection", "homeassistant"),
}
_WORD_SECTIONS = {word: [s for s, words in _SECTION_WORDS.items() if word in words] for word in
                  {w for words in _SECTION_WORDS.values() for w in words}}


def nearest_sections(name: str) -> list[str]:
    """The sections an unknown one most likely means, best first (at most three): a close
    spelling of a section's name, then of a word people call it by, whole or in parts."""
    name = name.lower()[:80]
    # "services" is long enough to look like many words ("voice"): only a near spelling means it
    found = difflib.get_close_matches(name, [s for s in SECTIONS if s != services.SECTION], n=1)
    found = found or difflib.get_close_matches(name, [services.SECTION], n=1, cutoff=0.8)
    for word in [name, *re.split(r"[^a-z0-9]+", name)]:
        for close in difflib.get_close_matches(word, list(_WORD_SECTIONS), n=2, cutoff=0.75):
            found += _WORD_SECTIONS[close]
    return [SECTIONS[section] for section in dict.fromkeys(found)][:3]


#: how an issue starts for ``{ env = ... }`` where no secret belongs
NO_SECRET = "does not take a secret: { env = ... } works in a backend's own keys"


def repeats(name: str) -> bool:
    """Whether the section ``name`` is an array of tables (``[[actuators]]``)."""
    return any(info.many and info.role.value == name for info in ROLES)


def is_env(value: Any) -> bool:
    """Whether ``value`` is a ``{ env = "NAME" }`` reference."""
    return isinstance(value, Mapping) and set(value) == {"env"}


def cut(text: str, length: int) -> str:
    """``text``, or its start and an ellipsis when it is longer than ``length``."""
    return text if len(text) <= length else text[: length - 1] + "…"


def sentences(*parts: str | None) -> str:
    """Join hints into sentences: ``"did you mean 'x'?", "installed: a"`` → ``"did you mean 'x'? Installed: a"``."""
    text = ""
    for part in filter(None, parts):
        if text:
            text += " " if text.endswith(("?", ".", "!")) else ". "
            part = part[:1].upper() + part[1:]
        text += part
    return text


def home_of(key: str) -> str | None:
    """Where a stray top-level setting probably belongs: ``mute_post`` → ``[engine]``."""
    for section, model in (("magoo", MagooSettings), ("engine", EngineSettings)):
        close = difflib.get_close_matches(key, list(model.model_fields), n=1)
        if close:
            return f"did you mean '{close[0]}' in [{section}]?"
    return None


def article(noun: str) -> str:
    """``noun`` with its indefinite article: ``an actuator``, ``a player``."""
    return f"an {noun}" if noun[:1] in "aeiou" else f"a {noun}"
