"""The ``magoo`` command line, run as a user runs it: the installed script, in a subprocess."""

from __future__ import annotations

import importlib.metadata

import json
import queue
import re
import signal
import threading
import time
from pathlib import Path

import pytest

from magoo_core.audio import read_wav

EXAMPLES = Path(__file__).parent.parent / "examples"
#: Fake installed distributions: magoo-broken 0.3.0 (needs a missing library) and magoo-secretstt.
PLUGIN_SITE = Path(__file__).parent / "fixtures" / "site"
SECRET = "sk-very-secret-value-123"


def copy_test_profile(folder: Path, name: str = "test.toml", edit=None) -> Path:
    """examples/test.toml copied into ``folder`` (its outputs land in folder/out), optionally edited."""
    text = (EXAMPLES / "test.toml").read_text()
    if edit is not None:
        text = edit(text)
    path = folder / name
    path.write_text(text)
    return path


def replace_section(text: str, section: str, body: str) -> str:
    edited, count = re.subn(rf"^\[{section}\]\n(?:(?!\[).*\n)*", f"[{section}]\n{body}\n", text, count=1, flags=re.M)
    assert count == 1, f"no [{section}] in the profile"
    return edited


def in_order(text: str, *parts: str) -> bool:
    position = 0
    for part in parts:
        position = text.find(part, position)
        if position < 0:
            return False
        position += len(part)
    return True


def events(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def assert_no_traceback(result) -> None:
    assert "Traceback" not in result.stdout + result.stderr


# ---- running profiles ---------------------------------------------------------------------------


def test_run_the_test_profile_makes_a_whole_turn(magoo, tmp_path):
    profile = copy_test_profile(tmp_path)
    elsewhere = tmp_path / "elsewhere"  # relative paths in the profile resolve against its folder
    elsewhere.mkdir()

    result = magoo("run", "--profile", profile, cwd=elsewhere)

    assert result.returncode == 0, result.stderr
    assert in_order(
        result.stdout,
        "ready: audio_source scripted → wake scripted → stt scripted → responder echo → tts tone → player wav;"
        " actuators: log",
        "turn 1: wake word 'hey_magoo'",
        'turn 1: heard "what time is it"',
        'turn 1: reply "You asked: what time is it"',
        "turn 1: sound started",
        "turn 1: sound ended after",
        "turn 1: ok",
        f"turn 1: the reply (0.8 s) is in {tmp_path / 'out' / 'reply-1.wav'}",  # the wav player's own line
        "stopping after 1 turn, 0 errors",
    ), result.stdout
    assert_no_traceback(result)

    log = events(tmp_path / "out" / "events.jsonl")
    names = [e["event"] for e in log]

    def first(name: str, where=lambda e: True) -> int:
        return next(i for i, e in enumerate(log) if e["event"] == name and where(e))

    steps = [
        first("wake"),
        first("transcript", lambda e: e["transcript"]["final"]),
        first("reply", lambda e: e["reply"]["final"]),
        first("speak_start"),
        first("speak_chunk"),
        first("speak_end"),
        first("turn_end"),
    ]
    assert steps == sorted(steps), names
    assert [e["timeline"]["outcome"] for e in log if e["event"] == "turn_end"] == ["ok"]
    chunks = [i for i, name in enumerate(names) if name == "speak_chunk"]
    assert first("speak_start") < min(chunks) and max(chunks) < first("speak_end")

    fmt, pcm = read_wav(tmp_path / "out" / "reply-1.wav")
    assert fmt.duration(len(pcm)) > 0
    assert not (elsewhere / "out").exists()


def test_turns_stops_a_looping_source(magoo, tmp_path):
    profile = copy_test_profile(tmp_path, edit=lambda t: t.replace("[audio_source]\n", "[audio_source]\nloop = true\n"))
    assert "loop = true" in profile.read_text()

    result = magoo("run", "--profile", profile, "--turns", "2")

    assert result.returncode == 0, result.stderr
    assert "turn 2: ok" in result.stdout and "turn 3" not in result.stdout
    turn_ends = [e for e in events(tmp_path / "out" / "events.jsonl") if e["event"] == "turn_end"]
    assert [e["timeline"]["turn"] for e in turn_ends] == [1, 2]
    assert "stopped after 2 turns" in result.stderr


def test_the_example_third_party_plugin_answers(magoo, tmp_path):
    profile = copy_test_profile(tmp_path, edit=lambda t: replace_section(t, "responder", 'backend = "hello"'))

    result = magoo("run", "--profile", profile)

    assert result.returncode == 0, result.stderr
    assert 'turn 1: reply "Hello! You said: what time is it"' in result.stdout


ENDLESS = """\
[magoo]
name = "endless"

[audio_source]
backend = "silence"
realtime = true

[wake]
backend = "scripted"
level = 0.2

[stt]
backend = "scripted"

[responder]
backend = "echo"
"""


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_signal_stops_the_run_cleanly(magoo_process, tmp_path, sig):
    profile = tmp_path / "endless.toml"
    profile.write_text(ENDLESS)
    proc = magoo_process("run", "--profile", profile)
    lines: queue.Queue[str] = queue.Queue()
    reader = threading.Thread(target=lambda: [lines.put(line) for line in proc.stderr], daemon=True)
    reader.start()

    seen: list[str] = []
    while not any("listening" in line for line in seen):
        seen.append(lines.get(timeout=30))  # queue.Empty fails the test: it never started listening
    proc.send_signal(sig)

    assert proc.wait(timeout=15) == 0
    reader.join(timeout=15)
    while not lines.empty():
        seen.append(lines.get_nowait())
    log = "".join(seen)
    assert "stopped" in log
    assert "Traceback" not in log


def test_a_running_magoo_keeps_a_status_file_up_to_date(magoo_process, tmp_path):
    profile = tmp_path / "endless.toml"
    profile.write_text(ENDLESS.replace('name = "endless"', 'name = "kitchen"\n\n[engine]\nstatus_file = "run/status.json"\nstatus_interval = 0.2'))
    status_file = tmp_path / "run" / "status.json"  # relative to the profile's folder
    proc = magoo_process("run", "--profile", profile)
    threading.Thread(target=proc.stderr.read, daemon=True).start()

    documents = []
    deadline = time.monotonic() + 30
    while len(documents) < 2 and time.monotonic() < deadline:  # two different writes, read while it runs
        if status_file.exists():
            document = json.loads(status_file.read_text())  # never half written: replaced atomically
            if not documents or document["counters"]["frames"] > documents[-1]["counters"]["frames"]:
                documents.append(document)
        time.sleep(0.05)
    assert len(documents) == 2, "the status file was not written, or not rewritten, within 30 s"
    live = documents[-1]
    assert live["running"] is True and live["name"] == "kitchen" and live["pid"] == proc.pid
    assert live["state"] == "listening" and live["uptime"] > 0
    assert live["input_level"] == 0.0  # the source is silence
    assert set(live["backends"]) == {"audio_source:silence", "wake:scripted", "stt:scripted", "responder:echo"}
    assert {b["health"] for b in live["backends"].values()} == {"ok"}

    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=15) == 0
    final = json.loads(status_file.read_text())
    assert final["running"] is False and final["counters"]["frames"] >= live["counters"]["frames"]
    assert [p.name for p in status_file.parent.iterdir()] == ["status.json"]  # no temporary files left


