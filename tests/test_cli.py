"""The ``magoo`` command line, run as a user runs it: the installed script, in a subprocess."""

from __future__ import annotations

import importlib.metadata

import json
import queue
import re
import signal
import textwrap
import threading
import time
from pathlib import Path

import pytest

from magoo_core.audio import read_wav
from plugin_sources import LAMP_PLUGIN

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
        "[wake] level: must be a number, not text: write it without quotes", None,
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
        f"broken.toml:{line_of(text, 'level = ')}: [wake] level: must be a number, not text",
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
    # the unrelated broken plugin is one warning line, and no problem of the profile
    broken = [line for line in result.stderr.splitlines() if "magoo-broken" in line]
    assert len(broken) == (0 if site is None else 1), result.stderr
    if not missing:  # this repository's environment: every backend of the Pi profile is found
        assert result.returncode == 0, result.stderr
        assert "problem" not in result.stderr
        if site is not None:
            assert broken[0].startswith("warning: plugin magoo-broken 0.3.0 did not load:")
            assert broken[0].endswith(f"{EXAMPLES / 'pi.toml'} does not use it; `magoo plugins` lists it")
        assert_no_traceback(result)
        return
    assert result.returncode == 2
    assert f"{len(missing)} problem" in result.stderr
    for plugin in missing:
        assert f"uv pip install {plugin}" in result.stderr
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


def test_a_misspelled_hook_fails_that_plugin_and_every_command_still_runs(magoo, typo_site, tmp_path):
    env = {"PYTHONPATH": str(typo_site)}
    typo = "'magoo_on_wak' is not a magoo hook; did you mean 'magoo_on_wake'?"

    listed = magoo("plugins", "--json", env=env)
    checked = magoo("check", copy_test_profile(tmp_path), env=env)
    doctor = magoo("doctor", "--json", env=env, timeout=120)

    assert listed.returncode == 0, listed.stderr
    [plugin] = [p for p in json.loads(listed.stdout) if p["name"] == "magoo-typo"]
    assert plugin["loaded"] is False and plugin["error"] == typo
    assert checked.returncode == 0, checked.stderr
    [warning] = checked.stderr.splitlines()
    assert warning.startswith(f"warning: plugin magoo-typo 1.0 did not load: {typo};")
    report = json.loads(doctor.stdout)
    [row] = [r for r in report["checks"] if r["check"] == "plugin magoo-typo"]
    assert row["result"] == "FAIL" and typo in row["found"]
    for result in (listed, checked, doctor):
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
    assert not re.search(r"^\[tts\]", result.stdout, re.M)  # no backend of another role (a description may name [tts])


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


# ---- flags every command shares -------------------------------------------------------------------


def every_command(group, path=("magoo",)):
    """(words, click command) of every command of the core application, groups included."""
    yield path, group
    for name, command in getattr(group, "commands", {}).items():
        yield from every_command(command, (*path, name))


def core_commands(monkeypatch):
    import typer

    from magoo_core.cli import build_app

    monkeypatch.setenv("MAGOO_LOAD_PLUGINS", "")
    return list(every_command(typer.main.get_command(build_app())))


def test_h_is_help_for_the_application_and_every_command(magoo, monkeypatch):
    from typer.testing import CliRunner

    from magoo_core.cli import build_app

    commands = core_commands(monkeypatch)
    assert {" ".join(words) for words, _ in commands} >= {"magoo", "magoo run", "magoo check", "magoo service install"}
    runner = CliRunner()
    for words, _ in commands:
        short, long = (runner.invoke(build_app(), [*words[1:], flag], prog_name="magoo") for flag in ("-h", "--help"))
        assert short.exit_code == 0, (words, short.output)
        assert short.output == long.output and short.output.startswith(f"Usage: {' '.join(words)} "), words
    installed_script = magoo("-h")
    assert installed_script.returncode == 0 and installed_script.stdout.startswith("Usage: magoo ")


def test_every_option_naming_a_profile_is_spelled_p_and_profile(monkeypatch):
    taking_a_profile = []
    for words, command in core_commands(monkeypatch):
        for param in getattr(command, "params", []):
            if param.name == "profile":
                assert sorted(param.opts) == ["--profile", "-p"], words
                taking_a_profile.append(" ".join(words[1:]))
    assert set(taking_a_profile) == {"run", "check", "doctor", "meter", "service install", "tune"}


def test_version_prints_the_package_version(magoo):
    result = magoo("--version")

    assert result.returncode == 0, result.stderr
    assert result.stdout == f"magoo {importlib.metadata.version('magoo')}\n"


