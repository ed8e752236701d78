"""Profiles: loading, validation, and error reports that name file, line, section, key and a fix."""

from __future__ import annotations

import os
import random
import shutil
import textwrap
import types
from pathlib import Path
from typing import Literal

import pytest
from pydantic import BaseModel, ConfigDict, Field, SecretStr

from magoo_core.errors import ProfileError
from magoo_core.plugins import BackendInfo, PluginInfo, create_plugin_manager, hookimpl
from magoo_core.profile import (
    BackendSpec,
    EngineSettings,
    MagooSettings,
    Profile,
    ProfileIssue,
    load_profile,
    parse_profile,
)
from magoo_core.roles import Backend, BackendConfig, Role

SECRET = "sk-very-secret-value-123"


# ---- test backends, one small plugin --------------------------------------------------------------


class Mic(Backend):
    """A pretend microphone."""

    name = "mic"

    class Config(BackendConfig):
        device: str = Field("default", description="device name")
        sample_rate: int = Field(16000, description="Hz")

    async def stream(self):
        yield None


class WakeModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(description="model key")
    threshold: float = Field(0.5, ge=0, le=1, description="score that fires")


class Keyword(Backend):
    name = "keyword"

    class Config(BackendConfig):
        models: list[WakeModel] = Field(description="wake word models")
        model_dir: Path = Field(Path("models"), description="where the models are")

    def process(self, chunk):
        return None

    def reset(self):
        pass


class Cloud(Backend):
    """Transcribes and replies."""

    name = "cloud"
    replies = True

    class Config(BackendConfig):
        api_key: SecretStr = Field(description="the API key from the provider's dashboard")
        language: str = Field("en", description="language code")
        vocabulary: Path | None = Field(None, description="word list")
        retries: int = Field(2, ge=0, description="attempts")
        fallback: int | str = Field(0, description="fallback model, index or name")

    async def transcribe(self, audio):
        yield None


class Whisper(Backend):
    """Transcribes only."""

    name = "whisper"
    replies = False

    class Config(BackendConfig):
        pass

    async def transcribe(self, audio):
        yield None


class Parrot(Backend):
    name = "parrot"

    class Config(BackendConfig):
        prefix: str = Field("", description="said before the transcript")

    async def respond(self, transcript):
        return None


class Speak(Backend):
    name = "speak"

    class Config(BackendConfig):
        api_key: SecretStr = Field(description="API key")
        voice: str = Field("alto", description="voice id")

    async def synthesize(self, text):
        yield None


class Wav(Backend):
    name = "wav"

    class Config(BackendConfig):
        folder: Path = Field(Path("out"), description="where to write the replies")

    async def play(self, audio, progress):
        pass

    async def stop(self):
        pass


class Led(Backend):
    name = "led"

    class Config(BackendConfig):
        pin: int = Field(description="GPIO pin the LED is wired to")
        color: Literal["red", "green"] = Field("red", description="LED colour")


def _plugin() -> types.ModuleType:
    module = types.ModuleType("test_backends")
    for hook, classes in {
        "magoo_register_audio_sources": [Mic],
        "magoo_register_wake_detectors": [Keyword],
        "magoo_register_stt": [Cloud, Whisper],
        "magoo_register_responders": [Parrot],
        "magoo_register_tts": [Speak],
        "magoo_register_players": [Wav],
        "magoo_register_actuators": [Led],
    }.items():

        def register_all(register, _classes=classes):
            for cls in _classes:
                register(cls)

        setattr(module, hook, hookimpl(specname=hook)(register_all))
    return module


@pytest.fixture
def plugins():
    return create_plugin_manager(entry_points=False, builtins=False, extra=[_plugin()])


@pytest.fixture
def write(tmp_path):
    def write(text: str, name: str = "profile.toml") -> Path:
        path = tmp_path / name
        path.write_text(textwrap.dedent(text).lstrip("\n"))
        return path

    return write


def load_issues(path, plugins, environ=None) -> list[ProfileIssue]:
    with pytest.raises(ProfileError) as caught:
        load_profile(path, plugins, environ=environ or {})
    return caught.value.issues


MINIMAL = """
[audio_source]
backend = "mic"

[stt]
backend = "cloud"
api_key = { env = "CLOUD_KEY" }
"""


# ---- a valid profile ----------------------------------------------------------------------------


def test_valid_profile_loads_typed_values(plugins, write, tmp_path):
    path = write(
        """
        [magoo]
        name = "kitchen"

        [engine]
        mute_post = 0.8
        barge_in = true

        [audio_source]
        backend = "mic"
        sample_rate = 48000

        [wake]
        backend = "keyword"
        models = [{ name = "hey_jarvis", threshold = 0.7 }, { name = "alexa" }]
        model_dir = "wake/models"

        [stt]
        backend = "cloud"
        api_key = { env = "CLOUD_KEY" }
        vocabulary = "/etc/words.txt"

        [tts]
        backend = "speak"
        api_key = { env = "SPEAK_KEY" }

        [player]
        backend = "wav"

        [[actuators]]
        backend = "led"
        pin = 18

        [[actuators]]
        backend = "led"
        pin = 23
        color = "green"
        """
    )
    (tmp_path / ".env").write_text("SPEAK_KEY=from-dotenv\nCLOUD_KEY=ignored-environ-wins\n")

    profile = load_profile(path, plugins, environ={"CLOUD_KEY": SECRET})

    assert profile.path == path
    assert profile.name == "kitchen"
    assert profile.magoo.log_level == "info"
    assert profile.engine.mute_post == 0.8 and profile.engine.barge_in is True
    assert profile.audio_source.config.sample_rate == 48000
    wake = profile.wake.config
    assert [(m.name, m.threshold) for m in wake.models] == [("hey_jarvis", 0.7), ("alexa", 0.5)]
    assert wake.model_dir == (tmp_path / "wake/models").resolve()
    assert profile.stt.config.vocabulary == Path("/etc/words.txt")
    assert isinstance(profile.stt.config.api_key, SecretStr)
    assert profile.stt.config.api_key.get_secret_value() == SECRET  # environ before .env
    assert profile.tts.config.api_key.get_secret_value() == "from-dotenv"
    # a backend names the variable a key came from, in messages that must not show the key
    assert (profile.stt.config.variable("api_key"), profile.tts.config.variable("api_key")) == ("CLOUD_KEY", "SPEAK_KEY")
    assert profile.stt.config.variable("vocabulary") == ""  # written in the profile
    assert profile.player.config.folder == (tmp_path / "out").resolve()  # relative defaults resolve too
    assert [a.config.pin for a in profile.actuators] == [18, 23]
    assert [a.section for a in profile.actuators] == ["[[actuators]] #1", "[[actuators]] #2"]
    assert profile.responder is None
    assert [spec.section for spec in profile.specs()] == [
        "[audio_source]", "[wake]", "[stt]", "[tts]", "[player]", "[[actuators]] #1", "[[actuators]] #2",
    ]
    spec = profile.stt
    assert spec.role is Role.STT and spec.backend == "cloud" and spec.info.plugin == "test_backends"
    assert spec.secret_keys == {"api_key"}
    backend = spec.create()
    assert isinstance(backend, Cloud) and backend.config is spec.config


