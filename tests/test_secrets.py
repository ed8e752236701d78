"""Secrets never get out (magoo_core.secrets): whatever characters they hold, on every output.

The property: a canary value (quotes, backslashes, unicode, regex characters, a unique marker in
the middle) put into every ``{ env }`` of a profile, in runs that fail in every way of
:data:`FAULTS`, never shows its marker on any output of :data:`magoo_core.secrets.OUTPUTS`. The
marker is plain letters and digits, so it survives any escaping: finding it means a form the
masker does not know got out. A value with a control character or white space at either end is
refused at load, naming the variable and never showing the value.

``MAGOO_SECRETS_EXAMPLES`` sets how many canaries hypothesis draws per fault (default 2: each
example is a real ``magoo run``).
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import threading
import tomllib
import uuid
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from magoo_core.errors import ProfileError
from magoo_core.logs import printable
from magoo_core.profile import load_profile
from magoo_core.secrets import OUTPUTS, Secrets, encodings, secret_problem
from magoo_core.testing import build_plugins

EXAMPLES = Path(__file__).parent.parent / "examples"
MAGOO = Path(sys.executable).parent / "magoo"
RUNS = int(os.environ.get("MAGOO_SECRETS_EXAMPLES", "2"))

#: what a canary is made of, around its marker: quotes, backslashes, unicode, regex and format
#: characters. Not braces (a template would take them for a field), '/' (a path would take it for
#: a folder), white space (a transcript's partials cut it at spaces, no-break ones too) nor control
#: characters (refused).
SPECIALS = list("\"'\\.*+?()[]^$|%&;<>#=!~`@,:-_") + ["é", "ß", "日本", "😀", "%s", "$1", "\\1", "\\u00e9", "%22"]
special_text = st.lists(st.sampled_from(SPECIALS), min_size=1, max_size=6).map("".join)


@st.composite
def canaries(draw) -> str:
    """``Q<specials><marker><specials>Z``: no white space at either end, so it loads."""
    return f"Q{draw(special_text)}{marker()}{draw(special_text)}Z"


def marker() -> str:
    return f"cnry{uuid.uuid4().hex[:10]}"


MARKER = re.compile(r"cnry[0-9a-f]{10}")


# ---- the masker on its own ---------------------------------------------------------------------

OUTPUT_FORMS: dict[str, Callable[[str], str]] = {
    "raw": lambda s: s,
    "json": json.dumps,
    "json, not ascii": lambda s: json.dumps(s, ensure_ascii=False),
    "json twice": lambda s: json.dumps(json.dumps(s)),
    "repr": repr,
    "bytes repr": lambda s: repr(s.encode()),
    "header error": lambda s: f"Illegal header value {('Bearer ' + s).encode()!r}",
    "log line": printable,
    "url": lambda s: __import__("urllib.parse").parse.quote(s),
    "template filled": lambda s: f"You asked: what time is it{s}",
}


@settings(max_examples=200, deadline=None)
@given(secret=canaries(), form=st.sampled_from(list(OUTPUT_FORMS)), before=special_text, after=special_text)
def test_the_masker_hides_a_secret_in_every_form_an_output_gives_it(secret, form, before, after):
    secrets = Secrets([secret, "You asked: {text}" + secret])
    out = secrets.mask(f"{before}{OUTPUT_FORMS[form](secret)}{after}")
    assert not MARKER.search(out), (form, out)


def test_the_masker_leaves_text_without_a_secret_alone_and_short_values_unmasked():
    secrets = Secrets(["sk-0123456789", "ab"])
    assert secrets.mask("key sk-0123456789 and ab") == "key **** and ab"
    assert Secrets().mask("anything") == "anything" and not Secrets()


def test_a_masked_stream_masks_a_secret_written_in_pieces():
    import io

    out = io.StringIO()
    stream = Secrets(["sk-0123456789"]).stream(out)
    stream.write("key sk-01234")
    stream.write("56789 here\nnext sk-")
    assert out.getvalue() == "key **** here\n"
    stream.write("0123456789")
    stream.flush()
    assert out.getvalue() == "key **** here\nnext ****"


async def test_an_event_log_that_keeps_only_some_events_masks_them_too(tmp_path, caplog):
    # the log actuator learns the secrets from the startup event, also when `events` leaves it out
    from types import SimpleNamespace

    from magoo_core.default_plugins.fakes import EventLogActuator

    path = tmp_path / "events.jsonl"
    actuator = EventLogActuator(EventLogActuator.Config(path=path, events=["transcript"]))
    caplog.set_level("DEBUG", logger="magoo.fakes")
    async with actuator:
        actuator._add("startup", profile=SimpleNamespace(name="p", secrets=Secrets(["sk-log-0123456789"])))
        actuator._add("transcript", text="my key is sk-log-0123456789")
    assert path.read_text() == '{"event": "transcript", "text": "my key is ****"}\n'
    assert "0123456789" not in caplog.text and "my key is ****" in caplog.text


# ---- refused at load ---------------------------------------------------------------------------

REFUSED = {
    "\r at the end": ("sk-abc123\r", "MY_KEY has a line break (CR) at its end: a .env saved on Windows? Remove it"),
    "\n at the end": ("sk-abc123\n", "MY_KEY has a line break (LF) at its end"),
    "\n inside": ("sk-abc\n123", "MY_KEY has a line break (LF) at character 7"),
    "tab at the start": ("\tsk-abc123", "MY_KEY has a tab at its start"),
    "escape inside": ("sk-\x1b[31mabc", "MY_KEY has a control character (U+001B) at character 4"),
    "space at the end": ("sk-abc123 ", "MY_KEY has white space at its end"),
    "no-break space at the start": ("\u00a0sk-abc123", "MY_KEY has white space at its start"),
    "line separator": ("sk-abc\u2028123", "MY_KEY has a control character (U+2028)"),
}


@pytest.mark.parametrize("case", list(REFUSED))
def test_a_value_with_a_control_character_or_outer_white_space_is_refused_naming_the_variable(case, tmp_path):
    value, expected = REFUSED[case]
    profile = _test_profile(tmp_path, {"responder": {"template": {"env": "MY_KEY"}}})
    with pytest.raises(ProfileError) as caught:
        load_profile(profile, build_plugins(), environ={"MY_KEY": value})
    [issue] = caught.value.issues
    assert issue.section == "[responder]" and issue.key == "template"
    assert expected in issue.message
    assert "abc" not in str(caught.value)


@settings(max_examples=100, deadline=None)
@given(secret=canaries(), bad=st.sampled_from(["\r", "\n", "\r\n", "\t", " ", "\x00", "\x1b", "\u2029", "\x85"]),
       where=st.sampled_from(["start", "middle", "end"]))
def test_every_value_with_a_control_character_or_outer_white_space_is_refused(secret, bad, where):
    value = {"start": bad + secret, "middle": secret[:3] + bad + secret[3:], "end": secret + bad}[where]
    if bad == " " and where == "middle":
        assert secret_problem("K", value) is None  # a space inside is part of the value
        return
    problem = secret_problem("K", value)
    assert problem is not None and problem.startswith("K has ") and not MARKER.search(problem)


def test_a_dotenv_value_from_windows_is_refused_when_quoted_and_read_cleanly_when_not(tmp_path):
    (tmp_path / ".env").write_bytes(b'QUOTED="sk-abc123\r"\r\nPLAIN=sk-abc123\r\n')
    for name, ok in (("PLAIN", True), ("QUOTED", False)):
        profile = _test_profile(tmp_path, {"responder": {"template": {"env": name}}})
        if ok:
            assert load_profile(profile, build_plugins(), environ={}).responder.config.template == "sk-abc123"
        else:
            with pytest.raises(ProfileError, match=r"QUOTED has a line break \(CR\) at its end"):
                load_profile(profile, build_plugins(), environ={})


# ---- every output of real runs that fail ---------------------------------------------------------

#: How a run of the test profile can go wrong: edits of its sections (None removes a key). Every
#: string in the profile is a canary ``{ env }`` in every one of them.
#: Each with the exit code its run must end with (so that the test cannot pass on runs that never started).
FAULTS: dict[str, tuple[dict[str, Any], int]] = {
    "none": ({}, 0),
    "speech-to-text raises": ({"stt": {"fail": [1]}}, 0),
    "responder raises": ({"responder": {"fail": [1]}}, 0),
    "text-to-speech raises": ({"tts": {"fail": [1]}}, 0),
    "no wake word": ({"wake": {"level": 0.99}}, 0),
    "player cannot write": ({"player": {"path": "events-are-a-file/reply.wav"}}, 0),
    "webhook receiver down": ({"webhook": "down"}, 0),
    "source not a wav file at start": (
        {"audio_source": {"backend": "wav", "path": "not-a-wav.wav", "segments": None, "realtime": None}}, 1
    ),
    "source file missing (profile error)": (
        {"audio_source": {"backend": "wav", "path": "missing.wav", "segments": None, "realtime": None}}, 2
    ),
}
LOG_FORMATS = ["text", "journal", "json"]


@pytest.fixture
def receiver():
    """A webhook receiver on a port from the OS: keeps every request body."""
    bodies: list[bytes] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            bodies.append(self.rfile.read(int(self.headers.get("Content-Length") or 0)))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1], bodies
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize("fault", list(FAULTS))
def test_no_secret_reaches_any_output_whatever_fails(fault, receiver, tmp_path_factory):
    port, bodies = receiver

    # each example is a real run: no shrinking (dozens more runs), the failure's canary is printed as is
    @settings(max_examples=RUNS, deadline=None, suppress_health_check=list(HealthCheck), database=None,
              phases=[Phase.explicit, Phase.generate])
    @given(canary=canaries(), log_format=st.sampled_from(LOG_FORMATS))
    def run(canary, log_format):
        folder = tmp_path_factory.mktemp("run")
        bodies.clear()
        edits, exit_code = FAULTS[fault]
        outputs = _run_with_canaries(folder, edits, exit_code, canary, log_format, port, bodies)
        assert set(outputs) == set(OUTPUTS), "every output of magoo_core.secrets.OUTPUTS is read here"
        for name, text in outputs.items():
            leaked = MARKER.search(text)
            assert leaked is None, f"{fault}: the canary got out on {name}: ...{text[max(0, leaked.start() - 200):leaked.end() + 50]}"

    run()


def _run_with_canaries(folder: Path, fault: dict[str, Any], exit_code: int, canary: str, log_format: str, port: int,
                       bodies: list[bytes]) -> dict[str, str]:
    """Run the test profile with ``fault``, every string in it an ``{ env }`` ending in ``canary``;
    return each output's text."""
    (folder / "events-are-a-file").write_text("a file, not a folder")
    edits = {k: v for k, v in fault.items() if k != "webhook"}
    down = fault.get("webhook") == "down"
    webhook_port = _closed_port() if down else port
    data = _edited(tomllib.loads((EXAMPLES / "test.toml").read_text()), edits)
    data["engine"].update(status_file="out/status.json", status_interval=0.05)
    data["actuators"].append({
        "backend": "webhook", "url": f"http://127.0.0.1:{webhook_port}/hook", "retries": 0, "timeout": 2,
        "events": ["startup", "error", "wake", "transcript", "reply", "turn_end", "shutdown", "heartbeat"],
        "headers": {"Authorization": "Bearer token"},
    })
    environ: dict[str, str] = {}
    data = _canaries_everywhere(data, canary, environ)
    for value in environ.values():
        if value.startswith("not-a-wav"):  # the file is there (with its canary), and is no WAV
            (folder / value).write_text("not audio")
    (folder / "p.toml").write_text(_toml(data), encoding="utf-8")
    ran = subprocess.run(
        [str(MAGOO), "run", "-p", "p.toml", "-v", "--log-format", log_format],
        cwd=folder, env=clean_env(**environ), capture_output=True, text=True, encoding="utf-8", timeout=90,
    )
    said = ran.stdout + ran.stderr
    assert "Traceback" not in said, said
    assert ran.returncode == exit_code, said
    found = {
        "stdout": ran.stdout,
        "stderr": ran.stderr if log_format != "json" else "",
        "json_log": ran.stderr if log_format == "json" else "",
        "events": _read_all(folder, "events.jsonl"),
        "status": _read_all(folder, "status.json"),
        "webhook": "\n".join(body.decode("utf-8", "replace") for body in bodies),
    }
    if exit_code == 0:  # every output was written, and the canaries were in them
        written = {name for name in ("events", "status", "webhook") if found[name]}
        assert written == ({"events", "status"} if down else {"events", "status", "webhook"}), said
        assert "****" in found["stdout"] + found["events"], said
    return found


