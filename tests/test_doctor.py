"""``magoo doctor``, run as a user runs it: on the virtual microphone, without any sound, with
profiles whose keys, servers, pigpio daemon and wake word models are there or not."""

from __future__ import annotations

import asyncio
import json
import re
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import ClassVar, Literal

import pytest

from magoo_core import Backend, BackendConfig, doctor
from magoo_core.plugins import create_plugin_manager, hookimpl
from magoo_core.profile import MASK
from magoo_core.testing.pytest_plugin import require_audio
from magoo_core.testing.virtual_audio import VirtualAudio, no_sound_environment

SECRET = "sk-doctor-FAKE-7f3a9c1e"  # distinctive: found anywhere in the output means it leaked
DOTENV_SECRET = "fish-doctor-FAKE-58d2b0"


def run_doctor(magoo, *args: object, env: dict[str, str] | None = None, table: bool = False):
    """Run ``magoo doctor --json`` (or the table, wide); check the exit code against the rows."""
    extra = {"COLUMNS": "250", **(env or {})} if table else env
    result = magoo("doctor", *args, *(() if table else ("--json",)), env=extra, timeout=60)
    assert "Traceback" not in result.stderr, result.stderr
    if table:
        fails = re.findall(r"│\s*FAIL\s*│", result.stdout)
        assert result.returncode == (1 if fails else 0), result.stdout + result.stderr
        return result
    report = json.loads(result.stdout)
    fails = [row for row in report["checks"] if row["result"] == "FAIL"]
    assert result.returncode == (1 if fails else 0), result.stdout + result.stderr
    worst = "FAIL" if fails else ("WARN" if any(r["result"] == "WARN" for r in report["checks"]) else "OK")
    assert report["result"] == worst
    return report, result


def row(report: dict, name: str) -> dict:
    found = [r for r in report["checks"] if r["check"] == name]
    assert len(found) == 1, f"no single row {name!r} in {[r['check'] for r in report['checks']]}"
    return found[0]


def rows(report: dict, prefix: str) -> list[dict]:
    return [r for r in report["checks"] if r["check"].startswith(prefix)]


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def profile(tmp_path: Path, body: str, name: str = "doctor.toml") -> Path:
    path = tmp_path / name
    path.write_text('[magoo]\nname = "doctor"\n\n' + body)
    return path


SILENT_SOURCE = """
[audio_source]
backend = "silence"

[stt]
backend = "scripted"
transcripts = ["hello"]
"""


# ---- sound ----------------------------------------------------------------------------------------


def test_the_virtual_microphone_is_found_with_its_rates(magoo, virtual_audio):
    report, result = run_doctor(magoo)
    server = row(report, "sound server")
    assert server["result"] == "OK"
    assert "pulseaudio" in server["found"] and "default source virtmic" in server["found"]
    microphones = rows(report, "microphones")
    assert [r["result"] for r in microphones] == ["OK"] * len(microphones)
    assert {"pyaudio", "sounddevice"} <= {b for r in microphones for b in re.findall(r"\w+", r["check"])}
    for found in (r["found"] for r in microphones):
        rates = re.search(r"\[\d+\] default, default: ([\d. ]+) kHz", found)
        assert rates, found
        assert {"16", "48"} <= set(rates.group(1).split())
    assert result.returncode == 0  # nothing here FAILs: no profile, and a microphone


def test_the_profile_microphone_is_matched_like_the_capture_does(magoo, virtual_audio, tmp_path):
    stt = '[stt]\nbackend = "scripted"\ntranscripts = ["hello"]\n'
    found = profile(tmp_path, f'[audio_source]\nbackend = "pyaudio"\ndevice = "DEFAULT"\nsample_rate = 16000\n{stt}')
    missing = profile(tmp_path, f'[audio_source]\nbackend = "pyaudio"\ndevice = "USB"\n{stt}', "usb.toml")

    report, _ = run_doctor(magoo, "--profile", found)
    device = row(report, "[audio_source] device")
    assert device["result"] == "OK", device
    assert re.search(r"'DEFAULT' is \[\d+\] default; opens at 16000 Hz", device["found"])

    report, result = run_doctor(magoo, "--profile", missing)
    device = row(report, "[audio_source] device")
    assert device["result"] == "FAIL" and result.returncode == 1
    assert "no input matches 'USB'" in device["found"] and "default" in device["found"]
    assert "set [audio_source] device" in device["fix"]