# ---- profile errors -----------------------------------------------------------------------------


BROKEN_BASE = """\
[magoo]
name = "broken"

[engine]
mute_post = 0.2

[audio_source]
backend = "scripted"
realtime = false
segments = [{ seconds = 0.5 }]

[wake]
backend = "scripted"
level = 0.2

[stt]
backend = "scripted"

[responder]
backend = "echo"
template = "You asked: {text}"

[tts]
backend = "tone"

[player]
backend = "wav"
path = "out/reply-{n}.wav"
"""

# (old text, new text, what the message says after "file:line: ", the suggestion)
PROFILE_ERRORS = {
    "unknown section": (
        "[wake]\n", "[wakeword]\n",
        "wakeword: unknown section [wakeword]", "Did you mean [wake]?",
    ),
    "unknown backend": (
        'backend = "tone"', 'backend = "tonee"',
        "[tts] backend: unknown text-to-speech backend 'tonee'", "Did you mean 'tone'?",
    ),
    "unknown key": (
        "template = ", "templat = ",
        "[responder] templat: unknown key", "Did you mean 'template'?",
    ),
    "wrong type": (
        "level = 0.2", 'level = "loud"',
        "[wake] level: input should be a valid number", None,
    ),
    "missing required key": (
        'backend = "scripted"\nrealtime = false\nsegments = [{ seconds = 0.5 }]', 'backend = "wav"\nrealtime = false',
        "[audio_source] path: missing required key", "Add 'path': The WAV file",
    ),
    "missing env var": (
        'template = "You asked: {text}"', 'template = { env = "MAGOO_TEST_UNSET_VARIABLE" }',
        "[responder] template: environment variable MAGOO_TEST_UNSET_VARIABLE is not set",
        "MAGOO_TEST_UNSET_VARIABLE=...",
    ),
    "toml syntax": (
        "[engine]\n", "[engine\n",
        "Expected ']' at the end of a table declaration", None,
    ),
}


