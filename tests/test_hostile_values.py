"""Hostile values for every field of every shipped backend and of [magoo] and [engine].

For each field, hypothesis writes a profile that is valid except for that one key, set to a
value chosen to hurt: huge, negative, NaN and infinite numbers, booleans, text where a number
belongs, long text, nested arrays, tables, format-spec bombs, and the same as text from
``{ env = ... }``. ``load_profile`` must either accept it, and then the value is within the
field's declared bounds, or refuse it with one-line issues naming the key at its file:line;
never another exception, never unbounded time or memory.

10 examples per field by default (derandomized, so CI sees the same ones; the suite must stay near 5 minutes);
``MAGOO_HOSTILE_EXAMPLES=2000`` runs a nightly-sized search with fresh randomness.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import time
import tracemalloc
import types
import typing
from pathlib import Path
from typing import Any

import annotated_types
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

from magoo_core.errors import ProfileError
from magoo_core.plugins import create_plugin_manager
from magoo_core.profile import EngineSettings, MagooSettings, ProfileIssue, load_profile
from magoo_core.roles import Role

ROOT = Path(__file__).resolve().parents[1]
WAV = ROOT / "examples" / "audio" / "hey_jarvis_what_time_is_it.wav"
EXAMPLES = int(os.environ.get("MAGOO_HOSTILE_EXAMPLES", "10"))
NIGHTLY = "MAGOO_HOSTILE_EXAMPLES" in os.environ
#: what loading one hostile profile may allocate at its peak: a profile is 1 MiB at most
PEAK_BYTES = 64 * 1024 * 1024
#: CPU seconds one load may take: a runaway (a loop over a huge rate, a format bomb) takes far more,
#: a load takes milliseconds (CPU time, not wall-clock: other tests share the machine)
CPU_SECONDS = 10.0

PLUGINS = create_plugin_manager(environ={})  # every entry point: the core's and plugins/'s backends

#: the keys a backend needs before any hostile value goes in: those without defaults
REQUIRED: dict[tuple[Role, str], dict[str, Any]] = {
    (Role.AUDIO_SOURCE, "wav"): {"path": str(WAV)},
    (Role.AUDIO_SOURCE, "scripted"): {"segments": [{"seconds": 0.5}]},
    (Role.STT, "openai-realtime"): {"api_key": "sk-test"},
    (Role.TTS, "fish"): {"api_key": "fish-test", "format": "pcm"},  # the wav player around it records PCM
    (Role.RESPONDER, "webhook"): {"url": "http://127.0.0.1:9/hook"},
    (Role.ACTUATOR, "webhook"): {"url": "http://127.0.0.1:9/hook", "tools": [{"name": "lights", "description": "Switch them."}]},
    (Role.ACTUATOR, "servo"): {"pin": 18, "pin_factory": "mock"},
    (Role.ACTUATOR, "mqtt"): {"host": "127.0.0.1"},
    (Role.WAKE, "porcupine"): {"keywords": ["jarvis"]},
}
#: what each role needs around it to make a valid profile
AROUND: dict[Role, dict[str, Any]] = {
    Role.TTS: {"player": {"backend": "wav", "path": "out/reply.wav"}},
    Role.PLAYER: {"tts": {"backend": "tone"}},
}
BASE = {"audio_source": {"backend": "silence", "seconds": 1.0}, "stt": {"backend": "scripted"}}


# ---- the fields -----------------------------------------------------------------------------------


def shipped_backends() -> list[tuple[Role, str, type[BaseModel]]]:
    return [(role, name, PLUGINS.backend(role, name).cls.Config) for role in Role for name in PLUGINS.names(role)]


def field_paths(model: type[BaseModel], prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """Every key of ``model``, and the keys of its nested tables (``speak.gain``)."""
    paths = []
    for name, info in model.model_fields.items():
        key = info.alias or name
        paths.append((*prefix, key))
        nested = _model_in(info.annotation)
        if nested is not None and not prefix:
            paths += field_paths(nested, (*prefix, key))
    return paths


def _model_in(annotation: Any) -> type[BaseModel] | None:
    for arg in (annotation, *typing.get_args(annotation)):
        if isinstance(arg, type) and issubclass(arg, BaseModel):
            return arg
    return None


def cases() -> list[Any]:
    found = []
    for role, name, config in shipped_backends():
        for path in field_paths(config):
            found.append(pytest.param(role, name, path, id=f"{role.value}-{name}-{'.'.join(path)}"))
    for section, model in (("magoo", MagooSettings), ("engine", EngineSettings)):
        for path in field_paths(model):
            found.append(pytest.param(None, section, path, id=f"{section}-{'.'.join(path)}"))
    return found


# ---- the values ---------------------------------------------------------------------------------

_text = st.text(st.characters(exclude_categories=("Cs",)), max_size=40)
_bombs = st.sampled_from([
    "{text:999999999999}", "{text:>{text}}", "{text:.999999999}", "{0}", "{}", "{text.__class__}",
    "{text[0]}", "{", "}", "{turn}", "{text!z}", "{text:%}", "{text:=^1000001}", "reply-{turn}.wav",
    "16000", "0.3", "true", "yes", "nan", "inf", "-inf", "1e999", "", " ", "auto", "x" * 20_000,
])
_numbers = st.one_of(
    st.integers(), st.integers(min_value=-(2**70), max_value=2**70), st.sampled_from([0, -1, 1, 2**63 - 1, -(2**63)]),
    st.floats(), st.sampled_from([math.nan, math.inf, -math.inf, 1e308, -1e308, 5e-324, 0.0, -0.0]),
)
_scalars = st.one_of(_numbers, st.booleans(), _text, _bombs)


def _nested(depth: int) -> Any:
    value: Any = 1
    for _ in range(depth):
        value = [value]
    return value


#: arrays inside arrays, up to past the profile's nesting limit (32)
_deep = st.integers(min_value=2, max_value=40).map(_nested)
_values = st.recursive(
    _scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(st.sampled_from(["a", "text", "env"]), inner, max_size=2)),
    max_leaves=8,
)
#: ("toml", value) writes the value itself; ("env", text) writes { env = "HOSTILE" } and sets it
hostile = st.one_of(
    st.tuples(st.just("toml"), st.one_of(_values, _deep)),
    st.tuples(st.just("env"), st.one_of(_text, _bombs, _numbers.map(repr))),
)


def toml(value: Any) -> str:
    """``value`` as an inline TOML value (one line)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf") if math.isinf(value) else repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False).replace("\x7f", "\\u007f")  # TOML forbids a raw DEL
    if isinstance(value, list):
        return "[" + ", ".join(toml(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{json.dumps(k)} = {toml(v)}" for k, v in value.items()) + " }"
    raise TypeError(value)


def element(role: Role, name: str, key: str) -> dict[str, Any]:
    """A valid table for one entry of an array of tables (``segments``, ``models``)."""
    given = REQUIRED.get((role, name), {}).get(key)
    if given:
        return dict(given[0])
    first = PLUGINS.backend(role, name).cls.Config.model_fields[key].get_default(call_default_factory=True)[0]
    return {"name": first} if isinstance(first, str) else _plain(first)


def profile_text(role: Role | None, name: str, path: tuple[str, ...] | None, written: str | None) -> tuple[str, int]:
    """A valid profile around one hostile key (none: the valid base); returns the text and the key's line."""
    sections: dict[str, dict[str, Any]] = {key: dict(value) for key, value in BASE.items()}
    if role is None:
        section = name
        table: dict[str, Any] = {}
    else:
        section = role.value
        table = {"backend": name, **REQUIRED.get((role, name), {})}
        for key, value in AROUND.get(role, {}).items():
            sections.setdefault(key, value)
    head = path[0] if path else None
    lines: list[str] = []
    for key, value in sections.items():
        if key != section:
            lines += [f"[{key}]", *(f"{k} = {toml(v)}" for k, v in value.items()), ""]
    lines.append(f"[[{section}]]" if role is Role.ACTUATOR else f"[{section}]")
    lines += [f"{k} = {toml(v)}" for k, v in table.items() if k != head]
    if path is None:
        return "\n".join(lines) + "\n", 0
    if len(path) == 1:
        line = f"{head} = {written}"
    else:
        model = PLUGINS.backend(role, name).cls.Config if role is not None else None
        listed = model is not None and typing.get_origin(model.model_fields[head].annotation) is list
        nested = element(role, name, head) if listed else dict(table.get(head) or {})
        inner = [f"{json.dumps(k)} = {toml(v)}" for k, v in nested.items() if k != path[1]] + [f"{path[1]} = {written}"]
        line = f"{head} = {'[' if listed else ''}{{ {', '.join(inner)} }}{']' if listed else ''}"
    lines.append(line)
    return "\n".join(lines) + "\n", len(lines)


# ---- the check ----------------------------------------------------------------------------------


def bounds(model: type[BaseModel], path: tuple[str, ...]) -> tuple[list[Any], bool]:
    """The constraints declared for the key at ``path``, and whether a member of its union takes words."""
    info = model.model_fields[_attribute(model, path[0])]
    if len(path) > 1:
        return bounds(_model_in(info.annotation), path[1:])
    found = list(info.metadata)
    for arg in typing.get_args(info.annotation):
        if typing.get_origin(arg) is typing.Annotated:
            found += typing.get_args(arg)[1:]
    members = typing.get_args(info.annotation) if typing.get_origin(info.annotation) in (typing.Union, types.UnionType) else ()
    words = any(
        arg is str or (typing.get_origin(arg) is typing.Literal and any(isinstance(v, str) for v in typing.get_args(arg)))
        for arg in members
    )
    return found, words


def assert_within(value: Any, constraints: list[Any], words: bool, where: str) -> None:
    bounded = [c for c in constraints if isinstance(c, annotated_types.Ge | annotated_types.Gt | annotated_types.Le | annotated_types.Lt)]
    if bounded:  # a number: never a boolean; text only where a union also takes words ("auto", a device name)
        assert not isinstance(value, bool), f"{where}: accepted a boolean"
        assert words or not isinstance(value, str), f"{where}: accepted text"
    if isinstance(value, float):
        assert math.isfinite(value), f"{where}: accepted {value!r}"
    if not isinstance(value, int | float) or isinstance(value, bool):
        return
    for item in constraints:
        if isinstance(item, annotated_types.Ge):
            assert value >= item.ge, where
        elif isinstance(item, annotated_types.Gt):
            assert value > item.gt, where
        elif isinstance(item, annotated_types.Le):
            assert value <= item.le, where
        elif isinstance(item, annotated_types.Lt):
            assert value < item.lt, where


def file_level(issue: ProfileIssue, line: int) -> bool:
    """A problem of the file itself (nested past its limit), found before any section is read:
    it has no key, only the line, which must be the hostile key's."""
    return issue.section == "" and issue.key is None and issue.line == line


def load_once(role: Role | None, name: str, path: tuple[str, ...], hostile_value: tuple[str, Any], folder: Path) -> None:
    how, value = hostile_value
    written = '{ env = "HOSTILE" }' if how == "env" else toml(value)
    text, line = profile_text(role, name, path, written)
    profile_path = folder / "hostile.toml"
    profile_path.write_text(text, encoding="utf-8")
    environ = {"HOSTILE": value} if how == "env" else {}
    tracemalloc.start()
    cpu = time.process_time()
    try:
        profile = load_profile(profile_path, PLUGINS, environ=environ)
    except ProfileError as exc:
        issues = exc.issues
        assert issues
        for issue in issues:
            assert "\n" not in str(issue), str(issue)
        head = path[0]
        naming = [
            i for i in issues
            if i.line is not None and str(i).startswith(f"{profile_path}:{i.line}:")
            and ((i.key or "").split(".")[0] == head or head in i.message or file_level(i, line))
        ]
        assert naming, f"no issue names '{'.'.join(path)}' with its line {line}: {[str(i) for i in issues]}"
        if how == "toml":  # an issue about the key itself is at its line; one about several keys names them
            assert all(i.line == line for i in naming if (i.key or "").split(".")[0] == head), [str(i) for i in issues]
        return
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        assert peak < PEAK_BYTES, f"loading took {peak / 2**20:.0f} MiB"
        assert time.process_time() - cpu < CPU_SECONDS, f"loading took more than {CPU_SECONDS} s of CPU"
    if role is None:
        model, config = type(getattr(profile, name)), getattr(profile, name)
    else:
        spec = profile.actuators[0] if role is Role.ACTUATOR else getattr(profile, role.value)
        model, config = type(spec.config), spec.config
    accepted = config
    for part in path:
        if isinstance(accepted, list) and accepted:
            accepted = accepted[0]
        accepted = getattr(accepted, _attribute(type(accepted), part)) if accepted is not None else None
    for item in accepted if isinstance(accepted, list) else [accepted]:
        assert_within(item, *bounds(model, path), ".".join(path))


def _attribute(model: type[BaseModel], key: str) -> str:
    for name, info in model.model_fields.items():
        if (info.alias or name) == key:
            return name
    return key


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("hostile")


def test_every_backend_has_a_valid_base(folder):
    """Guards the property test: each profile must load before one key is made hostile."""
    for role, name, _ in shipped_backends():
        text, _ = profile_text(role, name, None, None)
        (folder / "base.toml").write_text(text, encoding="utf-8")
        try:
            load_profile(folder / "base.toml", PLUGINS, environ={})
        except ProfileError as exc:
            pytest.fail(f"{role.value} {name}: the base does not load; add its required keys to REQUIRED: {exc}")


def _plain(value: Any) -> Any:
    if isinstance(value, Path):
        return str(value)
    if hasattr(value, "get_secret_value"):
        return value.get_secret_value()
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, BaseModel):
        return {k: _plain(v) for k, v in value.model_dump(exclude_none=True).items()}
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items() if v is not None}
    return value