def test_relative_path_resolves_against_profile_folder_not_cwd(plugins, write, tmp_path, monkeypatch):
    monkeypatch.chdir("/")
    path = write(MINIMAL.replace('backend = "cloud"', 'backend = "cloud"\nvocabulary = "words/list.txt"'))
    profile = load_profile(path, plugins, environ={"CLOUD_KEY": "k"})
    assert profile.stt.config.vocabulary == (tmp_path / "words" / "list.txt").resolve()


def test_parse_profile_from_dict(plugins, tmp_path):
    data = {"audio_source": {"backend": "mic"}, "stt": {"backend": "cloud", "api_key": "plain"}}
    profile = parse_profile(data, plugins, base_dir=tmp_path)
    assert isinstance(profile, Profile) and profile.path is None
    assert profile.magoo == MagooSettings() and profile.engine == EngineSettings()
    assert profile.stt.secret_keys == frozenset()


# ---- sections and backends ----------------------------------------------------------------------


def test_unknown_section_suggests_the_close_one(plugins, write):
    path = write(MINIMAL + '\n[sst]\nbackend = "cloud"\n')
    [issue] = load_issues(path, plugins, {"CLOUD_KEY": "k"})
    assert (issue.line, issue.section, issue.key) == (8, "", "sst")
    assert issue.message == "unknown section [sst]"
    assert issue.suggestion.startswith("did you mean [stt]? Sections: [magoo], [engine], [audio_source]")
    assert str(issue).startswith(f"{path}:8: sst: unknown section [sst]. Did you mean [stt]?")


def test_unknown_top_level_key_points_to_its_section(plugins, write):
    path = write("nmae = 'x'\n" + MINIMAL + "mute_post = 1\n")
    first, second = load_issues(path, plugins, {"CLOUD_KEY": "k"})
    assert (first.line, first.section, first.key) == (1, "", "nmae")
    assert first.message == "unknown top-level key: settings belong inside a section"
    assert first.suggestion == "did you mean 'name' in [magoo]?"
    # after [stt], mute_post belongs to [stt]: the backend's Config reports it
    assert (second.line, second.section, second.key, second.message) == (9, "[stt]", "mute_post", "unknown key")


def test_unknown_backend_did_you_mean(plugins, write):
    path = write(MINIMAL.replace('"cloud"', '"clowd"'))
    [issue] = load_issues(path, plugins, {"CLOUD_KEY": "k"})
    assert (issue.line, issue.section, issue.key) == (5, "[stt]", "backend")
    assert issue.message == "unknown speech-to-text backend 'clowd'"
    assert issue.suggestion == "did you mean 'cloud'? Installed speech-to-text backends: cloud, whisper"


def test_backend_of_another_role(plugins, write):
    path = write(MINIMAL.replace('"mic"', '"wav"'))
    [issue] = load_issues(path, plugins, {"CLOUD_KEY": "k"})
    assert (issue.line, issue.section, issue.key) == (2, "[audio_source]", "backend")
    assert issue.suggestion == (
        "'wav' is a player backend, not an audio source backend. Installed audio source backends: mic"
    )


def test_backend_from_failed_plugin_names_install_command(plugins, write):
    plugins.plugins.append(
        PluginInfo(
            "fish", "magoo-fish", "1.2.0", "magoo_fish",
            error="ModuleNotFoundError: No module named 'fish_audio_sdk'",
            missing_module="fish_audio_sdk", install="uv pip install 'fish-audio-sdk>=1.0'",
        )
    )
    path = write(MINIMAL + '\n[tts]\nbackend = "fish"\n\n[player]\nbackend = "wav"\n')
    [issue] = load_issues(path, plugins, {"CLOUD_KEY": "k"})
    assert (issue.line, issue.section, issue.key) == (9, "[tts]", "backend")
    assert issue.message == "unknown text-to-speech backend 'fish'"
    assert "plugin fish 1.2.0 failed to load: ModuleNotFoundError" in issue.suggestion
    assert "uv pip install 'fish-audio-sdk>=1.0'" in issue.suggestion
    assert issue.suggestion.endswith("Installed text-to-speech backends: speak")


def test_missing_backend_key_lists_installed(plugins, write):
    path = write(MINIMAL.replace('backend = "mic"', 'device = "USB"'))
    [issue] = load_issues(path, plugins, {"CLOUD_KEY": "k"})
    assert (issue.line, issue.section, issue.key) == (1, "[audio_source]", None)
    assert issue.message == "missing key 'backend'"
    assert issue.suggestion == "name one of the installed audio source backends: mic"


def test_missing_required_sections(plugins, tmp_path):
    with pytest.raises(ProfileError) as caught:
        parse_profile({"magoo": {"name": "x"}}, plugins, base_dir=tmp_path)
    messages = [(i.section, i.line, i.message) for i in caught.value.issues]
    assert messages == [
        ("", None, "missing section [audio_source]: every profile needs an audio source"),
        ("", None, "missing section [stt]: every profile needs a speech-to-text backend"),
    ]
    assert "Installed speech-to-text backends: cloud, whisper" in caught.value.issues[1].suggestion


def test_tts_without_player(plugins, write):
    path = write(MINIMAL + '\n[tts]\nbackend = "speak"\napi_key = "k"\n')
    [issue] = load_issues(path, plugins, {"CLOUD_KEY": "k"})
    assert (issue.line, issue.section, issue.key) == (8, "[tts]", None)
    assert issue.message == "needs a [player] as well: something must play the speech it synthesizes"
    assert issue.suggestion == 'add [player] with backend = "...". Installed player backends: wav'


def test_player_without_tts(plugins, write):
    path = write(MINIMAL + '\n[player]\nbackend = "wav"\n')
    [issue] = load_issues(path, plugins, {"CLOUD_KEY": "k"})
    assert (issue.line, issue.section) == (8, "[player]")
    assert issue.message.startswith("needs a [tts] as well")