def line_of(text: str, needle: str) -> int:
    return text[: text.index(needle)].count("\n") + 1


@pytest.mark.parametrize("case", list(PROFILE_ERRORS))
def test_a_profile_error_is_one_clear_message(magoo, tmp_path, case):
    old, new, message, suggestion = PROFILE_ERRORS[case]
    assert old in BROKEN_BASE
    text = BROKEN_BASE.replace(old, new, 1)
    (tmp_path / "broken.toml").write_text(text)
    # the line of the problem: the line the key is on, or the section header for a missing key
    line = line_of(text, "[audio_source]" if case == "missing required key" else new.splitlines()[0])

    for args in (["check", "broken.toml"], ["run", "--profile", "broken.toml"]):
        result = magoo(*args)

        assert result.returncode == 2, (args, result.stderr)
        assert "broken.toml: 1 problem\n" in result.stderr
        assert f"broken.toml:{line}: {message}" in result.stderr
        if suggestion:
            assert suggestion in result.stderr
        assert result.stdout == ""
        assert_no_traceback(result)


def test_every_problem_of_a_profile_is_printed_together(magoo, tmp_path):
    text = BROKEN_BASE
    for case in ("missing required key", "wrong type", "unknown key", "unknown backend"):
        old, new, _, _ = PROFILE_ERRORS[case]
        text = text.replace(old, new, 1)
    text += '\n[sttt]\nbackend = "scripted"\n'
    (tmp_path / "broken.toml").write_text(text)

    result = magoo("check", "broken.toml")

    assert result.returncode == 2
    assert "broken.toml: 5 problems\n" in result.stderr
    assert in_order(
        result.stderr,
        f"broken.toml:{line_of(text, '[audio_source]')}: [audio_source] path: missing required key",
        f"broken.toml:{line_of(text, 'level = ')}: [wake] level: input should be a valid number",
        f"broken.toml:{line_of(text, 'templat = ')}: [responder] templat: unknown key",
        f"broken.toml:{line_of(text, 'tonee')}: [tts] backend: unknown text-to-speech backend 'tonee'",
        f"broken.toml:{line_of(text, '[sttt]')}: sttt: unknown section [sttt]. Did you mean [stt]?",
    ), result.stderr
    assert_no_traceback(result)


def test_the_problem_count_line_shows_the_path_as_given(magoo, tmp_path):
    folder = tmp_path / "profiles[old]" / ("a-long-folder-name-" * 3)
    folder.mkdir(parents=True)
    profile = folder / "broken.toml"
    profile.write_text(BROKEN_BASE.replace("template = ", "templat = "))

    result = magoo("check", profile)

    assert result.returncode == 2
    assert f"{profile}: 1 problem\n" in result.stderr
    assert_no_traceback(result)


def installed(distribution: str) -> bool:
    try:
        importlib.metadata.distribution(distribution)
    except importlib.metadata.PackageNotFoundError:
        return False
    return True


@pytest.mark.parametrize(
    "site",
    [
        None,
        pytest.param(PLUGIN_SITE, id="with an unrelated broken plugin"),
    ],
)
def test_the_pi_profile_checks_clean_or_says_which_plugins_to_install(magoo, site):
    env = {"OPENAI_API_KEY": "dummy", "FISH_API_KEY": "dummy", "FISH_VOICE_ID": "dummy"}
    if site is not None:
        env["PYTHONPATH"] = str(site)

    result = magoo("check", EXAMPLES / "pi.toml", env=env)

    used = ("magoo-pyaudio", "magoo-openai-realtime", "magoo-fish", "magoo-mpv", "magoo-servo")
    missing = [plugin for plugin in used if not installed(plugin)]
    assert "magoo-broken" not in result.stderr
    if not missing:  # this repository's environment: every backend of the Pi profile is found
        assert result.returncode == 0, result.stderr
        assert "problem" not in result.stderr
        assert_no_traceback(result)
        return
    assert result.returncode == 2
    assert f"{len(missing)} problem" in result.stderr
    for plugin in missing:
        assert f"uv pip install {plugin}" in result.stderr
    assert "magoo-broken" not in result.stderr
    assert "environment variable" not in result.stderr
    assert_no_traceback(result)