def test_check_takes_the_profile_as_p_profile_or_argument(magoo, tmp_path):
    profile = copy_test_profile(tmp_path)

    for args in (["-p", profile], ["--profile", profile], [profile], [profile, "-p", profile]):
        result = magoo("check", *args)
        assert result.returncode == 0, (args, result.stderr)
        assert f"{profile}: OK" in " ".join(result.stdout.split()), args

    none, two = magoo("check"), magoo("check", profile, "-p", tmp_path / "other.toml")
    assert none.returncode == 2 and "which profile? magoo check -p FILE" in none.stderr
    assert two.returncode == 2 and "two profiles given" in two.stderr


# ---- a broken plugin --------------------------------------------------------------------------------


def test_a_plugin_that_does_not_import_is_reported_and_fatal_only_to_a_profile_that_uses_it(magoo, tmp_path):
    env = {"PYTHONPATH": str(PLUGIN_SITE)}
    unused = copy_test_profile(tmp_path)
    uses_it = copy_test_profile(tmp_path, "uses.toml", edit=lambda t: replace_section(t, "tts", 'backend = "broken"'))

    listed = magoo("plugins", env={**env, "COLUMNS": "200"})
    doctor = magoo("doctor", "--json", env=env, timeout=120)
    checked = magoo("check", "-p", unused, env=env)
    ran = magoo("run", "-p", unused, env=env)
    ran_json = magoo("run", "--log-format", "json", "-p", unused, env=env)
    refused = magoo("check", "-p", uses_it, env=env)

    assert listed.returncode == 0, listed.stderr
    assert re.search(r"magoo-broken .*failed: ModuleNotFoundError: No module named 'definitely_missing_lib'", listed.stdout)
    assert "install: uv pip install 'definitely-missing-lib>=1'" in listed.stdout
    [row] = [r for r in json.loads(doctor.stdout)["checks"] if r["check"] == "plugin magoo-broken"]
    assert row["result"] == "FAIL" and "definitely_missing_lib" in row["found"]
    assert doctor.returncode == 1
    for result in (checked, ran, ran_json):
        assert result.returncode == 0, result.stderr
        [warning] = [line for line in result.stderr.splitlines() if "magoo-broken" in line]
        assert "plugin magoo-broken 0.3.0 did not load: ModuleNotFoundError" in warning
    assert checked.stderr.startswith("warning: plugin magoo-broken")
    assert re.search(r"WARNING +magoo.plugins: plugin magoo-broken", ran.stderr)  # through the log, in its format
    assert all(json.loads(line) for line in ran_json.stderr.splitlines())
    assert "turn 1: ok" in ran.stdout
    assert refused.returncode == 2
    said = " ".join(refused.stderr.split()).lower()
    for part in ("plugin magoo-broken 0.3.0 failed to load", "no module named 'definitely_missing_lib'",
                 "uv pip install 'definitely-missing-lib>=1'"):
        assert part in said
    assert "warning" not in said  # named once, in the problem
    for result in (listed, doctor, checked, ran, refused):
        assert_no_traceback(result)





def test_a_misspelled_hook_method_on_a_backend_class_fails_at_load_not_at_run(magoo, tmp_path, fake_dist):
    env = {"PYTHONPATH": str(fake_dist(tmp_path / "site", "magoo-lamp", "0.4.0", LAMP_PLUGIN))}
    profile = copy_test_profile(tmp_path, edit=lambda t: t + '\n[[actuators]]\nbackend = "lamp"\n')
    message = "Lamp.magoo_on_wak is not a magoo hook; did you mean 'magoo_on_wake'?"

    listed = magoo("plugins", "--json", env=env)
    checked = magoo("check", "-p", profile, env=env)
    ran = magoo("run", "-p", profile, env=env)

    [lamp] = [p for p in json.loads(listed.stdout) if p["name"] == "magoo-lamp"]
    assert lamp["loaded"] is False and message in lamp["error"]
    for result in (checked, ran):
        assert result.returncode == 2, result.stderr
        said = " ".join(result.stderr.split())
        assert "unknown actuator backend 'lamp'" in said and message in said
        assert_no_traceback(result)
    assert ran.stdout == ""  # refused before anything started


def test_load_plugins_with_a_name_that_matches_no_plugin_says_so(magoo, tmp_path):
    profile = copy_test_profile(
        tmp_path, edit=lambda t: replace_section(t, "responder", 'backend = "hello"')
    )

    result = magoo("check", "-p", profile, env={"MAGOO_LOAD_PLUGINS": "magoo-helo"})

    assert result.returncode == 2
    lines = result.stderr.splitlines()
    assert lines[0].startswith("warning: MAGOO_LOAD_PLUGINS names magoo-helo, which is not installed; installed: ")
    assert "magoo-hello" in lines[0]
    said = " ".join(result.stderr.split()).lower()
    assert "plugin magoo-hello 0.1.0 is installed but not loaded" in said
    assert "uv pip install" not in said