def test_stt_that_does_not_reply_needs_a_responder_to_have_something_to_say(plugins, write):
    speaking = '\n[tts]\nbackend = "speak"\napi_key = "k"\n\n[player]\nbackend = "wav"\n'
    text = '[audio_source]\nbackend = "mic"\n\n[stt]\nbackend = "whisper"\n' + speaking
    [issue] = load_issues(write(text), plugins)
    assert (issue.line, issue.section, issue.key) == (4, "[stt]", None)
    assert "'whisper' only transcribes" in issue.message
    assert issue.suggestion == 'add [responder] with backend = "...". Installed responder backends: parrot'
    load_profile(write(text + '\n[responder]\nbackend = "parrot"\n'), plugins)  # now fine


def test_a_transcription_only_profile_needs_no_responder(plugins, write):
    profile = load_profile(write('[audio_source]\nbackend = "mic"\n\n[stt]\nbackend = "whisper"\n'), plugins)
    assert profile.responder is None and profile.tts is None


def test_replies_that_is_not_a_plain_bool_is_left_to_the_engine(plugins, tmp_path, monkeypatch):
    monkeypatch.setattr(Whisper, "replies", property(lambda self: False))
    data = {"audio_source": {"backend": "mic"}, "stt": {"backend": "whisper"}}
    assert parse_profile(data, plugins, base_dir=tmp_path).responder is None


def test_actuators_as_single_table_says_use_double_brackets(plugins, write):
    path = write(MINIMAL + '\n[actuators]\nbackend = "led"\npin = 1\n')
    [issue] = load_issues(path, plugins, {"CLOUD_KEY": "k"})
    assert (issue.line, issue.section) == (8, "[actuators]")
    assert "use [[actuators]]" in issue.suggestion


# ---- keys ---------------------------------------------------------------------------------------


def test_unknown_key_did_you_mean(plugins, write):
    path = write(MINIMAL.replace("api_key =", "api_ky ="))
    issues = load_issues(path, plugins, {"CLOUD_KEY": "k"})
    unknown = [i for i in issues if i.key == "api_ky"]
    assert len(unknown) == 1
    assert (unknown[0].line, unknown[0].section, unknown[0].message) == (6, "[stt]", "unknown key")
    assert unknown[0].suggestion == "did you mean 'api_key'?"
    assert str(unknown[0]) == f"{path}:6: [stt] api_ky: unknown key. Did you mean 'api_key'?"


def test_unknown_key_without_close_match_lists_valid_keys(plugins, write):
    path = write(MINIMAL.replace('backend = "mic"', 'backend = "mic"\nzzz = 1'))
    [issue] = load_issues(path, plugins, {"CLOUD_KEY": "k"})
    assert (issue.line, issue.key) == (3, "zzz")
    assert issue.suggestion == "valid keys: device, sample_rate"


def test_unknown_nested_key_suggests_among_nested_fields(plugins, write):
    path = write(MINIMAL + '\n[wake]\nbackend = "keyword"\nmodels = [{ name = "a", treshold = 0.5 }]\n')
    [issue] = load_issues(path, plugins, {"CLOUD_KEY": "k"})
    assert (issue.line, issue.section, issue.key) == (10, "[wake]", "models.0.treshold")
    assert issue.suggestion == "did you mean 'threshold'?"


def test_wrong_type_and_constraint(plugins, write):
    path = write(
        MINIMAL
        + '\n[wake]\nbackend = "keyword"\nmodels = "hey_jarvis"\n'
        + '\n[[actuators]]\nbackend = "led"\npin = "eighteen"\ncolor = "blue"\n'
    )
    issues = load_issues(path, plugins, {"CLOUD_KEY": "k"})
    found = {(i.section, i.key): (i.line, i.message) for i in issues}
    assert found == {
        ("[wake]", "models"): (10, "input should be a valid list (expected array of table)"),
        ("[[actuators]] #1", "pin"): (14, "input should be a valid integer, unable to parse string as an integer"),
        ("[[actuators]] #1", "color"): (15, "input should be 'red' or 'green'"),
    }


def test_union_errors_are_merged_into_one(plugins, write):
    path = write(MINIMAL + "fallback = [1]\n")
    [issue] = load_issues(path, plugins, {"CLOUD_KEY": "k"})
    assert (issue.line, issue.key) == (7, "fallback")
    assert issue.message == "no accepted type matches (expected integer or string)"


def test_missing_required_key_gives_description(plugins, write):
    path = write(MINIMAL + '\n[[actuators]]\nbackend = "led"\n')
    [issue] = load_issues(path, plugins, {"CLOUD_KEY": "k"})
    assert (issue.line, issue.section, issue.key) == (8, "[[actuators]] #1", "pin")
    assert issue.message == "missing required key"
    assert issue.suggestion == "add 'pin': GPIO pin the LED is wired to"
    assert str(issue) == f"{path}:8: [[actuators]] #1 pin: missing required key. Add 'pin': GPIO pin the LED is wired to"


def test_missing_env_var(plugins, write, tmp_path):
    path = write(MINIMAL)
    [issue] = load_issues(path, plugins, {})
    assert (issue.line, issue.section, issue.key) == (6, "[stt]", "api_key")
    assert issue.message == "environment variable CLOUD_KEY is not set"
    assert issue.suggestion == f"set it (`export CLOUD_KEY=...`) or add CLOUD_KEY=... to {tmp_path / '.env'}"


def test_engine_settings_are_validated(plugins, write):
    path = write("[engine]\nmute_pre = 0.1\nmute_post = -1\npreroll = 20\nbarge_in = true\n" + MINIMAL)
    issues = load_issues(path, plugins, {"CLOUD_KEY": "k"})
    assert [(i.line, i.section, i.key, i.message) for i in issues] == [
        (3, "[engine]", "mute_post", "input should be greater than or equal to 0"),
        (4, "[engine]", "preroll", "input should be less than or equal to 10"),
    ]


def test_magoo_settings_unknown_key(plugins, write):
    path = write("[magoo]\nlog_levl = 'debug'\n" + MINIMAL)
    [issue] = load_issues(path, plugins, {"CLOUD_KEY": "k"})
    assert (issue.line, issue.section, issue.key, issue.suggestion) == (
        2, "[magoo]", "log_levl", "did you mean 'log_level'?"
    )


# ---- files --------------------------------------------------------------------------------------


def test_missing_file(plugins, tmp_path):
    [issue] = load_issues(tmp_path / "nope.toml", plugins)
    assert issue.line is None
    assert issue.message == f"the profile {tmp_path / 'nope.toml'} does not exist"


def test_toml_syntax_error_has_line(plugins, write):
    path = write('[audio_source]\nbackend = "mic"\n\n[stt]\nbackend "cloud"\n')
    [issue] = load_issues(path, plugins)
    assert issue.line == 5
    assert issue.message == "Expected '=' after a key in a key/value pair"
    assert str(issue) == f"{path}:5: Expected '=' after a key in a key/value pair"