# ---- secrets ------------------------------------------------------------------------------------


def secret_profile(folder: Path, extra: str = "") -> Path:
    body = f'backend = "secretstt"\napi_key = {{ env = "MAGOO_TEST_SECRET" }}\n{extra}'
    return copy_test_profile(folder, "secret.toml", edit=lambda t: replace_section(t, "stt", body))


def test_secrets_never_appear_in_output(magoo, tmp_path):
    env = {"PYTHONPATH": str(PLUGIN_SITE), "MAGOO_TEST_SECRET": SECRET}
    profile = secret_profile(tmp_path)

    checked = magoo("check", profile, env=env)
    ran = magoo("run", "-v", "--profile", profile, env={**env, "MAGOO_TRACE_PLUGINS": "1"})

    assert checked.returncode == 0, checked.stderr
    assert "secretstt" in checked.stdout
    assert ran.returncode == 0, ran.stderr
    assert "magoo_secretstt: configured with" in ran.stderr  # debug logging was on
    assert "magoo_secretstt: connecting with key ****" in ran.stderr  # the plugin's own careless line
    assert "magoo_on_startup(profile=Profile(" in ran.stderr  # every hook's arguments were printed
    assert 'turn 1: heard "what time is it"' in ran.stdout  # the backend really ran
    for result in (checked, ran):
        assert SECRET not in result.stdout + result.stderr


def test_the_log_can_be_json_lines_with_secrets_masked(magoo, tmp_path):
    env = {"PYTHONPATH": str(PLUGIN_SITE), "MAGOO_TEST_SECRET": SECRET}
    ran = magoo("run", "--log-format", "json", "--profile", secret_profile(tmp_path), env=env)

    assert ran.returncode == 0, ran.stderr
    entries = [json.loads(line) for line in ran.stderr.splitlines() if line.startswith("{")]
    assert {"time", "level", "logger", "message"} <= entries[0].keys()
    careless = [e for e in entries if e["logger"] == "magoo_secretstt"]
    assert [(e["level"], e["message"]) for e in careless] == [("warning", "connecting with key ****")]
    assert any(e["logger"] == "magoo.engine" and e["message"].startswith("turn 1 ok") for e in entries)
    assert SECRET not in ran.stdout + ran.stderr
    wrong = magoo("run", "--log-format", "xml", "--profile", secret_profile(tmp_path), env=env)
    assert wrong.returncode == 2 and "--log-format must be text, journal or json, not 'xml'" in wrong.stderr


def test_secrets_never_appear_in_profile_errors(magoo, tmp_path):
    # an unknown key, and the secret in a field whose validator quotes its input
    profile = secret_profile(tmp_path, 'colour = "red"\nregion = { env = "MAGOO_TEST_SECRET" }\n')
    env = {"PYTHONPATH": str(PLUGIN_SITE), "MAGOO_TEST_SECRET": SECRET}

    checked = magoo("check", profile.name, env=env)
    (tmp_path / ".env").write_text(f"MAGOO_TEST_SECRET={SECRET}\n")  # the same, read from .env
    ran = magoo("run", "-v", "--profile", profile.name, env={"PYTHONPATH": str(PLUGIN_SITE)})

    for result in (checked, ran):
        assert result.returncode == 2, result.stderr
        assert "secret.toml: 2 problems\n" in result.stderr
        assert "[stt] colour: unknown key" in result.stderr
        assert "[stt] region: value error, unknown region '**********'" in result.stderr
        assert SECRET not in result.stdout + result.stderr
        assert_no_traceback(result)


# ---- plugins and backends -----------------------------------------------------------------------