def _read_all(folder: Path, name: str) -> str:
    """The text of every file under ``folder`` whose name starts like ``name`` (a canary may end it)."""
    stem = name.split(".")[0]
    return "\n".join(p.read_text("utf-8", "replace") for p in folder.rglob(f"{stem}*") if p.is_file())


def _edited(data: dict[str, Any], edits: dict[str, dict[str, Any]]) -> dict[str, Any]:
    for section, changes in edits.items():
        for key, value in changes.items():
            if value is None:
                data[section].pop(key, None)
            else:
                data[section][key] = value
    return data


#: keys whose strings are names from a fixed list, not text: a canary there is only a profile error
NOT_TEXT = {"backend", "events", "mode", "sample_rate", "format", "language", "file"}


def _canaries_everywhere(data: dict[str, Any], canary: str, environ: dict[str, str]) -> dict[str, Any]:
    """Every string of every backend section (but names from a list) becomes
    ``{ env = "MAGOO_CANARY_n" }`` holding it with ``canary`` added (before a file's extension);
    the profile's own ``{ env }`` get ``sk-proj-`` and the canary's ASCII characters."""

    ascii_canary = "".join(char for char in canary if char.isascii())  # what an HTTP header can carry

    def walk(value: Any, key: str, parent: str = "") -> Any:
        if isinstance(value, dict) and set(value) == {"env"}:  # the profile's own: a key, in a header
            environ[value["env"]] = f"sk-proj-{ascii_canary}"
            return value
        if isinstance(value, str) and key not in NOT_TEXT:
            name = f"MAGOO_CANARY_{len(environ)}"
            mine = ascii_canary if parent == "headers" else canary
            head, dot, tail = value.rpartition(".")
            environ[name] = f"{head}{mine}.{tail}" if dot and "/" not in tail and len(tail) <= 5 else value + mine
            return {"env": name}
        if isinstance(value, dict):
            return {k: walk(v, k, key) for k, v in value.items()}
        if isinstance(value, list):
            return [walk(v, key, parent) for v in value]
        return value

    return {
        section: (value if section in ("magoo", "engine") else walk(value, section)) for section, value in data.items()
    }