def test_all_problems_reported_together_in_file_order(plugins, write):
    path = write(
        """
        [engine]
        mute_post = -1

        [audio_source]
        backend = "wav"

        [stt]
        backend = "cloud"
        api_key = { env = "CLOUD_KEY" }
        langauge = "de"

        [tts]
        backend = "speak"
        api_key = "k"

        [[actuators]]
        backend = "led"
        """
    )
    with pytest.raises(ProfileError) as caught:
        load_profile(path, plugins, environ={})
    issues = caught.value.issues
    assert [(i.line, i.section, i.key) for i in issues] == [
        (2, "[engine]", "mute_post"),
        (5, "[audio_source]", "backend"),
        (9, "[stt]", "api_key"),
        (10, "[stt]", "langauge"),
        (12, "[tts]", None),
        (16, "[[actuators]] #1", "pin"),
    ]
    text = str(caught.value)
    assert text.count("\n") == len(issues) - 1
    assert f"{path}:10: [stt] langauge: unknown key. Did you mean 'language'?" in text.splitlines()


def test_actuators_numbered_with_their_lines(plugins, write):
    path = write(
        MINIMAL
        + '\n[[actuators]]\nbackend = "led"\npin = 1\n'
        + '\n[[actuators]]\nbackend = "led"\npin = 2\ncolour = "red"\n'
        + '\n[[actuators]]\nbackend = "lde"\n'
    )
    issues = load_issues(path, plugins, {"CLOUD_KEY": "k"})
    assert [(i.line, i.section, i.key, i.message) for i in issues] == [
        (15, "[[actuators]] #2", "colour", "unknown key"),
        (18, "[[actuators]] #3", "backend", "unknown actuator backend 'lde'"),
    ]
    assert issues[0].suggestion == "did you mean 'color'?"


SPEAKING = MINIMAL + """
[tts]
backend = "speak"
api_key = "k"

[player]
backend = "wav"
folder = "speaker"
"""


def test_a_backup_is_a_backend_of_the_same_role_with_its_own_settings(plugins, write, tmp_path):
    path = write(SPEAKING + '\n[player.backup]\nbackend = "wav"\nfolder = "replies"\n')
    player = load_profile(path, plugins, environ={"CLOUD_KEY": "k"}).player
    assert player.config.folder == tmp_path / "speaker"
    assert (player.backup.section, player.backup.backend) == ("[player.backup]", "wav")
    assert player.backup.config.folder == tmp_path / "replies"
    assert player.backup.backup is None
    assert "backup=BackendSpec(section='[player.backup]'" in repr(player)


def test_a_wrong_backup_is_reported_at_its_own_header(plugins, write):
    path = write(
        SPEAKING
        + '\n[player.backup]\nbackend = "wav"\nfoldr = "x"\n'
        + '\n[player.backup.backup]\nbackend = "wav"\n'
        + '\n[[actuators]]\nbackend = "led"\npin = 1\nbackup = { backend = "led", pin = 2 }\n'
    )
    issues = load_issues(path, plugins, {"CLOUD_KEY": "k"})
    assert [(i.line, i.section, i.key, i.message) for i in issues] == [
        (16, "[player.backup]", "backup", "a backup cannot have a backup"),
        (16, "[player.backup]", "foldr", "unknown key"),
        (26, "[[actuators]] #1", "backup", "an actuator cannot have a backup"),
    ]
    path = write(SPEAKING.replace('folder = "speaker"', 'backup = "wav"'))
    (issue,) = load_issues(path, plugins, {"CLOUD_KEY": "k"})
    assert (issue.line, issue.key, issue.message) == (14, "backup", "must be a table")
    assert issue.suggestion == 'write [player.backup] then backend = "..."'


def test_inline_tables_and_multiline_arrays_keep_lines_right(plugins, write):
    path = write(
        """
        stt = { backend = "cloud", api_key = { env = "NOPE" } }

        [wake]
        backend = "keyword"
        models = [
            [1, 2],
            { name = "a" },
        ]
        model_dri = "x"

        [audio_source]
        backend = "mic"
        rate = 1
        """
    )
    issues = load_issues(path, plugins)
    assert [(i.line, i.section, i.key) for i in issues] == [
        (1, "[stt]", "api_key"),
        (5, "[wake]", "models.0"),
        (9, "[wake]", "model_dri"),
        (13, "[audio_source]", "rate"),
    ]


# ---- secrets ------------------------------------------------------------------------------------


def test_secret_never_in_errors_or_repr(plugins, write):
    class Careless(Backend):
        """Types its token as a plain str, so pydantic would show it."""

        name = "careless"

        class Config(BackendConfig):
            token: str = Field(description="token")
            ratio: float = Field(1.0, description="x")

        async def respond(self, transcript):
            return None

    plugins.backends[Role.RESPONDER]["careless"] = BackendInfo(Role.RESPONDER, "careless", Careless, "t", "t", "0")
    environ = {"CLOUD_KEY": SECRET, "TOKEN": SECRET}
    good = write(MINIMAL + '\n[responder]\nbackend = "careless"\ntoken = { env = "TOKEN" }\n')
    profile = load_profile(good, plugins, environ=environ)
    assert profile.responder.config.token == SECRET  # the backend gets its value
    assert SECRET not in repr(profile)
    assert SECRET not in repr(profile.stt) and SECRET not in repr(profile.responder)
    assert "**********" in repr(profile.responder)

    bad = write(
        MINIMAL.replace("api_key =", 'retries = { env = "CLOUD_KEY" }\nlanguage = { env = "CLOUD_KEY" }\napi_key =')
        + 'extra = { env = "CLOUD_KEY" }\n'
        + '\n[responder]\nbackend = "careless"\ntoken = { env = "TOKEN" }\nratio = { env = "TOKEN" }\n',
        name="bad.toml",
    )
    with pytest.raises(ProfileError) as caught:
        load_profile(bad, plugins, environ=environ)
    assert {i.key for i in caught.value.issues} == {"retries", "extra", "ratio"}
    assert SECRET not in str(caught.value)
    assert all(SECRET not in repr(issue) for issue in caught.value.issues)


def test_secret_in_validator_message_is_redacted(plugins, tmp_path):
    from pydantic import field_validator

    class Leaky(Backend):
        name = "leaky"

        class Config(BackendConfig):
            key: str = Field(description="key")

            @field_validator("key")
            @classmethod
            def _check(cls, value: str) -> str:
                raise ValueError(f"key {value} was rejected")

        async def respond(self, transcript):
            return None

    plugins.backends[Role.RESPONDER]["leaky"] = BackendInfo(Role.RESPONDER, "leaky", Leaky, "t", "t", "0")
    data = {
        "audio_source": {"backend": "mic"},
        "stt": {"backend": "cloud", "api_key": "k"},
        "responder": {"backend": "leaky", "key": {"env": "K"}},
    }
    with pytest.raises(ProfileError) as caught:
        parse_profile(data, plugins, base_dir=tmp_path, environ={"K": SECRET})
    [issue] = caught.value.issues
    assert issue.key == "key" and "was rejected" in issue.message
    assert SECRET not in str(caught.value)


