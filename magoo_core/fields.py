"""Field types for settings and backend configs: strict, finite and bounded.

A TOML profile has real types, so a setting takes exactly its own: an integer where an integer
is expected (not ``true``, not ``"16000"``, not ``16000.5``), a finite number where a number is
(not ``nan``, not ``inf``), a boolean where a boolean is (not ``"yes"``). Every number has a
lower and an upper bound that no real setup needs to exceed, and a template names only the
fields it will be given.

The one exception is a value that came from ``{ env = "NAME" }``: the environment only holds
text, so ``0.3`` from a ``.env`` file becomes a number where one is expected. The profile
loader marks such values as :class:`EnvText`; nothing else is parsed from text.

Use them in a backend's ``Config`` like any type::

    class Config(BackendConfig):
        timeout: Seconds(0.1, 300) = Field(5.0, description="Seconds one request may take.")
        volume: Count(0, 130) = Field(100, description="Volume in percent.")
        loud: StrictBool = Field(False, description="...")
        reply: Template("text") = Field("You said: {text}", description="...; {text} is the transcript.")

:class:`~magoo_core.roles.BackendConfig` appends each number's range to its description, so
``magoo backends --options`` shows it (:func:`describe_ranges`).
"""

from __future__ import annotations

import math
import re
import string
import types
from collections.abc import Callable
from typing import Annotated, Any, Literal, Union, get_args, get_origin

import annotated_types
from pydantic import AfterValidator, BaseModel, BeforeValidator, Strict
from pydantic.fields import FieldInfo
from pydantic_core import PydanticCustomError

__all__ = [
    "Choice",
    "Count",
    "EnvText",
    "Hertz",
    "Milliseconds",
    "Number",
    "Ratio",
    "SampleRate",
    "Seconds",
    "StrictBool",
    "Template",
    "check_template",
    "describe_ranges",
]

#: the widest a template's field may be padded or cut to ({text:>40}, {text:.100})
MAX_TEMPLATE_WIDTH = 1000


class EnvText(str):
    """Text read from the environment by ``{ env = "NAME" }``: parsed where a number or a
    boolean is expected, unlike text written in the profile itself.

    :attr:`variable` is the name of the variable it came from (``""`` when unknown), so that a
    backend can say which variable to fix ("check OPENAI_API_KEY") without ever showing the value.
    """

    variable: str = ""

    def __new__(cls, value: str, variable: str = "") -> EnvText:
        text = super().__new__(cls, value)
        text.variable = variable
        return text


_TRUE = frozenset({"true", "yes", "on", "1"})
_FALSE = frozenset({"false", "no", "off", "0"})


def _error(kind: str, message: str) -> PydanticCustomError:
    return PydanticCustomError(kind, message)


def _numeric(kind: type) -> Callable[[Any], Any]:
    """A before-validator: env text parsed, then anything but a finite ``kind`` refused with a
    message that says what to write (never repeating the value, which may be a secret)."""
    noun = "an integer" if kind is int else "a number"

    def check(value: Any) -> Any:
        if isinstance(value, EnvText):
            text = value.strip()
            try:
                value = int(text) if kind is int else float(text)
            except ValueError:
                raise _error("number_from_env", f"must be {noun}; the environment variable holds other text") from None
        if isinstance(value, bool):
            raise _error("number_strict", f"must be {noun}, not true or false")
        if isinstance(value, str):
            raise _error("number_strict", f"must be {noun}, not text: write it without quotes")
        if kind is int and isinstance(value, float):
            if math.isfinite(value) and value.is_integer():
                raise _error("int_strict", "must be a whole number: write it without a decimal point")
            raise _error("int_strict", "must be a whole number")
        if isinstance(value, float) and not math.isfinite(value):
            raise _error("finite_number", "must be a finite number (not nan or inf)")
        if kind is float and isinstance(value, int):
            try:
                value = float(value)
            except OverflowError:
                raise _error("number_too_big", "is far too large") from None
        return value

    return check


def _bounds(lo: float | None, hi: float | None, lo_open: bool, hi_open: bool) -> list[Any]:
    found: list[Any] = []
    if lo is not None:
        found.append(annotated_types.Gt(lo) if lo_open else annotated_types.Ge(lo))
    if hi is not None:
        found.append(annotated_types.Lt(hi) if hi_open else annotated_types.Le(hi))
    return found