# ---- backends --options -------------------------------------------------------------------------


MARKUP_PLUGIN = '''
    from pathlib import Path
    from typing import ClassVar, Literal

    from pydantic import Field

    from magoo_core import Backend, BackendConfig, Reply, hookimpl


    class Loud(Backend):
        """Answers [bold]loudly[/bold]; see [responder] in the docs."""

        name: ClassVar[str] = "loud"

        class Config(BackendConfig):
            a_rather_long_key_name_here: int | None = Field(None, description="Set it in [responder].")
            volume_mode: Literal["soft", "loud"] = Field("loud", description="How [b]loud[/b].")
            save_to: Path = Field(Path("out/loud.wav"), description="Where.")
            words: list[str] = Field(default_factory=lambda: ["hey"], description="Words.")
            enabled: bool = Field(True, description="On.")

        async def respond(self, transcript):
            return Reply("LOUD")


    @hookimpl
    def magoo_register_responders(register):
        register(Loud)
'''


@pytest.mark.parametrize("columns", ["80", "120"])
def test_backends_options_print_markup_as_written_and_readable_types(magoo, tmp_path, fake_dist, columns):
    env = {"PYTHONPATH": str(fake_dist(tmp_path / "site", "magoo-loud", "1.0", MARKUP_PLUGIN)), "COLUMNS": columns}

    result = magoo("backends", "--role", "responder", "--options", env=env)

    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "[responder] loud  Answers [bold]loudly[/bold]; see [responder] in the docs." in " ".join(out.split(" "))
    assert re.search(r"^  a_rather_long_key_name_here  int \| None  \(default: unset\)\n +Set it in \[responder\]\.$", out, re.M), out
    assert re.search(r"^  volume_mode +\"soft\" \| \"loud\"  \(default: \"loud\"\)\n +How \[b\]loud\[/b\]\.$", out, re.M), out
    assert re.search(r"^  save_to +Path  \(default: \"out/loud.wav\"\)$", out, re.M), out
    assert re.search(r"^  words +list\[str\]  \(default: \[\"hey\"\]\)$", out, re.M), out
    assert re.search(r"^  enabled +bool  \(default: true\)$", out, re.M), out
    for unreadable in ("PosixPath", "Literal", "Union", "typing."):
        assert unreadable not in out
    assert all(len(line) <= int(columns) for line in out.splitlines())


def test_every_key_of_every_backend_prints_in_one_piece_at_80_columns(magoo):
    result = magoo("backends", "--options", env={"COLUMNS": "80"})

    assert result.returncode == 0, result.stderr
    from magoo_core.plugins import create_plugin_manager
    from magoo_core.roles import Role

    plugins = create_plugin_manager()
    keys = {key for role in Role for name in plugins.names(role) for key in plugins.backend(role, name).cls.Config.model_fields}
    starts = {line.split()[0] for line in result.stdout.splitlines() if line.strip()}
    assert keys <= starts, sorted(keys - starts)
    assert "PosixPath" not in result.stdout and "Literal" not in result.stdout


# ---- devices without sound ------------------------------------------------------------------------


def test_devices_without_any_sound_says_what_it_found_in_a_few_lines(magoo, tmp_path):
    from magoo_core.testing.virtual_audio import no_sound_environment

    env = no_sound_environment(tmp_path)

    table = magoo("devices", env=env)
    as_json = magoo("devices", "--json", env=env)

    for result in (table, as_json):
        assert result.returncode == 1
        lines = result.stderr.splitlines()
        assert 1 <= len(lines) <= 4, result.stderr
        assert not any(line.startswith(("ALSA lib", "Jack", "jack", "Cannot connect")) for line in lines), result.stderr
        for backend in ("pyaudio", "sounddevice"):
            [line] = [line for line in lines if line.startswith(f"{backend}: ")]
            assert "no sound devices found" in line or "PortAudio crashed" in line, line
        assert_no_traceback(result)
    assert "is a sound server running? `pactl info`" in table.stderr or "crashed" in table.stderr
    assert "┏" not in table.stdout  # no empty tables
    assert isinstance(json.loads(as_json.stdout), dict)


# ---- plugins' own commands ----------------------------------------------------------------------


COMMAND_MODULE = '''
    import typer

    app = typer.Typer()


    @app.command()
    def greet(
        profile: str = typer.Option(..., "--profile", "-p"),
        name: str = typer.Option("you", "--name"),
    ):
        """Greets NAME, with the profile it was given."""
        print(f"hello {name} from {profile}")
'''