def test_dotenv_mapping_and_environ_precedence(plugins, tmp_path):
    data = {"audio_source": {"backend": "mic"}, "stt": {"backend": "cloud", "api_key": {"env": "K"}}}
    profile = parse_profile(data, plugins, base_dir=tmp_path, environ={}, dotenv={"K": "from-dotenv"})
    assert profile.stt.config.api_key.get_secret_value() == "from-dotenv"
    profile = parse_profile(data, plugins, base_dir=tmp_path, environ={"K": "env"}, dotenv={"K": "dotenv"})
    assert profile.stt.config.api_key.get_secret_value() == "env"


def test_issue_str_formats():
    assert str(ProfileIssue("p.toml", None, "[stt]", None, "bad")) == "p.toml: [stt]: bad"
    assert str(ProfileIssue("p.toml", 3, "", None, "bad", "do this")) == "p.toml:3: bad. Do this"


def test_backend_spec_is_frozen(plugins, tmp_path):
    data = {"audio_source": {"backend": "mic"}, "stt": {"backend": "cloud", "api_key": "k"}}
    spec = parse_profile(data, plugins, base_dir=tmp_path).stt
    assert isinstance(spec, BackendSpec)
    with pytest.raises(AttributeError):
        spec.backend = "x"  # type: ignore[misc]


# ---- the profile file itself: hostile or sloppy bytes give one line each -------------------------

EXAMPLES = Path(__file__).parent.parent / "examples"


def one_line_issues(path, plugins, environ=None) -> list[ProfileIssue]:
    """The issues of a profile that does not load, each checked to print as one line."""
    issues = load_issues(path, plugins, environ)
    for issue in issues:
        assert "\n" not in str(issue) and "\r" not in str(issue), str(issue)
    return issues


def test_a_utf8_byte_order_mark_is_read_past(plugins, tmp_path):
    path = tmp_path / "bom.toml"
    path.write_bytes(b"\xef\xbb\xbf" + textwrap.dedent(MINIMAL).encode())
    assert load_profile(path, plugins, environ={"CLOUD_KEY": "k"}).audio_source.backend == "mic"


@pytest.mark.parametrize(
    ("data", "says"),
    [
        ("[stt]\nbackend = 'cloud'\n".encode("utf-16"), "the profile is UTF-16 text, not UTF-8"),
        (
            "[stt]\nbackend = 'cloud'\n".encode("utf-16-le"),
            "the profile is UTF-16 text (no byte order mark), not UTF-8",
        ),
        ("[stt]\nbackend = 'cloud'\n".encode("utf-32"), "the profile is UTF-32 text, not UTF-8"),
        (b"[stt]\n# caf\xe9\n", "the profile is not UTF-8 text: byte 0xe9 (invalid continuation byte)"),
    ],
)
def test_a_profile_in_another_encoding_names_it(plugins, tmp_path, data, says):
    path = tmp_path / "p.toml"
    path.write_bytes(data)
    [issue] = one_line_issues(path, plugins)
    assert issue.message == says
    assert issue.suggestion.startswith("save it as UTF-8")


@pytest.mark.parametrize(
    ("data", "says", "line"),
    [
        ("CLOUD_KEY=k\n".encode("utf-16"), "the .env is UTF-16 text, not UTF-8", None),
        (b"OTHER=1\nCLOUD_KEY=\xff\xfe\x00\x81\n", "the .env is not UTF-8 text: byte 0xff (invalid start byte)", 2),
    ],
)
def test_a_dotenv_in_another_encoding_is_one_issue_naming_the_file(plugins, write, tmp_path, data, says, line):
    (tmp_path / ".env").write_bytes(data)
    [issue] = one_line_issues(write(MINIMAL), plugins)
    assert (issue.file, issue.line, issue.message) == (str(tmp_path / ".env"), line, says)
    assert "Save it as UTF-8" in str(issue)


def test_a_dotenv_too_large_is_refused_before_it_is_parsed(plugins, write, tmp_path):
    (tmp_path / ".env").write_bytes(b"CLOUD_KEY='" + b"x" * (64 * 1024) + b"'\n")
    [issue] = one_line_issues(write(MINIMAL), plugins)
    assert issue.file == str(tmp_path / ".env") and "65,536 bytes (64 KiB) at most" in issue.message


def test_dotenv_lines_it_cannot_read_are_named_in_the_hint_not_logged(plugins, write, tmp_path, caplog):
    (tmp_path / ".env").write_text('OTHER="unterminated\nCLOUD_KY=k\nnot a line\n')
    [issue] = one_line_issues(write(MINIMAL), plugins)
    assert issue.message == "environment variable CLOUD_KEY is not set"
    assert issue.suggestion.endswith(f"to {tmp_path / '.env'} (its lines 1, 3 cannot be read)")
    assert not caplog.records  # python-dotenv's own warnings would be lines of their own


def test_a_key_set_twice_names_it_and_both_lines(plugins, write):
    path = write(MINIMAL + 'language = "en"\nretries = 1\nlanguage = "de"\n')
    [issue] = one_line_issues(path, plugins)
    assert (issue.line, issue.section, issue.key) == (9, "[stt]", "language")
    assert str(issue) == f"{path}:9: [stt] language: set twice, on lines 7 and 9. Keep one of them"


def test_a_multiline_value_set_twice_is_found_at_its_first_line(plugins, write):
    wake = "\n[wake]\nbackend = 'keyword'\nmodels = [\n  { name = 'a' },\n]\nmodels = [\n  { name = 'b' },\n]\n"
    path = write(MINIMAL + wake)
    [issue] = one_line_issues(path, plugins)
    assert (issue.line, issue.section, issue.key) == (13, "[wake]", "models")
    assert issue.message == "set twice, on lines 10 and 13"


def test_a_table_declared_twice_names_it_and_both_lines(plugins, write):
    path = write("[engine]\nmute_pre = 0.1\n" + MINIMAL + "\n[engine]\nmute_post = 1\n")
    [issue] = one_line_issues(path, plugins)
    assert (issue.line, issue.section, issue.key) == (11, "[engine]", None)
    assert str(issue) == f"{path}:11: [engine]: declared twice, on lines 1 and 11. Merge them into one table"