def Number(lo: float, hi: float, *, lo_open: bool = False, hi_open: bool = False) -> Any:  # noqa: N802
    """A finite number (float; an integer is taken as one) from ``lo`` to ``hi``; ``lo_open``:
    more than ``lo``, ``hi_open``: less than ``hi``."""
    return Annotated[float, Strict(), *_bounds(lo, hi, lo_open, hi_open), BeforeValidator(_numeric(float))]


def Count(lo: int, hi: int) -> Any:  # noqa: N802
    """A whole number from ``lo`` to ``hi``: never a boolean, a float or text."""
    return Annotated[int, Strict(), *_bounds(lo, hi, False, False), BeforeValidator(_numeric(int))]


def Seconds(lo: float, hi: float, *, lo_open: bool = False) -> Any:  # noqa: N802
    """A duration or interval in seconds, from ``lo`` (more than ``lo`` with ``lo_open``) to ``hi``."""
    return Number(lo, hi, lo_open=lo_open)


def Milliseconds(lo: int, hi: int) -> Any:  # noqa: N802
    """A whole number of milliseconds from ``lo`` to ``hi``."""
    return Count(lo, hi)


def Hertz(lo: float = 1.0, hi: float = 20000.0) -> Any:  # noqa: N802
    """A frequency in Hz; by default the audible range, 1 to 20000."""
    return Number(lo, hi)


def Ratio(*, lo_open: bool = False, hi_open: bool = False) -> Any:  # noqa: N802
    """A level, score or threshold from 0 to 1 (of full scale, of certainty)."""
    return Number(0.0, 1.0, lo_open=lo_open, hi_open=hi_open)


def Choice(*values: int) -> Any:  # noqa: N802
    """One of the whole numbers ``values`` (``Choice(64, 128, 192)``), never ``true`` or ``64.0``.
    (For a choice of words, ``Literal["a", "b"]`` is strict already.)"""

    def check(value: Any) -> Any:
        if isinstance(value, EnvText):
            try:
                return int(value.strip())
            except ValueError:
                raise _error("literal_error", "must be one of the listed numbers; the environment variable holds other text") from None
        if isinstance(value, bool) or not isinstance(value, int):
            listed = ", ".join(map(str, values))
            raise _error("literal_error", f"must be one of {listed}, written as a whole number")
        return value

    return Annotated[Literal[values], BeforeValidator(check)]


#: Hz of audio: 8000 (telephone) to 192000 (studio); nothing a microphone or a speaker needs is outside.
SampleRate = Count(8000, 192000)


def _env_bool(value: Any) -> Any:
    if isinstance(value, EnvText):
        text = value.strip().lower()
        if text in _TRUE:
            return True
        if text in _FALSE:
            return False
        raise _error("bool_from_env", "must be true or false; the environment variable holds other text")
    if isinstance(value, str):
        raise _error("bool_strict", "must be true or false, not text: write it without quotes")
    if not isinstance(value, bool):
        raise _error("bool_strict", "must be true or false")
    return value


#: true or false, written as such: never 1, 0 or "yes" (text from ``{ env }`` is parsed).
StrictBool = Annotated[bool, Strict(), BeforeValidator(_env_bool)]


# ---- templates ----------------------------------------------------------------------------------

# [[fill]align][sign][z][#][0][width][grouping][.precision][type] of str.format's mini-language
_SPEC = re.compile(r"(?:.?[<>=^])?[-+ ]?z?#?0?(?P<width>\d*)[,_]?(?:\.(?P<precision>\d+))?[a-zA-Z%]?", re.DOTALL)