def _toml(data: dict[str, Any]) -> str:
    """``data`` as TOML: tables, then arrays of tables; values inline."""
    lines: list[str] = []
    for section, body in data.items():
        for table in body if isinstance(body, list) else [body]:
            lines.append(f"[[{section}]]" if isinstance(body, list) else f"[{section}]")
            lines += [f"{key} = {_value(value)}" for key, value in table.items()]
            lines.append("")
    return "\n".join(lines)


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{json.dumps(k)} = {_value(v)}" for k, v in value.items()) + " }"
    if isinstance(value, list):
        return "[" + ", ".join(_value(v) for v in value) + "]"
    return repr(value)


def clean_env(**extra: str) -> dict[str, str]:
    """The environment without what changes magoo's or Python's behaviour (as tests/conftest.py's)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MAGOO_", "PYTHON")) and k not in ("COLUMNS", "LINES")}
    return {**env, **extra}


def _stt_backends() -> list[str]:
    from magoo_core.plugins import create_plugin_manager
    from magoo_core.roles import Role

    return create_plugin_manager(environ={}).names(Role.STT)


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _test_profile(folder: Path, edits: dict[str, dict[str, Any]]) -> Path:
    data = _edited(tomllib.loads((EXAMPLES / "test.toml").read_text()), edits)
    path = folder / "p.toml"
    path.write_text(_toml(data), encoding="utf-8")
    return path


def test_encodings_include_the_forms_an_output_gives_a_secret():
    forms = encodings('a"b\\c')
    assert {'a"b\\c', 'a\\"b\\\\c', "a%22b%5Cc"} <= forms


# ---- the shipped examples that hold keys -------------------------------------------------------

KEYED_EXAMPLES = sorted(p.name for p in EXAMPLES.glob("*.toml") if "{ env" in p.read_text())


@pytest.mark.parametrize("example", KEYED_EXAMPLES)
def test_no_key_of_a_shipped_example_reaches_any_output_when_its_services_cannot_be_reached(example, tmp_path):
    """The example's own { env } keys (and every other string of it) hold canaries; its microphone,
    wake word, player and actuators are the test profile's, its services a port nobody listens on."""
    canary = f"Q\"\\'.*$1(%22{marker()}[?]Z"  # keys go into HTTP headers: ASCII
    test = tomllib.loads((EXAMPLES / "test.toml").read_text())
    data = tomllib.loads((EXAMPLES / example).read_text())
    for section in ("audio_source", "wake", "player", "actuators"):
        data[section] = test[section]
    data["engine"].update(status_file="out/status.json", status_interval=0.05)
    nobody = _closed_port()
    if data.get("stt", {}).get("backend") == "openai-realtime":
        data["stt"].update(url=f"ws://127.0.0.1:{nobody}/v1/realtime", connect_timeout=1.0)
    for role in ("stt", "responder", "tts"):  # magoo-openai's backends: any OpenAI-compatible server
        if data.get(role, {}).get("backend") == "openai":
            data[role]["base_url"] = f"http://127.0.0.1:{nobody}/v1"
    if data.get("stt", {}).get("backend") == "openai":
        if "openai" not in _stt_backends():
            pytest.skip("[stt] openai is on branch audio")
        from magoo_core.testing.device_contract import CLIP  # its voice activity detector wants speech, not a tone

        data["audio_source"] = {**data["audio_source"], "segments": [
            {"file": str(CLIP)} if segment.get("tone") == 440.0 else segment for segment in data["audio_source"]["segments"]
        ]}
    if data.get("tts", {}).get("backend") == "fish":
        data["tts"]["base_url"] = f"http://127.0.0.1:{nobody}"
        data["tts"]["format"] = "pcm"  # the test profile's wav player records PCM, not Fish's default mp3 (b7c8325)
    environ: dict[str, str] = {}
    data = _canaries_everywhere(data, canary, environ)
    assert {"OPENAI_API_KEY", "FISH_API_KEY"} & {key for key in (EXAMPLES / example).read_text().split('"')}
    (tmp_path / "p.toml").write_text(_toml(data), encoding="utf-8")
    for command in (["check", "p.toml"], ["run", "-p", "p.toml", "-v", "--log-format", "json"]):
        ran = subprocess.run([str(MAGOO), *command], cwd=tmp_path, env=clean_env(**environ), capture_output=True,
                             text=True, encoding="utf-8", timeout=120)
        said = ran.stdout + ran.stderr
        assert ran.returncode in (0, 1), said
        if command[0] == "run":
            # the address is part of a secret URL here, so it may show masked
            assert ("127.0.0.1" in said or "****" in said), said
            assert any(words in said for words in ("cannot reach", "cannot connect", "cannot be reached")), said
        for text in (said, _read_all(tmp_path, "events.jsonl"), _read_all(tmp_path, "status.json")):
            leaked = MARKER.search(text)
            assert leaked is None, f"{example}: ...{text[max(0, leaked.start() - 200):leaked.end() + 50]}"