@pytest.mark.parametrize(
    ("text", "line", "section", "key", "message"),
    [
        (
            "stt = { backend = 'cloud' }\n[stt]\n", 2, "[stt]", None,
            "defined twice, as a key on line 1 and as a table on line 2",
        ),
        (
            "[[actuators]]\npin = 1\n[[actuators]]\npin = 2\npin = 3\n", 5, "[[actuators]] #2", "pin",
            "set twice, on lines 4 and 5",
        ),
        ("[player.backup]\nx = 1\n[player.backup]\n", 3, "[player.backup]", None, "declared twice, on lines 1 and 3"),
        ("[stt]\nx = 1\nx.y = 2\n", 3, "[stt]", "x.y", "set twice, on lines 2 and 3"),
    ],
)
def test_other_things_defined_twice(plugins, write, text, line, section, key, message):
    [issue] = one_line_issues(write(text), plugins)
    assert (issue.line, issue.section, issue.key, issue.message) == (line, section, key, message)


@pytest.mark.parametrize(
    ("name", "meant"),
    [
        ("speach", "did you mean [stt] or [tts]?"),
        ("voice", "did you mean [tts]?"),
        ("microphone", "did you mean [audio_source]?"),
        ("mic", "did you mean [audio_source]?"),
        ("speaker", "did you mean [player]?"),
        ("hotword", "did you mean [wake]?"),
        ("wake_word", "did you mean [wake]?"),
        ("enigne", "did you mean [engine]?"),
    ],
)
def test_an_unknown_section_suggests_the_one_it_means(plugins, write, name, meant):
    path = write(MINIMAL + f'\n[{name}]\nbackend = "x"\n')
    [issue] = one_line_issues(path, plugins, {"CLOUD_KEY": "k"})
    assert issue.message == f"unknown section [{name}]"
    assert issue.suggestion.startswith(meant + " Sections: [magoo], [engine]")


def test_an_unknown_section_that_means_nothing_lists_the_sections(plugins, write):
    [issue] = one_line_issues(write(MINIMAL + "\n[kitchen]\nx = 1\n"), plugins, {"CLOUD_KEY": "k"})
    assert issue.suggestion.startswith("sections: [magoo], [engine], [audio_source]")


@pytest.mark.parametrize("depth", [33, 5000])
def test_nesting_deeper_than_the_limit_is_one_issue_at_its_line(plugins, write, depth):
    path = write(MINIMAL + "models = " + "[" * depth + "]" * depth + "\n")
    [issue] = one_line_issues(path, plugins, {"CLOUD_KEY": "k"})
    assert issue.line == 7
    assert issue.message.startswith("nested more than 32 levels deep")


def test_brackets_in_strings_and_comments_do_not_count_as_nesting(plugins, write):
    deep = "[" * 40 + "{" * 40
    text = MINIMAL + f'language = "{deep}"  # {deep}\nvocabulary = """\n{deep}\n"""\n'
    profile = load_profile(write(text), plugins, environ={"CLOUD_KEY": "k"})
    assert profile.stt.config.language == deep


def test_tables_and_dotted_keys_nesting_deeper_than_the_limit(plugins, write):
    [issue] = one_line_issues(write(MINIMAL + "a" + ".a" * 40 + " = 1\n"), plugins, {"CLOUD_KEY": "k"})
    assert issue.message.startswith("nested more than 32 levels deep")
    [issue] = one_line_issues(write("[" + ".".join(["t"] * 40) + "]\n" + MINIMAL), plugins, {"CLOUD_KEY": "k"})
    assert issue.message.startswith("nested more than 32 levels deep")


def test_a_profile_larger_than_the_limit_is_refused_unread(plugins, write, tmp_path):
    path = write(MINIMAL + 'language = "' + "a" * (1024 * 1024) + '"\n')
    [issue] = one_line_issues(path, plugins, {"CLOUD_KEY": "k"})
    assert issue.message == f"the profile is {path.stat().st_size:,} bytes; magoo reads 1,048,576 bytes (1 MiB) at most"


def test_the_line_finder_needs_no_memory_beyond_the_text(write):
    """The old finder's string regex kept ~65 bytes of backtracking state per character of a
    string (6.4 GB for a 50 MB one); the scanner jumps between the characters that matter."""
    import tracemalloc

    from magoo_core.toml_lines import TomlLines

    for inside in ("a" * 50_000, "\\\\" * 25_000, "[ " * 25_000, "'" * 50_000):
        text = f'[stt]\nbackend = "x"\nvalue = "{inside}"\nmore = [\n"""{inside}""",\n]\n# {inside}\nlast = 1\n'
        tracemalloc.start()
        try:
            lines = TomlLines(text)
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        assert peak < 64 * 1024, (inside[:4], peak)
        assert lines.key("[stt]", "last") == 8


def test_a_missing_input_file_fails_at_load_with_its_resolved_path(tmp_path, write):
    real = create_plugin_manager(entry_points=False)
    path = write('[audio_source]\nbackend = "wav"\npath = "clips/hello.wav"\n\n[stt]\nbackend = "scripted"\n')
    [issue] = one_line_issues(path, real)
    assert (issue.line, issue.section, issue.key) == (3, "[audio_source]", "path")
    assert issue.message == (
        f"no file at {tmp_path / 'clips/hello.wav'} (relative paths start at the profile's folder, {tmp_path})"
    )
    (tmp_path / "clips").mkdir()
    (tmp_path / "clips/hello.wav").write_bytes(b"")  # its contents are checked when the source starts
    assert load_profile(path, real).audio_source.config.path == tmp_path / "clips/hello.wav"


def test_a_missing_file_of_a_scripted_segment_fails_at_load(tmp_path, write):
    real = create_plugin_manager(entry_points=False)
    source = '[audio_source]\nbackend = "scripted"\nsegments = [{ file = "/nowhere/x.wav" }]\n'
    path = write(source + '\n[stt]\nbackend = "scripted"\n')
    [issue] = one_line_issues(path, real)
    assert (issue.key, issue.message) == ("segments.0.file", "no file at /nowhere/x.wav")


