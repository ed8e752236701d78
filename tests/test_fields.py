"""magoo_core.fields: strict, finite, bounded numbers, strict booleans and checked templates."""

from __future__ import annotations

import math
import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, Field, ValidationError

from magoo_core.fields import (
    MAX_TEMPLATE_WIDTH,
    Choice,
    Count,
    EnvText,
    Ratio,
    SampleRate,
    Seconds,
    StrictBool,
    Template,
    check_template,
    describe_ranges,
)
from magoo_core.roles import BackendConfig

EXAMPLES = int(os.environ.get("MAGOO_HOSTILE_EXAMPLES", "200"))


class Example(BaseModel):
    timeout: Seconds(0.1, 300) = Field(5.0, description="Seconds one request may take.")
    rate: SampleRate | None = Field(None, description="Rate in Hz.")
    level: Ratio(lo_open=True) = Field(0.5, description="A level.")
    count: Count(0, 10) = 1
    loud: StrictBool = False
    bitrate: Choice(64, 128) = 64
    reply: Template("text") = "You said: {text}"


def refused(**values) -> str:
    with pytest.raises(ValidationError) as caught:
        Example(**values)
    (error,) = caught.value.errors()
    return error["msg"]


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"timeout": True}, "must be a number, not true or false"),
        ({"timeout": "5"}, "must be a number, not text: write it without quotes"),
        ({"timeout": math.nan}, "must be a finite number (not nan or inf)"),
        ({"timeout": -math.inf}, "must be a finite number (not nan or inf)"),
        ({"timeout": 10**400}, "is far too large"),
        ({"timeout": 0.01}, "Input should be greater than or equal to 0.1"),
        ({"timeout": 301}, "Input should be less than or equal to 300"),
        ({"rate": 16000.0}, "must be a whole number: write it without a decimal point"),
        ({"rate": 1e300}, "must be a whole number: write it without a decimal point"),
        ({"rate": False}, "must be an integer, not true or false"),
        ({"rate": "16000"}, "must be an integer, not text: write it without quotes"),
        ({"rate": 10**30}, "Input should be less than or equal to 192000"),
        ({"level": 0}, "Input should be greater than 0"),
        ({"count": -1}, "Input should be greater than or equal to 0"),
        ({"loud": 1}, "must be true or false"),
        ({"loud": "yes"}, "must be true or false, not text: write it without quotes"),
        ({"bitrate": True}, "must be one of 64, 128, written as a whole number"),
        ({"bitrate": 64.0}, "must be one of 64, 128, written as a whole number"),
    ],
)
def test_a_value_of_the_wrong_kind_is_refused_with_what_to_write(values, message):
    assert refused(**values) == message


def test_the_messages_never_repeat_the_value():
    for values in ({"timeout": "s3cret"}, {"loud": "s3cret"}, {"rate": EnvText("s3cret")}, {"loud": EnvText("s3cret")}):
        assert "s3cret" not in refused(**values)


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ({"timeout": EnvText(" 0.3 ")}, {"timeout": 0.3}),
        ({"rate": EnvText("16000")}, {"rate": 16000}),
        ({"count": EnvText("3")}, {"count": 3}),
        ({"loud": EnvText("true")}, {"loud": True}),
        ({"loud": EnvText("Off")}, {"loud": False}),
        ({"bitrate": EnvText("128")}, {"bitrate": 128}),
    ],
)
def test_text_from_the_environment_becomes_the_number_or_boolean_expected(values, expected):
    assert Example(**values).model_dump(include=set(expected)) == expected


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"timeout": EnvText("nan")}, "must be a finite number (not nan or inf)"),
        ({"timeout": EnvText("1e999")}, "must be a finite number (not nan or inf)"),
        ({"timeout": EnvText("ten")}, "must be a number; the environment variable holds other text"),
        ({"rate": EnvText("16000.0")}, "must be an integer; the environment variable holds other text"),
        ({"loud": EnvText("maybe")}, "must be true or false; the environment variable holds other text"),
        ({"timeout": EnvText("1000")}, "Input should be less than or equal to 300"),
    ],
)
def test_text_from_the_environment_is_bounded_like_any_value(values, message):
    assert refused(**values) == message