def test_no_sound_server_and_no_card_fails_with_the_fix(magoo, tmp_path):
    env = no_sound_environment(tmp_path)
    report, result = run_doctor(magoo, env=env)
    assert result.returncode == 1
    assert row(report, "sound server")["result"] == "WARN"
    microphones = rows(report, "microphones")
    assert microphones
    for mic in microphones:
        assert mic["result"] == "FAIL"
        assert mic["found"].startswith("no input device at all")  # PortAudio may even crash, in the subprocess
        assert "plug in a USB microphone" in mic["fix"] and "PulseAudio" in mic["fix"]

    table = run_doctor(magoo, env=env, table=True)
    assert re.search(r"microphones .*│\s*FAIL\s*│ no input device at all", table.stdout), table.stdout
    assert re.search(r"\d+ FAIL, \d+ WARN, \d+ OK", table.stdout)
    assert "ALSA lib" not in table.stdout + table.stderr  # PortAudio's noise stays in the subprocess


async def test_a_hung_sound_server_costs_seconds_not_the_doctor(magoo, tmp_path):
    require_audio(VirtualAudio.unavailable_reason())

    async def never_answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()  # holds the connection open and says nothing, like a stopped server

    socket_path = tmp_path / "hung-server"
    alsa = tmp_path / "asound.conf"  # ALSA's only devices go through the sound server, as on a desktop
    alsa.write_text("pcm.!default { type pulse }\nctl.!default { type pulse }\npcm.pulse { type pulse }\n")
    env = {"PULSE_SERVER": f"unix:{socket_path}", "ALSA_CONFIG_PATH": str(alsa)}
    server = await asyncio.start_unix_server(never_answer, str(socket_path))
    async with server:
        async with asyncio.timeout(90):  # only a guard against a hang
            report, result = await asyncio.to_thread(run_doctor, magoo, env=env)
    sound = row(report, "sound server")
    assert sound["result"] == "FAIL" and "`pactl info` got no answer within 2 s" in sound["found"]
    assert sound["fix"].startswith("restart it")
    microphones = rows(report, "microphones")
    assert microphones and all(r["result"] == "FAIL" for r in microphones)
    assert result.returncode == 1
    assert {"python", "plugins", "mpv", "GPIO"} <= {r["check"] for r in report["checks"]}