def test_a_symlinked_profile_resolves_paths_from_the_link_and_says_where_the_file_is(tmp_path):
    real = create_plugin_manager(entry_points=False)
    (tmp_path / "real" / "clips").mkdir(parents=True)
    (tmp_path / "real" / "clips" / "hello.wav").write_bytes(b"")
    (tmp_path / "real" / "p.toml").write_text(
        '[audio_source]\nbackend = "wav"\npath = "clips/hello.wav"\n\n[stt]\nbackend = "scripted"\n'
    )
    (tmp_path / "link").mkdir()
    (tmp_path / "link" / "p.toml").symlink_to("../real/p.toml")
    assert load_profile(tmp_path / "real" / "p.toml", real).audio_source.config.path == (
        tmp_path / "real/clips/hello.wav"
    )
    [issue] = one_line_issues(tmp_path / "link" / "p.toml", real)
    assert issue.message.startswith(f"no file at {tmp_path / 'link/clips/hello.wav'}")
    assert f"it is beside the file the profile links to, in {tmp_path / 'real'}" in issue.message
    (tmp_path / "link" / "clips").mkdir()
    (tmp_path / "link" / "clips" / "hello.wav").write_bytes(b"")
    profile = load_profile(tmp_path / "link" / "p.toml", real)
    assert profile.audio_source.config.path == tmp_path / "link/clips/hello.wav"
    assert profile.path == tmp_path / "link" / "p.toml"  # run's status_file and the service start here too


@pytest.mark.parametrize(
    ("text", "section", "key", "suggestion"),
    [
        ('[magoo]\nname = { env = "N" }\n', "[magoo]", "name", "write the value itself"),
        ('[engine]\nmute_pre = { env = "N" }\n', "[engine]", "mute_pre", "write the value itself"),
        ('[responder]\nbackend = { env = "N" }\n', "[responder]", "backend", "write the backend's name. Installed"),
        ('[player]\nbackend = "wav"\nbackup = { env = "N" }\n', "[player]", "backup", 'write [player.backup] then'),
    ],
)
def test_env_where_no_secret_is_taken_says_so(plugins, write, text, section, key, suggestion):
    path = write(MINIMAL + '\n[tts]\nbackend = "speak"\napi_key = "k"\n' + text)
    issues = one_line_issues(path, plugins, {"N": "x", "CLOUD_KEY": "k"})
    [issue] = [issue for issue in issues if issue.key == key]
    assert issue.section == section
    assert issue.message.startswith("does not take a secret: { env = ... } works in a backend's own keys")
    assert issue.suggestion.startswith(suggestion)


def test_an_issue_prints_as_one_line_whatever_the_profile_holds(plugins, write):
    path = write(MINIMAL + '"a\\nb\\u001b[31m" = 1\n' + f'"{"k" * 500}" = 2\n')
    issues = one_line_issues(path, plugins, {"CLOUD_KEY": "k"})
    assert [issue.key for issue in issues] == ["a\nb\x1b[31m", "k" * 500]
    assert f"{path}:7: [stt] a\\nb\\x1b[31m: unknown key" in str(issues[0])
    assert len(str(issues[1])) < 300 and "k" * 79 + "…" in str(issues[1])


# ---- fuzz: mutated profiles and .env files load or give one-line issues ---------------------------

FUZZ_CASES = int(os.environ.get("MAGOO_PROFILE_FUZZ_CASES", "300"))
FUZZ_SEED = int(os.environ.get("MAGOO_PROFILE_FUZZ_SEED", "20240607"))
_TOKENS = [
    "[", "]", "{", "}", "[[", "]]", '"', "'", '"""', "'''", "=", ".", ",", "#", "\\", "\n", "\r", "\t", "\x00",
    "\x1b[2J", "\u2028", "\ufeff", "\udcff", "é", "[speach]", "[engine]", "[[actuators]]", "[stt.backup]",
    "{ env = \"TPL\" }", "backend = 1", "a.b.c = 1", "inf", "1979-05-27T07:32:00Z", "0x1F", "1e999",
]
_WRONG_VALUES = ["[]", "{}", "-1", "1e308", "true", '""', '[1, "a"]', "{ env = 1 }", '{ env = "NOPE" }', "nan"]


def _mutate(rng: random.Random, text: str) -> tuple[bytes, bytes | None]:
    """One hostile or sloppy variant of ``text``, and a ``.env`` to go with it (None: none)."""
    lines = text.splitlines(keepends=True)
    kind = rng.randrange(12)
    if kind == 0:  # a few random bytes somewhere
        data = bytearray(text.encode())
        for _ in range(rng.randint(1, 8)):
            data[rng.randrange(len(data))] = rng.randrange(256)
        return bytes(data), None
    if kind == 1:  # cut short
        return text.encode()[: rng.randrange(len(text))], None
    if kind == 2:  # a line twice, or a line lost, or two lines swapped
        i, j = rng.randrange(len(lines)), rng.randrange(len(lines))
        choice = rng.randrange(3)
        if choice == 0:
            lines.insert(j, lines[i])
        elif choice == 1:
            del lines[i]
        else:
            lines[i], lines[j] = lines[j], lines[i]
        return "".join(lines).encode(), None
    if kind == 3:  # a byte order mark, or another encoding altogether
        encoding = rng.choice(["utf-8-sig", "utf-16", "utf-16-le", "utf-32", "latin-1", "cp1252"])
        return text.replace("test", "tést").encode(encoding, errors="replace"), None
    if kind == 4:  # nesting: arrays, inline tables, dotted keys, headers; sometimes unbalanced
        depth = rng.choice([rng.randint(1, 40), rng.randint(30, 3000)])
        opener, closer = rng.choice([("[", "]"), ("{ a = ", "}"), ("[{ a = ", "}]")])
        value = opener * depth + "1" + closer * rng.choice([depth, depth - 1, 0])
        forms = [f"deep = {value}\n", "a" + ".a" * depth + " = 1\n", "[" + ".".join(["t"] * depth) + "]\n"]
        lines.insert(rng.randrange(len(lines) + 1), rng.choice(forms))
        return "".join(lines).encode(), None
    if kind == 5:  # a huge string, sometimes past the size limit, sometimes unterminated
        size = rng.choice([rng.randint(1_000, 100_000), rng.randint(1_100_000, 1_200_000)])  # under, over 1 MiB
        quote = rng.choice(['"', "'", '"""', "'''"])
        body = (rng.choice(["a", "\\\\", "[", "\\", "'\""]) * size)[:size]
        end = quote if rng.random() < 0.8 else ""
        lines.insert(rng.randrange(len(lines) + 1), f"model = {quote}{body}{end}\n")
        return "".join(lines).encode(), None
    if kind == 6:  # a .env in a wrong encoding, random bytes, or huge
        env = rng.choice([
            "TPL=hello\n".encode("utf-16"), "TPL=héllo\n".encode("latin-1"), rng.randbytes(rng.randint(1, 2000)),
            b"TPL='" + b"x" * rng.randint(1, 1_100_000) + b"'\n", b"TPL=\"unterminated\n" * 50, b"\xef\xbb\xbfTPL=ok\n",
        ])
        return text.encode(), env
    if kind == 7:  # tokens dropped in anywhere
        data = text
        for _ in range(rng.randint(1, 6)):
            at = rng.randrange(len(data) + 1)
            data = data[:at] + rng.choice(_TOKENS) + data[at:]
        return data.encode("utf-8", errors="surrogatepass"), None
    if kind == 8:  # control characters and long names in keys, section names and values
        name = rng.choice(["a\\nINFO forged", "\\u001b[31mred", "x" * rng.randint(1, 5000), "tab\\there"])
        form = rng.choice([f'"{name}" = 1\n', f'["{name}"]\nx = 1\n', f'name = "{name}"\n', f'backend = "{name}"\n'])
        lines.insert(rng.randrange(len(lines) + 1), form)
        return "".join(lines).encode(), None
    if kind == 9:  # values of the wrong type
        i = rng.randrange(len(lines))
        if "=" in lines[i]:
            key = lines[i].split("=", 1)[0]
            lines[i] = f"{key}= {rng.choice(_WRONG_VALUES)}\n"
        return "".join(lines).encode(), None
    if kind == 10:  # a whole file of random bytes
        return rng.randbytes(rng.randint(0, 3000)), None
    return text.encode(), None  # the original: must load