def check_template(template: str, fields: tuple[str, ...], samples: dict[str, Any] | None = None) -> str:
    """``template`` if ``str.format`` can fill it with ``fields`` in bounded time and memory.

    Refused: a field not in ``fields`` (``{turn}``), positional fields (``{}``, ``{0}``),
    attribute or index access (``{text.__class__}``, ``{text[0]}``), fields inside a format spec,
    widths or precisions over :data:`MAX_TEMPLATE_WIDTH`, and any spec ``str.format`` rejects.
    Literal braces are written doubled: ``{{`` and ``}}``.

    :param samples: a value of the right type per field, for the trial format (default: text).
    :raises ValueError: saying what is wrong and which fields exist.
    """
    known = ", ".join("{" + name + "}" for name in fields) or "none"
    try:
        parts = list(string.Formatter().parse(template))
    except ValueError as exc:
        raise ValueError(f"is not a valid template ({exc}); write a literal brace twice: {{{{ or }}}}") from None
    for _, name, spec, _conversion in parts:
        if name is None:
            continue
        shown = name if len(name) <= 40 else name[:39] + "…"
        if name == "" or name.isdigit():
            raise ValueError(f"has a positional field {{{shown}}}: name one of {known}")
        if re.search(r"[.\[]", name):
            raise ValueError(f"field {{{shown}}} reaches into a value (. or [): use a field as it is, one of {known}")
        if name not in fields:
            raise ValueError(f"names an unknown field {{{shown}}}: the fields are {known}")
        if spec and "{" in spec:
            raise ValueError(f"field {{{shown}}} has a field inside its format spec; write the spec itself")
        match = _SPEC.fullmatch(spec or "")
        if match is None:
            raise ValueError(f"field {{{shown}}} has a format spec that is not valid")
        for part in ("width", "precision"):
            number = match.group(part)
            if number and (len(number) > 6 or int(number) > MAX_TEMPLATE_WIDTH):
                raise ValueError(f"field {{{shown}}} has a {part} over {MAX_TEMPLATE_WIDTH}")
    values = samples if samples is not None else dict.fromkeys(fields, "text")
    try:
        template.format(**values)
    except (ValueError, TypeError, KeyError, IndexError, AttributeError) as exc:
        raise ValueError(f"cannot be filled in: {exc}") from None
    return template


def Template(*fields: str) -> Any:  # noqa: N802
    """Text filled in with ``str.format`` and the named ``fields`` (each given a string),
    checked when the profile loads (:func:`check_template`)."""

    def check(value: str) -> str:
        try:
            return check_template(value, fields)
        except ValueError as exc:
            raise _error("template", str(exc)) from None

    return Annotated[str, Strict(), AfterValidator(check)]


# ---- descriptions -------------------------------------------------------------------------------


def _shown(number: float) -> str:
    return f"{number:g}" if isinstance(number, float) else str(number)


def range_text(metadata: list[Any]) -> str | None:
    """``"0.1 to 300"``, ``"more than 0, at most 1"`` for a field's bounds; None without both."""
    lo = hi = None
    lo_open = hi_open = False
    for item in metadata:
        if isinstance(item, annotated_types.Ge):
            lo = item.ge
        elif isinstance(item, annotated_types.Gt):
            lo, lo_open = item.gt, True
        elif isinstance(item, annotated_types.Le):
            hi = item.le
        elif isinstance(item, annotated_types.Lt):
            hi, hi_open = item.lt, True
    if lo is None or hi is None:
        return None
    if not lo_open and not hi_open:
        return f"{_shown(lo)} to {_shown(hi)}"
    low = f"more than {_shown(lo)}" if lo_open else f"at least {_shown(lo)}"
    high = f"less than {_shown(hi)}" if hi_open else f"at most {_shown(hi)}"
    return f"{low}, {high}"


def _bounds_of(info: FieldInfo) -> list[Any]:
    """The field's own constraints, or those of its one bounded member (``SampleRate | None``)."""
    if info.metadata:
        return list(info.metadata)
    if get_origin(info.annotation) in (Union, types.UnionType):
        found = [get_args(arg)[1:] for arg in get_args(info.annotation) if get_origin(arg) is Annotated]
        if len(found) == 1:
            return list(found[0])
    return []


def describe_ranges(model: type[BaseModel]) -> None:
    """Append each bounded number's range to its field's description ("... (0.1 to 300)"),
    unless the description already states both bounds. Called once per class, when it is made."""
    for info in model.model_fields.values():
        text = range_text(_bounds_of(info))
        if text is None or info.description is None:
            continue
        bounds = re.findall(r"\d+(?:\.\d+)?(?:e[-+]?\d+)?", text)
        if all(re.search(rf"(?<!\d)(?<!\d\.){re.escape(bound)}(?!\d)(?!\.\d)", info.description) for bound in bounds):
            continue
        info.description = f"{info.description.rstrip()} ({text})"