def test_plugins_json_lists_builtins_and_the_broken_plugin(magoo):
    result = magoo("plugins", "--json", env={"PYTHONPATH": str(PLUGIN_SITE)})

    assert result.returncode == 0, result.stderr
    plugins = {p["name"]: p for p in json.loads(result.stdout)}
    builtins = [p for p in plugins.values() if p["builtin"]]
    assert {p["name"] for p in builtins} >= {"magoo:sources", "magoo:fakes", "magoo:recorder"}
    assert all(p["distribution"] == "magoo" and p["loaded"] for p in builtins)
    broken = plugins["magoo-broken"]
    assert broken["loaded"] is False and not broken["builtin"]
    assert broken["version"] == "0.3.0"
    assert "definitely_missing_lib" in broken["error"]
    assert broken["missing_module"] == "definitely_missing_lib"
    assert "definitely-missing-lib>=1" in broken["install"]
    assert plugins["magoo-secretstt"]["loaded"] is True
    assert plugins["magoo-secretstt"]["backends"] == ["stt:secretstt"]


TYPO_PLUGIN = """
    from magoo_core import hookimpl


    @hookimpl
    def magoo_on_wak(wake, turn):
        pass
"""


@pytest.fixture
def typo_site(tmp_path, fake_dist) -> Path:
    return fake_dist(tmp_path / "site", "magoo-typo", "1.0", TYPO_PLUGIN)


def test_a_misspelled_hook_stops_the_command_with_one_clear_message(magoo, typo_site):
    result = magoo("plugins", env={"PYTHONPATH": str(typo_site)})

    assert result.returncode == 1
    said = " ".join(result.stderr.split())
    assert "plugin magoo-typo: 'magoo_on_wak' is not a magoo hook; did you mean 'magoo_on_wake'?" in said
    assert "MAGOO_LOAD_PLUGINS" in said
    assert_no_traceback(result)


def test_load_plugins_starts_without_the_misspelled_plugin(magoo, typo_site):
    result = magoo("plugins", "--json", env={"PYTHONPATH": str(typo_site), "MAGOO_LOAD_PLUGINS": "magoo-hello"})

    assert result.returncode == 0, result.stderr
    assert [p["name"] for p in json.loads(result.stdout) if not p["builtin"]] == ["magoo-hello"]


def test_backends_lists_a_roles_backends_with_their_options(magoo):
    result = magoo("backends", "--role", "stt", "--options")

    assert result.returncode == 0, result.stderr
    assert "[stt] scripted" in result.stdout
    for key in ("transcripts", "speech_level", "end_silence", "replies"):
        assert re.search(rf"^\s*{key}\s", result.stdout, re.M), key
    assert "[tts]" not in result.stdout


def test_backends_with_an_unknown_role_lists_the_roles(magoo):
    result = magoo("backends", "--role", "nonsense")

    assert result.returncode == 2
    said = " ".join(result.stderr.split())  # the console wraps long lines
    assert "unknown role 'nonsense'" in said
    assert "audio_source, wake, stt, responder, tts, player, actuators" in said
    assert_no_traceback(result)


def test_an_unknown_role_is_printed_as_given(magoo):
    result = magoo("backends", "--role", "[/]stt")

    assert result.returncode == 2
    assert "unknown role '[/]stt'" in result.stderr
    assert_no_traceback(result)


def test_help_lists_the_commands(magoo):
    result = magoo("--help")

    assert result.returncode == 0
    for command in ("run", "check", "plugins", "backends"):
        assert re.search(rf"^\W*{command}\s", result.stdout, re.M), command


# ---- devices ------------------------------------------------------------------------------------


def test_devices_lists_what_each_audio_backend_sees(magoo, virtual_audio):
    result = magoo("devices", "--json")

    assert result.returncode == 0, result.stderr
    listed = json.loads(result.stdout)
    assert set(listed) >= {"pyaudio", "sounddevice"}
    for backend, devices in listed.items():
        default = next(d for d in devices if d["default_input"])
        assert default["name"] == "default", backend
        assert 16000 in default["input_rates"] and 48000 in default["input_rates"], backend
        assert "pulse" in [d["name"] for d in devices], backend


def test_devices_for_one_backend_as_a_table_without_probing(magoo, virtual_audio):
    result = magoo("devices", "--backend", "sounddevice", "--no-probe")

    assert result.returncode == 0, result.stderr
    assert "sounddevice" in result.stdout and "pyaudio" not in result.stdout
    assert re.search(r"│ 1 │ default .*│ input output │\s+│\s+│", result.stdout)


def test_devices_with_a_backend_that_cannot_list_devices_says_what_to_install(magoo):
    result = magoo("devices", "--backend", "wav")

    assert result.returncode == 1
    assert "no backend 'wav' can list sound devices; install magoo-pyaudio or magoo-sounddevice" in result.stderr
    assert_no_traceback(result)