def test_fuzzed_profiles_load_or_give_one_line_issues(tmp_path):
    """Every mutation of the test profile loads or raises ProfileError whose issues are one line
    each; nothing else escapes (no RecursionError, UnicodeDecodeError, MemoryError, traceback).
    MAGOO_PROFILE_FUZZ_CASES=20000 (with --timeout=0) runs more, MAGOO_PROFILE_FUZZ_SEED another
    sequence; a failure names the seed and the case to replay."""
    real = create_plugin_manager(entry_points=False)
    base = (EXAMPLES / "test.toml").read_text().replace('template = "You asked: {text}"', 'template = { env = "TPL" }')
    rng = random.Random(FUZZ_SEED)
    loaded = 0
    for case in range(FUZZ_CASES):
        folder = tmp_path / str(case)
        folder.mkdir()
        profile, env = _mutate(rng, base)
        (folder / "p.toml").write_bytes(profile)
        if env is not None:
            (folder / ".env").write_bytes(env)
        where = f"seed {FUZZ_SEED}, case {case}: {folder / 'p.toml'}"
        try:
            load_profile(folder / "p.toml", real, environ={} if env is not None else {"TPL": "x"})
            loaded += 1
        except ProfileError as exc:
            assert exc.issues, where
            for issue in exc.issues:
                shown = str(issue)
                assert "\n" not in shown and "\r" not in shown and "Traceback" not in shown, f"{where}: {shown!r}"
                assert len(shown) < 2000, where
        except Exception as exc:  # noqa: BLE001 - the point: nothing else may escape
            pytest.fail(f"{where}: {type(exc).__name__}: {exc}"[:2000])
        shutil.rmtree(folder)
    assert 0 < loaded < FUZZ_CASES  # the mutations both break profiles and leave some loadable


# ---- the same cases through the real command ------------------------------------------------------


def test_profile(folder: Path, edit=lambda text: text, name: str = "p.toml") -> Path:
    """examples/test.toml, edited, written into ``folder`` (its outputs land in folder/out)."""
    path = folder / name
    path.write_text(edit((EXAMPLES / "test.toml").read_text()))
    return path


test_profile.__test__ = False  # a helper, not a test


def one_problem(result, says: str) -> None:
    """magoo check or run refused the profile: exit 2, one issue line containing ``says``, no traceback."""
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    problem = [line for line in result.stderr.splitlines() if line.startswith("  ")]
    assert len(problem) == 1 and says in problem[0], result.stderr


@pytest.mark.parametrize("command", [("check", "p.toml"), ("run", "-p", "p.toml", "--turns", "1", "-q")])
def test_magoo_names_a_dotenv_that_is_not_utf8(magoo, tmp_path, command):
    test_profile(tmp_path, lambda text: text.replace('"You asked: {text}"', '{ env = "TEMPLATE" }'))
    (tmp_path / ".env").write_bytes("TEMPLATE=You asked: {text}\n".encode("utf-16"))
    one_problem(magoo(*command), f"{tmp_path / '.env'}: the .env is UTF-16 text, not UTF-8. Save it as UTF-8")


@pytest.mark.parametrize(
    ("edit", "says"),
    [
        (
            lambda text: text.replace("mute_post = 0.2", "mute_post = 0.2\nmute_pre = 0.1"),
            "p.toml:16: [engine] mute_pre: set twice, on lines 14 and 16",
        ),
        (
            lambda text: text.replace('model = "hey_magoo"', "model = " + "[" * 3000 + "]" * 3000),
            "p.toml:31: nested more than 32 levels deep",
        ),
        (
            lambda text: text.replace('model = "hey_magoo"', 'model = "' + "a" * 2_000_000 + '"'),
            "magoo reads 1,048,576 bytes (1 MiB) at most",
        ),
    ],
    ids=["key-twice", "nested-3000", "2-MB-string"],
)
def test_magoo_check_gives_one_line_for_a_broken_profile_file(magoo, tmp_path, edit, says):
    test_profile(tmp_path, edit)
    one_problem(magoo("check", "p.toml"), says)


def test_magoo_check_and_run_resolve_a_symlinked_profiles_paths_alike(magoo, tmp_path):
    """Both start from the link's folder; check no longer passes what run then refuses."""
    (tmp_path / "real").mkdir()
    (tmp_path / "link").mkdir()
    shutil.copy(EXAMPLES / "audio" / "hey_jarvis_what_time_is_it.wav", tmp_path / "real" / "command.wav")
    with_file = 'segments = [\n    { file = "command.wav" },'
    test_profile(tmp_path / "real", lambda text: text.replace("segments = [", with_file))
    (tmp_path / "link" / "p.toml").symlink_to("../real/p.toml")
    run = ["run", "-p", "link/p.toml", "--turns", "1", "-q"]
    missing = f"no file at {tmp_path / 'link' / 'command.wav'}"
    one_problem(magoo("check", "link/p.toml"), missing)
    one_problem(magoo(*run), missing)
    shutil.copy(tmp_path / "real" / "command.wav", tmp_path / "link" / "command.wav")
    result = magoo(*run)
    assert result.returncode == 0, result.stderr


def test_magoo_run_logs_a_name_with_a_newline_on_one_line(magoo, tmp_path):
    forged = 'name = "a\\n12:00:00 INFO    magoo.engine: forged"'
    test_profile(tmp_path, lambda text: text.replace('name = "test"', forged))
    result = magoo("run", "-p", "p.toml", "--turns", "1", "-q")
    assert result.returncode == 0, result.stderr
    assert "a\\n12:00:00 INFO    magoo.engine: forged: listening" in result.stderr
    assert not [line for line in result.stderr.splitlines() if line.startswith("12:00:00")]