@pytest.mark.parametrize(("role", "name", "path"), cases())
@settings(
    max_examples=EXAMPLES,
    deadline=None,  # wall-clock time varies with the machine's load; load_once bounds CPU time instead
    derandomize=not NIGHTLY,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
    database=None,
)
@given(value=hostile)
def test_a_hostile_value_loads_within_bounds_or_is_named(role, name, path, value, folder):
    load_once(role, name, path, value, folder)


# ---- the command --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "code", "shown"),
    [
        ("sample_rate = 16000", 0, None),
        ("sample_rate = -16000", 2, "test.toml:4: [audio_source] sample_rate: input should be greater than or equal to 8000"),
        ("sample_rate = 1e12", 2, "test.toml:4: [audio_source] sample_rate: must be a whole number"),
        ("sample_rate = true", 2, "test.toml:4: [audio_source] sample_rate: must be an integer, not true or false"),
        ('sample_rate = "16000"', 2, "test.toml:4: [audio_source] sample_rate: must be an integer, not text"),
        ("seconds = nan", 2, "test.toml:4: [audio_source] seconds: must be a finite number"),
    ],
)
def test_magoo_check_exits_0_or_2_with_the_key_at_its_line(tmp_path, line, code, shown):
    profile = tmp_path / "test.toml"
    profile.write_text(f'[audio_source]\nbackend = "tone"\nrealtime = false\n{line}\n\n[stt]\nbackend = "scripted"\n')
    magoo = ROOT / ".venv" / "bin" / "magoo"
    result = subprocess.run([str(magoo), "check", "test.toml"], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert result.returncode == code, result.stderr
    assert "Traceback" not in result.stderr
    if shown is not None:
        assert shown in result.stderr