def test_a_blocking_call_past_its_limit_does_not_hold_the_process():
    script = (
        "import asyncio, time\n"
        "from magoo_core.doctor import in_daemon_thread\n"
        "async def main():\n"
        "    try:\n"
        "        await in_daemon_thread(lambda: time.sleep(600), 0.2)\n"
        "    except TimeoutError:\n"
        "        print('abandoned')\n"
        "asyncio.run(main())\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "abandoned"


# ---- keys -----------------------------------------------------------------------------------------


KEYS_PROFILE = """
[audio_source]
backend = "silence"

[stt]
backend = "openai-realtime"
api_key = {{ env = "DOCTOR_TEST_OPENAI_KEY" }}
url = "ws://127.0.0.1:{stt_port}/v1/realtime"

[tts]
backend = "fish"
api_key = {{ env = "DOCTOR_TEST_FISH_KEY" }}
voice_id = {{ env = "DOCTOR_TEST_VOICE" }}
base_url = "http://127.0.0.1:{tts_port}"
format = "pcm"  # the wav player records PCM, not Fish's default mp3

[player]
backend = "wav"
path = "out/reply-{{n}}.wav"
"""


def test_keys_say_set_or_not_and_where_never_their_value(magoo, tmp_path):
    path = profile(tmp_path, KEYS_PROFILE.format(stt_port=closed_port(), tts_port=closed_port()))
    (tmp_path / ".env").write_text(f"DOCTOR_TEST_VOICE={DOTENV_SECRET}\n")
    env = {"DOCTOR_TEST_FISH_KEY": SECRET}

    report, result = run_doctor(magoo, "--profile", path, env=env)
    missing = row(report, "key DOCTOR_TEST_OPENAI_KEY")
    assert missing["result"] == "FAIL" and missing["found"] == "not set (used by [stt] api_key)"
    assert "export DOCTOR_TEST_OPENAI_KEY=..." in missing["fix"] and str(tmp_path / ".env") in missing["fix"]
    assert row(report, "key DOCTOR_TEST_FISH_KEY") == {
        "check": "key DOCTOR_TEST_FISH_KEY",
        "result": "OK",
        "found": "set, in the environment (used by [tts] api_key)",
        "fix": "",
    }
    voice = row(report, "key DOCTOR_TEST_VOICE")
    assert voice["result"] == "OK" and voice["found"] == f"set, in {tmp_path / '.env'} (used by [tts] voice_id)"
    # the profile does not load as it is, and says so once; everything else is still checked
    loads = row(report, f"profile {path}")
    assert loads["result"] == "FAIL" and "1 environment variable is not set" in loads["found"]
    assert len(rows(report, "network")) == 2 and rows(report, "microphones")

    table = run_doctor(magoo, "--profile", path, env=env, table=True)
    assert "DOCTOR_TEST_FISH_KEY" in table.stdout
    for output in (result.stdout, result.stderr, table.stdout, table.stderr):
        assert SECRET not in output and DOTENV_SECRET not in output


def test_a_profile_that_does_not_load_is_one_row_and_the_machine_is_still_checked(magoo, tmp_path):
    path = profile(tmp_path, SILENT_SOURCE + """
[engine]
bargein = true

[wake]
backend = "openwakeword"
models = ["hey_nobody"]
""")
    report, result = run_doctor(magoo, "--profile", path)
    loads = row(report, f"profile {path}")
    assert loads["result"] == "FAIL" and result.returncode == 1
    assert "bargein: unknown key. Did you mean 'barge_in'?" in loads["found"]
    assert "'hey_nobody' is not a pretrained model" in loads["found"]
    assert f"magoo check {path}" in loads["fix"]
    assert {"python", "plugins", "sound server", "mpv", "GPIO"} <= {r["check"] for r in report["checks"]}


# ---- network --------------------------------------------------------------------------------------


async def test_a_server_that_answers_is_ok_and_a_closed_port_fails(magoo, tmp_path):
    connections = 0

    async def accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal connections
        connections += 1
        writer.close()

    server = await asyncio.start_server(accept, "127.0.0.1", 0)
    open_port, shut = server.sockets[0].getsockname()[1], closed_port()
    path = profile(tmp_path, KEYS_PROFILE.format(stt_port=shut, tts_port=open_port))
    env = {"DOCTOR_TEST_OPENAI_KEY": SECRET, "DOCTOR_TEST_FISH_KEY": SECRET, "DOCTOR_TEST_VOICE": "voice"}
    async with server:
        async with asyncio.timeout(90):  # only a guard against a hang
            report, result = await asyncio.to_thread(run_doctor, magoo, "--profile", path, env=env)

    assert row(report, f"profile {path}")["result"] == "OK"
    answers = row(report, f"network 127.0.0.1:{open_port}")
    assert answers["result"] == "OK" and "accepts connections" in answers["found"]
    assert "[tts] base_url" in answers["found"]
    assert connections >= 1  # the doctor really connected
    refused = row(report, f"network 127.0.0.1:{shut}")
    assert refused["result"] == "FAIL" and "refuses connections" in refused["found"]
    assert refused["fix"] == "start the server there, or fix url in [stt]"
    assert result.returncode == 1
    assert SECRET not in result.stdout + result.stderr


# ---- GPIO -----------------------------------------------------------------------------------------


def test_a_stopped_pigpio_daemon_fails_with_the_command_that_starts_it_and_mock_pins_need_nothing(magoo, tmp_path):
    port = closed_port()
    servos = f"""
[[actuators]]
backend = "servo"
pin = 18
pin_factory = "pigpio"
pigpio_host = "127.0.0.1"
pigpio_port = {port}

[[actuators]]
backend = "servo"
pin = 19
pin_factory = "mock"
"""
    report, result = run_doctor(magoo, "--profile", profile(tmp_path, SILENT_SOURCE + servos))
    daemon = [r for r in rows(report, "servo GPIO18") if "pigpio daemon" in r["found"]]
    assert len(daemon) == 1 and daemon[0]["result"] == "FAIL"
    assert f"127.0.0.1:{port}" in daemon[0]["found"] and "refuses connections" in daemon[0]["found"]
    assert daemon[0]["fix"].startswith("sudo systemctl start pigpiod")
    assert result.returncode == 1

    mock = row(report, "servo GPIO19")
    assert mock["result"] == "OK" and "mock pins" in mock["found"]
    assert row(report, "GPIO")["result"] in ("OK", "WARN")  # never FAIL: no servo here drives local pins


@pytest.mark.skipif(any(Path("/dev").glob("gpiochip*")), reason="this machine has GPIO")
def test_a_servo_on_real_pins_fails_where_there_is_no_gpio(magoo, tmp_path):
    servo = '\n[[actuators]]\nbackend = "servo"\npin = 18\npin_factory = "lgpio"\n'
    report, result = run_doctor(magoo, "--profile", profile(tmp_path, SILENT_SOURCE + servo))
    # the machine's GPIO row only describes the machine; that this servo needs real pins is the
    # servo plugin's own row now (its `doctor` classmethod), so the FAIL moved there
    assert row(report, "GPIO")["result"] == "WARN"
    gpio = [r for r in rows(report, "servo GPIO18") if "no GPIO here" in r["found"]]
    assert len(gpio) == 1 and gpio[0]["result"] == "FAIL" and result.returncode == 1
    assert gpio[0]["found"].startswith("no GPIO here (not a Raspberry Pi?)")
    assert "[[actuators]] #1 servo GPIO18 uses pin_factory 'lgpio'" in gpio[0]["found"]
    assert 'pin_factory = "mock"' in gpio[0]["fix"]


# ---- models ---------------------------------------------------------------------------------------


def test_model_files_are_resolved_like_the_plugins_do(magoo, tmp_path):
    found = profile(tmp_path, SILENT_SOURCE + '\n[wake]\nbackend = "openwakeword"\nmodels = ["hey_jarvis"]\n')
    report, _ = run_doctor(magoo, "--profile", found)
    wake = row(report, "[wake] openwakeword")
    assert wake["result"] == "OK"
    assert re.search(r"hey_jarvis \(\S+/pyopen_wakeword/models/hey_jarvis.tflite\)", wake["found"])
    assert "melspectrogram.tflite and embedding_model.tflite" in wake["found"]

    missing = profile(tmp_path, """
[audio_source]
backend = "silence"

[wake]
backend = "openwakeword"
models = ["hey_jarvis", { path = "models/hey_nobody.tflite" }]

[stt]
backend = "pocketsphinx"
grammar = "commands.gram"
""", "missing.toml")
    report, result = run_doctor(magoo, "--profile", missing)
    assert result.returncode == 1
    # model files are InputFile fields: the profile does not load, and its row names each key and path
    loads = row(report, f"profile {missing}")
    assert loads["result"] == "FAIL"
    assert f"[wake] models.1.path: no file at {tmp_path / 'models' / 'hey_nobody.tflite'}" in loads["found"]
    assert f"[stt] grammar: no file at {tmp_path / 'commands.gram'}" in loads["found"]
    assert "hey_jarvis" not in loads["found"]  # only what is wrong is named
    assert loads["fix"] == f"fix them; `magoo check {missing}` lists them"
    assert not rows(report, "[wake]") and not rows(report, "[stt]")  # skipped, as the row says


# ---- the checks themselves ------------------------------------------------------------------------


async def test_a_check_that_hangs_or_raises_is_a_row_of_its_own(monkeypatch):
    # the limit is a constant of the module that applies it, since doctor became a package
    monkeypatch.setattr(doctor.running, "CHECK_TIMEOUT", 0.2)

    async def check_forever(context):
        await asyncio.sleep(60)

    async def check_broken(context):
        raise RuntimeError("boom")

    async def check_fine(context):
        return [doctor.ok("fine", "all good")]

    context = doctor.Context(create_plugin_manager(entry_points=False))
    async with asyncio.timeout(10):
        checks = await doctor.run_checks(context, (check_forever, check_broken, check_fine))
    assert [(c.check, c.result) for c in checks] == [
        ("forever", doctor.Result.FAIL), ("broken", doctor.Result.FAIL), ("fine", doctor.Result.OK),
    ]
    assert "did not finish within 0.2 s" in checks[0].found
    assert "RuntimeError: boom" in checks[1].found
    assert doctor.exit_code(checks) == 1 and doctor.exit_code(checks[2:]) == 0


# ---- a plugin's own checks ------------------------------------------------------------------------


RELEASE = threading.Event()  # lets the hanging backend's abandoned thread end after its test


class Checked(Backend):
    """A third-party actuator: its ``doctor`` rows, a raise, or a hang, as its config says."""

    name: ClassVar[str] = "checked"

    class Config(BackendConfig):
        behaviour: Literal["fine", "raises", "hangs"] = "fine"
        token: str = ""

    @classmethod
    def doctor(cls, config: Config, section: str) -> list[doctor.Check]:
        if config.behaviour == "raises":
            raise RuntimeError(f"cannot use token {config.token}")
        if config.behaviour == "hangs":
            RELEASE.wait(30)
        return [
            doctor.ok(f"{section} checked", f"token {config.token} accepted"),
            doctor.warn("checked firmware", "old", "update it"),
        ]


class ThirdParty:
    @staticmethod
    @hookimpl
    def magoo_register_actuators(register):
        register(Checked)


async def test_a_third_party_backend_brings_its_rows_and_a_raise_or_a_hang_is_one_fail_row(monkeypatch, tmp_path):
    monkeypatch.setattr(doctor.backends, "BACKEND_CHECK_TIMEOUT", 0.5)
    actuators = "".join(
        f'\n[[actuators]]\nbackend = "checked"\nbehaviour = "{behaviour}"\ntoken = {{ env = "DOCTOR_TEST_TOKEN" }}\n'
        for behaviour in ("fine", "raises", "hangs")
    )
    path = profile(tmp_path, SILENT_SOURCE + actuators)
    plugins = create_plugin_manager(entry_points=False, extra=[ThirdParty], environ={})
    context = doctor.open_context(plugins, path, environ={"DOCTOR_TEST_TOKEN": SECRET})
    assert context.problems is None
    distribution = context.specs()[-1].info.distribution  # an `extra` plugin's distribution is its module
    started = time.monotonic()
    try:
        checks = await doctor.run_checks(context, doctor.CHECKS[-1:])
    finally:
        RELEASE.set()
    assert time.monotonic() - started < 3  # the hang cost its limit, not the 30 s it waits
    assert [(c.check, c.result) for c in checks] == [
        ("[[actuators]] #1 checked", doctor.Result.OK),
        ("checked firmware", doctor.Result.WARN),
        ("[[actuators]] #2 checked", doctor.Result.FAIL),
        ("[[actuators]] #3 checked", doctor.Result.FAIL),
    ]
    assert checks[0].found == f"token {MASK} accepted"  # the backend's rows are masked like every row
    assert checks[2].found == f"its doctor checks failed: RuntimeError: cannot use token {MASK}"
    assert distribution and distribution in checks[2].fix
    assert checks[3].found == "its doctor checks did not finish within 0.5 s" and distribution in checks[3].fix
    assert all(SECRET not in f"{c.check} {c.found} {c.fix}" for c in checks)