@pytest.mark.parametrize(
    ("template", "message"),
    [
        ("{turn}", "names an unknown field {turn}: the fields are {text}"),
        ("{}", "has a positional field {}: name one of {text}"),
        ("{0}", "has a positional field {0}: name one of {text}"),
        ("{text.__class__}", "field {text.__class__} reaches into a value (. or [): use a field as it is, one of {text}"),
        ("{text[0]}", "field {text[0]} reaches into a value (. or [): use a field as it is, one of {text}"),
        ("{text:>{text}}", "field {text} has a field inside its format spec; write the spec itself"),
        ("{text:999999999999}", f"field {{text}} has a width over {MAX_TEMPLATE_WIDTH}"),
        ("{text:.1001}", f"field {{text}} has a precision over {MAX_TEMPLATE_WIDTH}"),
        ("{text:d}", "cannot be filled in: Unknown format code 'd' for object of type 'str'"),
        ("{text", "is not a valid template (expected '}' before end of string); write a literal brace twice: {{ or }}"),
        ("}", "is not a valid template (Single '}' encountered in format string); write a literal brace twice: {{ or }}"),
    ],
)
def test_a_template_is_checked_when_it_loads(template, message):
    assert refused(reply=template) == message


@pytest.mark.parametrize("template", ["You said: {text}", "{text:>40}", "{{literal}} {text!r:.20}", "", "no fields"])
def test_a_template_that_fills_in_is_kept(template):
    assert Example(reply=template).reply == template


@settings(max_examples=EXAMPLES, derandomize="MAGOO_HOSTILE_EXAMPLES" not in os.environ, database=None)
@given(st.text(alphabet=st.sampled_from("{}[].!:<>^=+-#0123456789,_sdrxtext %z"), max_size=30), st.text(max_size=50))
def test_any_template_either_is_refused_or_fills_in_boundedly(template, heard):
    try:
        check_template(template, ("text",))
    except ValueError:
        return
    filled = template.format(text=heard)
    assert len(filled) <= len(template) + (len(heard) + MAX_TEMPLATE_WIDTH) * template.count("{")


def test_every_number_states_its_range_in_its_description():
    class Config(BackendConfig):
        timeout: Seconds(0.1, 300) = Field(5.0, description="Seconds one request may take.")
        rate: SampleRate | None = Field(None, description="Rate in Hz.")
        level: Ratio(lo_open=True) = Field(0.5, description="A level.")
        gain: Count(0, 200) = Field(100, description="Loudness (0-200).")

    fields = Config.model_fields
    assert fields["timeout"].description == "Seconds one request may take. (0.1 to 300)"
    assert fields["rate"].description == "Rate in Hz. (8000 to 192000)"
    assert fields["level"].description == "A level. (more than 0, at most 1)"
    assert fields["gain"].description == "Loudness (0-200)."  # states it already
    describe_ranges(Config)  # a second call adds nothing
    assert fields["timeout"].description == "Seconds one request may take. (0.1 to 300)"


def test_a_profile_takes_numbers_from_the_environment_but_not_from_quoted_text(tmp_path):
    from magoo_core.errors import ProfileError
    from magoo_core.plugins import create_plugin_manager
    from magoo_core.profile import load_profile

    plugins = create_plugin_manager(entry_points=False)
    profile = tmp_path / "env.toml"
    head = '[audio_source]\nbackend = "tone"\n'
    tail = '\n[stt]\nbackend = "scripted"\n'
    profile.write_text(head + 'amplitude = { env = "LEVEL" }\nrealtime = { env = "LIVE" }\nsample_rate = { env = "RATE" }' + tail)
    config = load_profile(profile, plugins, environ={"LEVEL": "0.3", "LIVE": "false", "RATE": "8000"}).audio_source.config
    assert (config.amplitude, config.realtime, config.sample_rate) == (0.3, False, 8000)

    profile.write_text(head + 'amplitude = "0.3"\nrealtime = "false"\nsample_rate = "8000"' + tail)
    with pytest.raises(ProfileError) as caught:
        load_profile(profile, plugins, environ={})
    assert [str(issue).split(": ", 1)[1] for issue in caught.value.issues] == [
        "[audio_source] amplitude: must be a number, not text: write it without quotes",
        "[audio_source] realtime: must be true or false, not text: write it without quotes",
        "[audio_source] sample_rate: must be an integer, not text: write it without quotes",
    ]


def test_env_text_keeps_the_name_of_its_variable_for_messages():
    text = EnvText("s3cret-value", "OPENAI_API_KEY")
    assert text == "s3cret-value" and text.variable == "OPENAI_API_KEY"
    assert EnvText("x").variable == ""
    assert "OPENAI_API_KEY" not in repr(text)  # the value's repr stays the value's