HOOK_PLUGIN = '''
    from magoo_core import hookimpl


    @hookimpl
    def magoo_register_commands(app):
        @app.command("wave")
        def wave():
            """Waves."""
            print("waving")
'''


@pytest.fixture
def command_site(tmp_path, fake_dist) -> Path:
    """magoo-greeter: a command ``greet`` through the ``magoo.commands`` entry-point group (and
    a plugin module that would fail the test if imported); magoo-waver: a command by the hook."""
    site = fake_dist(tmp_path / "site", "magoo-greeter", "2.1", "raise RuntimeError('the plugin module was imported')\n")
    (site / "magoo_greeter_cli.py").write_text(textwrap.dedent(COMMAND_MODULE))
    entry_points = site / "magoo_greeter-2.1.dist-info" / "entry_points.txt"
    entry_points.write_text(entry_points.read_text() + "\n[magoo.commands]\ngreet = magoo_greeter_cli:app\n")
    return fake_dist(site, "magoo-waver", "0.5", HOOK_PLUGIN)


def test_a_plugin_command_is_listed_from_metadata_and_imported_to_run(magoo, command_site):
    env = {"PYTHONPATH": str(command_site)}

    listed = magoo("--help", env=env)
    greeted = magoo("greet", "-p", "x.toml", "--name", "Ada", env=env)
    helped = magoo("greet", "-h", env=env)
    waved = magoo("wave", env=env)
    left_out = magoo("greet", "-p", "x.toml", env={**env, "MAGOO_LOAD_PLUGINS": "magoo-waver"})
    plugins = magoo("plugins", "--json", env=env)

    assert listed.returncode == 0, listed.stderr
    assert re.search(r"^\s+greet\s+From magoo-greeter 2\.1: `magoo greet -h` tells more\.", listed.stdout, re.M)
    assert not re.search(r"^\s+wave\s", listed.stdout, re.M)  # found only by importing every plugin
    assert greeted.returncode == 0, greeted.stderr
    assert greeted.stdout == "hello Ada from x.toml\n"
    assert helped.returncode == 0 and "Greets NAME" in helped.stdout and "--profile" in helped.stdout
    assert waved.returncode == 0, waved.stderr
    assert waved.stdout == "waving\n"
    assert left_out.returncode == 2 and "No such command 'greet'" in left_out.stderr
    for result in (listed, greeted, helped):
        assert "the plugin module was imported" not in result.stderr
    commands = {p["name"]: p["commands"] for p in json.loads(plugins.stdout)}
    assert commands["magoo-greeter"] == ["greet"] and commands["magoo-waver"] == ["wave"]


NO_SERVER_ALSA = "pcm.!default { type pulse }\nctl.!default { type pulse }\npcm.pulse { type pulse }\n"
PORTAUDIO_NOISE = ("ALSA lib", "Cannot connect to server", "jack server", "JackShm")


def no_server_environment(folder: Path) -> dict[str, str]:
    """ALSA's devices go through a PulseAudio server that is not there: PortAudio lists no device,
    and ALSA and JACK complain on stderr while it looks."""
    (folder / "asound.conf").write_text(NO_SERVER_ALSA)
    return {"PULSE_SERVER": f"unix:{folder / 'no-server'}", "ALSA_CONFIG_PATH": str(folder / "asound.conf")}


@pytest.mark.parametrize("backend", ["pyaudio", "sounddevice"])
def test_a_profile_without_a_microphone_says_so_without_portaudios_noise(magoo, tmp_path, backend):
    profile = tmp_path / "mic.toml"
    profile.write_text(
        f'[audio_source]\nbackend = "{backend}"\nwait_for_device = 1\n\n[stt]\nbackend = "scripted"\n\n'
        '[responder]\nbackend = "echo"\n'
    )

    result = magoo("run", "-p", profile, env=no_server_environment(tmp_path))

    assert result.returncode == 1
    assert not [line for line in result.stderr.splitlines() if line.startswith(PORTAUDIO_NOISE)], result.stderr
    assert f"could not start [audio_source] {backend}" in result.stderr
    assert "no input devices found" in result.stderr
    assert len(result.stderr.splitlines()) <= 6, result.stderr


def test_devices_without_a_sound_server_says_what_it_found(magoo, tmp_path):
    result = magoo("devices", env=no_server_environment(tmp_path))

    assert result.returncode == 1
    lines = result.stderr.splitlines()
    assert sorted(line.split(":")[0] for line in lines) == ["pyaudio", "sounddevice"], result.stderr
    for line in lines:
        assert "no sound devices found; is a sound server running? `pactl info` tells" in line
    assert "┏" not in result.stdout
