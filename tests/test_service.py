"""``magoo service``: the unit it writes (checked with the real systemd-analyze) and the systemctl /
journalctl calls it makes.

There is no running systemd here (PID 1 is not systemd), so install/status/logs/uninstall run
against a fake ``systemctl`` and ``journalctl`` first on PATH that record their arguments; the
unit file itself is checked by the real ``systemd-analyze verify``, and one test runs the real
``systemctl`` to see the failure a machine without systemd gives.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shlex
import shutil
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
import typer.main

from magoo_core.cli import build_app
from magoo_core.service import NO_SYSTEMD, SERVICE_GROUPS, SYSTEMD_RUNNING, Account, existing_groups, unit_name

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
MAGOO = Path(sys.executable).parent / "magoo"
OPERATIONS = ROOT / "docs" / "operations.md"

FAKE_TOOL = """#!{python}
import json, os, sys
name = os.path.basename(sys.argv[0])
with open(os.environ["FAKE_SYSTEMD_CALLS"], "a") as log:
    log.write(json.dumps([name, *sys.argv[1:]]) + "\\n")
print("fake " + name + ": " + " ".join(sys.argv[1:]))
failing = os.environ.get("FAKE_SYSTEMD_FAIL")
if failing and failing in sys.argv[1:]:
    print(name + ": " + failing + " went wrong", file=sys.stderr)
    sys.exit(1)
sys.exit(3 if "status" in sys.argv[1:] else 0)  # systemctl status: 3 is "not running"
"""


class FakeSystemd:
    """``systemctl`` and ``journalctl`` that record their argv; ``env`` puts them first on PATH."""

    def __init__(self, root: Path) -> None:
        self.bin = root / "fake-bin"
        self.bin.mkdir()
        self.log = root / "systemd-calls.jsonl"
        for name in ("systemctl", "journalctl"):
            script = self.bin / name
            script.write_text(FAKE_TOOL.format(python=sys.executable))
            script.chmod(0o755)
        self.system_units = root / "system-units"
        self.home = root / "home"
        self.home.mkdir()
        self.env = {
            "PATH": f"{self.bin}{os.pathsep}{os.environ.get('PATH', '')}",
            "FAKE_SYSTEMD_CALLS": str(self.log),
            "MAGOO_SERVICE_UNIT_DIR": str(self.system_units),
            "HOME": str(self.home),
            "XDG_CONFIG_HOME": "",
            "SUDO_USER": "",
            "MAGOO_LOAD_PLUGINS": "",  # the test profile needs only the built-in backends: a faster start
        }

    @property
    def user_units(self) -> Path:
        return self.home / ".config" / "systemd" / "user"

    def calls(self) -> list[list[str]]:
        """Every call since the last ``calls()``."""
        if not self.log.exists():
            return []
        found = [json.loads(line) for line in self.log.read_text().splitlines()]
        self.log.unlink()
        return found


@pytest.fixture
def systemd(tmp_path) -> FakeSystemd:
    return FakeSystemd(tmp_path)


def copy_profile(folder: Path, name: str = "test", edit=None) -> Path:
    """examples/test.toml copied into ``folder`` with ``[magoo] name`` set."""
    folder.mkdir(parents=True, exist_ok=True)
    text = (EXAMPLES / "test.toml").read_text().replace('name = "test"', f'name = "{name}"')
    if edit is not None:
        text = edit(text)
    path = folder / "test.toml"
    path.write_text(text)
    return path


def dry_run_unit(stdout: str) -> tuple[Path, str]:
    """The path and the exact unit text of ``install --dry-run``'s output."""
    match = re.match(r"would write (.+?):\n(.*?)would run:\n", stdout, re.S)
    assert match, f"no unit in the output:\n{stdout}"
    return Path(match.group(1)), match.group(2)


def setting_lines(unit: str) -> list[str]:
    return [line for line in unit.splitlines() if line and not line.startswith("#")]


def systemd_analyze() -> str:
    found = shutil.which("systemd-analyze")
    if found is None:
        message = "systemd-analyze is missing: install systemd (scripts/setup.sh does)"
        if os.environ.get("MAGOO_REQUIRE_AUDIO") == "1":
            pytest.fail(message)
        pytest.skip(message)
    return found


def verify(unit_file: Path, *, user: bool = False, runtime: Path | None = None) -> subprocess.CompletedProcess:
    """``systemd-analyze [--user] verify``: exit 0 and not one warning (a bad value is only a warning)."""
    env = dict(os.environ)
    if user:
        runtime.mkdir(mode=0o700, exist_ok=True)
        env["XDG_RUNTIME_DIR"] = str(runtime)  # the user manager it builds needs one
    return subprocess.run(
        [systemd_analyze(), *(["--user"] if user else []), "verify", str(unit_file)],
        capture_output=True, text=True, env=env, timeout=60,
    )


# ---- the unit -----------------------------------------------------------------------------------


def test_unit_names_keep_what_systemd_allows_and_replace_the_rest():
    assert unit_name("test") == "magoo-test.service"
    assert unit_name("kitchen:2_b.c-d") == "magoo-kitchen:2_b.c-d.service"
    assert unit_name("Küche 2/oben") == "magoo-K-che-2-oben.service"
    assert unit_name("") == "magoo-magoo.service"


def test_the_system_unit_has_every_line_and_systemd_accepts_it(magoo, tmp_path, systemd):
    profile = copy_profile(tmp_path / "assistant")
    result = magoo("service", "install", "--profile", profile, "--dry-run", env=systemd.env)
    assert result.returncode == 0, result.stderr
    path, unit = dry_run_unit(result.stdout)
    assert path == systemd.system_units / "magoo-test.service"
    account = Account.invoking({})
    groups = existing_groups()
    expected = [
        "[Unit]",
        "Description=magoo voice assistant (test)",
        "After=sound.target network-online.target",
        "Wants=network-online.target",
        "StartLimitIntervalSec=60",
        "StartLimitBurst=5",
        "[Service]",
        "Type=notify",
        "NotifyAccess=main",
        f"ExecStart={MAGOO} run --profile {profile}",
        "ExecReload=/bin/kill -HUP $MAINPID",
        f"WorkingDirectory={profile.parent}",
        "Environment=PYTHONUNBUFFERED=1",
        "Environment=PYTHONFAULTHANDLER=1",
        "Restart=on-failure",
        "RestartSec=5",
        "RestartPreventExitStatus=2",
        "WatchdogSec=30",
        "TimeoutStartSec=120",
        "TimeoutStopSec=20",
        "KillMode=mixed",
        f"User={account.user}",
        f"Group={account.group}",
        *([f"SupplementaryGroups={' '.join(groups)}"] if groups else []),
        "[Install]",
        "WantedBy=multi-user.target",
    ]
    assert setting_lines(unit) == expected
    # only groups that exist: systemd refuses to start a unit naming a missing one (216/GROUP)
    assert set(groups) <= set(SERVICE_GROUPS)
    assert "EnvironmentFile" not in unit  # magoo reads the profile's .env itself (docs/operations.md)
    assert result.stdout.endswith(
        "would run:\n  systemctl daemon-reload\n  systemctl enable --now magoo-test.service\n"
    )
    assert systemd.calls() == []  # a dry run runs nothing
    assert not systemd.system_units.exists()

    unit_file = tmp_path / "magoo-test.service"
    unit_file.write_text(unit)
    checked = verify(unit_file)
    assert (checked.returncode, checked.stdout + checked.stderr) == (0, "")


def test_the_user_unit_has_no_user_and_starts_with_the_user_manager(magoo, tmp_path, systemd):
    profile = copy_profile(tmp_path / "assistant", name="desk")
    result = magoo("service", "install", "--user", "--profile", profile, "--dry-run", env=systemd.env)
    assert result.returncode == 0, result.stderr
    path, unit = dry_run_unit(result.stdout)
    assert path == systemd.user_units / "magoo-desk.service"
    lines = setting_lines(unit)
    assert not [line for line in lines if line.startswith(("User=", "Group=", "SupplementaryGroups="))]
    # the user manager has no network-online.target to wait for
    assert "After=sound.target" in lines and "Wants=network-online.target" not in lines
    assert lines[-1] == "WantedBy=default.target"
    for line in ("Type=notify", "WatchdogSec=30", "Restart=on-failure", f"ExecStart={MAGOO} run --profile {profile}"):
        assert line in lines
    user = Account.invoking({}).user
    if not Path("/var/lib/systemd/linger", user).exists():
        assert f"sudo loginctl enable-linger {user}" in result.stdout
    assert "systemctl --user daemon-reload\n  systemctl --user enable --now magoo-desk.service" in result.stdout

    unit_file = tmp_path / "magoo-desk.service"
    unit_file.write_text(unit)
    checked = verify(unit_file, user=True, runtime=tmp_path / "runtime")
    assert (checked.returncode, checked.stdout + checked.stderr) == (0, "")


@pytest.mark.skipif(os.geteuid() != 0, reason="$SUDO_USER counts only when magoo runs as root")
def test_under_sudo_the_system_unit_runs_as_the_user_who_ran_sudo(magoo, tmp_path, systemd):
    import grp
    import pwd

    nobody = pwd.getpwnam("nobody")
    profile = copy_profile(tmp_path / "assistant")
    result = magoo("service", "install", "-p", profile, "--dry-run", env={**systemd.env, "SUDO_USER": "nobody"})
    assert result.returncode == 0, result.stderr
    lines = setting_lines(dry_run_unit(result.stdout)[1])
    assert "User=nobody" in lines and f"Group={grp.getgrgid(nobody.pw_gid).gr_name}" in lines


def test_paths_with_spaces_percent_and_dollar_reach_magoo_unchanged(magoo, tmp_path, systemd):
    profile = copy_profile(tmp_path / "my assistant 100% $HOME", name="odd")
    result = magoo("service", "install", "-p", profile, "--dry-run", env=systemd.env)
    assert result.returncode == 0, result.stderr
    unit = dry_run_unit(result.stdout)[1]
    exec_start = next(line for line in unit.splitlines() if line.startswith("ExecStart="))
    # systemd's rules: double quotes group a word, %% is %, $$ is $
    words = [w.replace("%%", "%").replace("$$", "$") for w in shlex.split(exec_start.removeprefix("ExecStart="))]
    assert words == [str(MAGOO), "run", "--profile", str(profile)]
    assert f"WorkingDirectory={str(profile.parent).replace('%', '%%')}" in unit
    unit_file = tmp_path / "magoo-odd.service"
    unit_file.write_text(unit)
    checked = verify(unit_file)
    assert (checked.returncode, checked.stdout + checked.stderr) == (0, "")


def test_the_unit_starts_magoo_the_way_systemd_will(magoo, tmp_path, systemd):
    """Run the unit's ExecStart in its WorkingDirectory with its Environment= and what systemd adds
    for Type=notify and WatchdogSec=30: magoo sends READY=1 to the socket and stops cleanly."""
    profile = copy_profile(tmp_path / "assistant")
    unit = dry_run_unit(magoo("service", "install", "-p", profile, "--dry-run", env=systemd.env).stdout)[1]
    settings = [line.split("=", 1) for line in setting_lines(unit) if "=" in line]
    command = [
        word.replace("%%", "%").replace("$$", "$")
        for word in shlex.split(next(value for key, value in settings if key == "ExecStart"))
    ]
    folder = next(value for key, value in settings if key == "WorkingDirectory")
    watchdog = next(value for key, value in settings if key == "WatchdogSec")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MAGOO_", "PYTHON"))}
    env.update(value.split("=", 1) for key, value in settings if key == "Environment")
    receiver = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    receiver.bind(str(tmp_path / "notify"))
    env.update(NOTIFY_SOCKET=str(tmp_path / "notify"), WATCHDOG_USEC=str(int(watchdog) * 1_000_000))
    try:
        result = subprocess.run(command, cwd=folder, env=env, capture_output=True, text=True, timeout=120)
        receiver.setblocking(False)
        messages = []
        with contextlib.suppress(BlockingIOError):
            while True:
                messages.append(receiver.recv(65536).decode())
    finally:
        receiver.close()
    assert result.returncode == 0, result.stderr
    assert any("READY=1" in message.splitlines() for message in messages), messages
    assert (profile.parent / "out" / "reply-1.wav").is_file()  # relative paths landed in the profile's folder


def test_the_unit_in_the_docs_is_what_install_writes(magoo, systemd):
    """docs/operations.md shows the unit of `sudo .venv/bin/magoo service install --profile
    examples/pi.toml` run in /home/pi/magoo by pi; the same command here must give the same text,
    with this machine's paths, user and groups put in."""
    section = OPERATIONS.read_text(encoding="utf-8").split("## Running as a service", 1)[1]
    assert "sudo .venv/bin/magoo service install --profile examples/pi.toml" in section
    blocks = re.findall(r"```ini\n(.*?)```", section, re.S)
    documented = next(block for block in blocks if "[Unit]" in block)

    keys = {"OPENAI_API_KEY": "sk-test", "FISH_API_KEY": "fish-test", "FISH_VOICE_ID": "voice-test"}
    env = {key: value for key, value in systemd.env.items() if key != "MAGOO_LOAD_PLUGINS"} | keys  # its plugins
    result = magoo("service", "install", "--profile", "examples/pi.toml", "--dry-run", env=env, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    path, unit = dry_run_unit(result.stdout)
    assert path.name == "magoo-pi.service"

    account = Account.invoking({})
    groups = existing_groups()
    expected = documented.replace("/home/pi/magoo", str(ROOT))
    expected = expected.replace("\nUser=pi\n", f"\nUser={account.user}\n")
    expected = expected.replace("\nGroup=pi\n", f"\nGroup={account.group}\n")
    expected = expected.replace(
        "SupplementaryGroups=audio gpio\n", f"SupplementaryGroups={' '.join(groups)}\n" if groups else ""
    )
    assert unit == expected


# ---- install, status, logs, uninstall ------------------------------------------------------------


def test_a_system_service_is_installed_watched_and_removed(magoo, tmp_path, systemd):
    profile = copy_profile(tmp_path / "assistant")
    planned = magoo("service", "install", "--profile", profile, "--dry-run", env=systemd.env)
    _, unit_text = dry_run_unit(planned.stdout)

    installed = magoo("service", "install", "--profile", profile, env=systemd.env)
    assert installed.returncode == 0, installed.stderr
    unit_file = systemd.system_units / "magoo-test.service"
    assert unit_file.read_text() == unit_text  # the dry run printed exactly what is written
    assert oct(unit_file.stat().st_mode & 0o777) == "0o644"
    assert systemd.calls() == [
        ["systemctl", "daemon-reload"],
        ["systemctl", "enable", "--now", "magoo-test.service"],
    ]
    assert "magoo-test.service" in installed.stdout and "magoo service status" in installed.stdout

    status = magoo("service", "status", env=systemd.env)
    assert status.returncode == 3  # systemctl's exit code, passed through
    assert "fake systemctl: status magoo-test.service" in status.stdout
    assert systemd.calls() == [["systemctl", "status", "magoo-test.service"]]

    logs = magoo("service", "logs", "--name", "test", "--follow", "--lines", "5", env=systemd.env)
    assert logs.returncode == 0, logs.stderr
    assert "fake journalctl: -u magoo-test.service" in logs.stdout
    magoo("service", "logs", env=systemd.env)
    assert systemd.calls() == [
        ["journalctl", "-u", "magoo-test.service", "--lines=5", "--follow"],
        ["journalctl", "-u", "magoo-test.service", "--lines=100"],
    ]

    removed = magoo("service", "uninstall", env=systemd.env)
    assert removed.returncode == 0, removed.stderr
    assert not unit_file.exists()
    assert systemd.calls() == [
        ["systemctl", "disable", "--now", "magoo-test.service"],
        ["systemctl", "daemon-reload"],
    ]


def test_a_user_service_lives_in_the_home_folder(magoo, tmp_path, systemd):
    profile = copy_profile(tmp_path / "assistant", name="desk")
    installed = magoo("service", "install", "--user", "--profile", profile, env=systemd.env)
    assert installed.returncode == 0, installed.stderr
    unit_file = systemd.user_units / "magoo-desk.service"
    assert "WantedBy=default.target" in unit_file.read_text()
    assert systemd.calls() == [
        ["systemctl", "--user", "daemon-reload"],
        ["systemctl", "--user", "enable", "--now", "magoo-desk.service"],
    ]
    assert "loginctl enable-linger" in installed.stdout or Path("/var/lib/systemd/linger").is_dir()

    magoo("service", "status", "--user", env=systemd.env)
    magoo("service", "logs", "--user", "--lines", "0", env=systemd.env)
    assert systemd.calls() == [
        ["systemctl", "--user", "status", "magoo-desk.service"],
        ["journalctl", "--user", "-u", "magoo-desk.service"],
    ]
    # asked for the system service: says where it is instead
    wrong = magoo("service", "status", env=systemd.env)
    assert wrong.returncode == 1
    assert "magoo-desk.service is installed as a user service: add --user" in wrong.stderr
    assert systemd.calls() == []

    removed = magoo("service", "uninstall", "--user", "--name", "desk", env=systemd.env)
    assert removed.returncode == 0, removed.stderr
    assert not unit_file.exists()
    assert systemd.calls() == [
        ["systemctl", "--user", "disable", "--now", "magoo-desk.service"],
        ["systemctl", "--user", "daemon-reload"],
    ]


def test_installing_a_changed_unit_restarts_the_service(magoo, tmp_path, systemd):
    profile = copy_profile(tmp_path / "assistant")
    assert magoo("service", "install", "-p", profile, env=systemd.env).returncode == 0
    systemd.calls()

    again = magoo("service", "install", "-p", profile, env=systemd.env)
    assert again.returncode == 0, again.stderr
    assert "unchanged" in again.stdout
    assert systemd.calls() == [["systemctl", "daemon-reload"], ["systemctl", "enable", "--now", "magoo-test.service"]]

    moved = copy_profile(tmp_path / "elsewhere")
    changed = magoo("service", "install", "-p", moved, env=systemd.env)
    assert changed.returncode == 0, changed.stderr
    assert "replaced" in changed.stdout
    assert f"--profile {moved}" in (systemd.system_units / "magoo-test.service").read_text()
    # enable --now would leave the running magoo on the old unit
    assert systemd.calls() == [
        ["systemctl", "daemon-reload"],
        ["systemctl", "enable", "magoo-test.service"],
        ["systemctl", "restart", "magoo-test.service"],
    ]


def test_a_broken_profile_is_never_installed(magoo, tmp_path, systemd):
    profile = copy_profile(tmp_path / "assistant", edit=lambda text: text.replace("mute_post", "mute_postt"))
    result = magoo("service", "install", "--profile", profile, env=systemd.env)
    assert result.returncode == 2
    assert "[engine] mute_postt: unknown key. Did you mean 'mute_post'?" in result.stderr
    assert systemd.calls() == []
    assert not systemd.system_units.exists()


@pytest.fixture
def shared_folder():
    """A folder every user can read (pytest's tmp_path is root's alone when the tests run as root)."""
    folder = Path(tempfile.mkdtemp(prefix="magoo-service-"))
    folder.chmod(0o755)
    yield folder
    shutil.rmtree(folder)


def test_a_system_install_without_root_names_sudo_and_user(tmp_path, shared_folder, systemd):
    profile = copy_profile(shared_folder / "assistant")
    command = [str(MAGOO), "service", "install", "--profile", str(profile)]
    if os.geteuid() == 0:
        if shutil.which("setpriv") is None:
            pytest.skip("needs setpriv to run as another user")
        # as nobody, allowed to read (not write) any file: the venv's Python may live under /root
        command = [
            "setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
            "--inh-caps=+dac_read_search", "--ambient-caps=+dac_read_search", *command,
        ]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MAGOO_", "PYTHON"))} | systemd.env
    result = subprocess.run(command, capture_output=True, text=True, env=env, cwd=shared_folder, timeout=60)
    assert result.returncode == 1, result.stderr
    assert "needs root: run `sudo " in result.stderr
    assert f"{MAGOO} service install --profile {profile}`" in result.stderr
    assert "or add --user" in result.stderr
    assert systemd.calls() == []
    assert not systemd.system_units.exists()


@pytest.mark.skipif(os.geteuid() != 0, reason="only root can be under sudo")
def test_user_services_are_refused_under_sudo(magoo, tmp_path, systemd):
    profile = copy_profile(tmp_path / "assistant")
    result = magoo("service", "install", "--user", "-p", profile, env={**systemd.env, "SUDO_USER": "nobody"})
    assert result.returncode == 1
    assert "--user installs a service for the user running magoo; run it without sudo" in result.stderr
    assert systemd.calls() == [] and not systemd.user_units.exists()


def test_without_systemd_every_command_says_so(magoo, tmp_path, systemd):
    profile = copy_profile(tmp_path / "assistant")
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    env = {**systemd.env, "PATH": str(empty)}
    for args in (
        ["install", "--profile", profile],
        ["status"],
        ["logs", "--follow"],
        ["uninstall", "--user"],
    ):
        result = magoo("service", *args, env=env)
        assert result.returncode == 1, args
        assert NO_SYSTEMD in result.stderr, args
    assert not systemd.system_units.exists()
    # printing the unit needs no systemd
    assert magoo("service", "install", "--profile", profile, "--dry-run", env=env).returncode == 0


def test_a_failing_systemctl_leaves_the_unit_folder_as_it_was(magoo, tmp_path, systemd):
    profile = copy_profile(tmp_path / "assistant")
    result = magoo("service", "install", "-p", profile, env={**systemd.env, "FAKE_SYSTEMD_FAIL": "enable"})
    assert result.returncode == 1
    assert "`systemctl enable --now magoo-test.service` failed (exit 1)" in result.stderr
    assert "systemctl: enable went wrong" in result.stderr  # systemctl's own words, passed through
    assert "nothing is installed" in result.stderr
    assert list(systemd.system_units.iterdir()) == []
    assert [call[1] for call in systemd.calls()] == ["daemon-reload", "enable"]


@pytest.mark.skipif(SYSTEMD_RUNNING.is_dir(), reason="systemd runs here: the real systemctl would really install")
def test_the_real_systemctl_on_a_machine_without_systemd(magoo, tmp_path, systemd):
    if shutil.which("systemctl") is None:
        pytest.skip("no systemctl: test_without_systemd_every_command_says_so covers it")
    profile = copy_profile(tmp_path / "assistant")
    env = {**systemd.env, "PATH": os.environ.get("PATH", "")}  # the real systemctl
    result = magoo("service", "install", "-p", profile, env=env)
    assert result.returncode == 1
    assert "`systemctl daemon-reload` failed" in result.stderr
    assert "this machine was not booted with systemd" in result.stderr
    assert list(systemd.system_units.iterdir()) == []


def test_status_finds_the_service_or_says_which(magoo, tmp_path, systemd):
    nothing = magoo("service", "status", env=systemd.env)
    assert nothing.returncode == 1
    assert f"no magoo service is installed in {systemd.system_units}" in nothing.stderr
    assert "magoo service install --profile FILE" in nothing.stderr

    for name in ("kitchen", "hall"):
        profile = copy_profile(tmp_path / name, name=name)
        assert magoo("service", "install", "-p", profile, env=systemd.env).returncode == 0
    systemd.calls()
    several = magoo("service", "logs", env=systemd.env)
    assert several.returncode == 1
    assert "several magoo services are installed (magoo-hall.service, magoo-kitchen.service)" in several.stderr
    assert "--name" in several.stderr

    missing = magoo("service", "uninstall", "--name", "attic", env=systemd.env)
    assert missing.returncode == 1
    assert "magoo-attic.service is not installed" in missing.stderr
    assert "installed here: magoo-hall.service, magoo-kitchen.service" in missing.stderr
    assert systemd.calls() == []

    assert magoo("service", "status", "--name", "hall", env=systemd.env).returncode == 3
    assert systemd.calls() == [["systemctl", "status", "magoo-hall.service"]]


# ---- docs ---------------------------------------------------------------------------------------


def test_every_service_option_is_in_the_cli_reference(monkeypatch):
    # The command reference moved from README.md to the docs site's docs/cli.md.
    monkeypatch.setenv("MAGOO_LOAD_PLUGINS", "")
    reference = (ROOT / "docs" / "cli.md").read_text(encoding="utf-8")
    group = typer.main.get_command(build_app()).commands["service"]
    assert set(group.commands) == {"install", "status", "logs", "uninstall"}
    for name, command in group.commands.items():
        assert f"magoo service {name}" in reference
        for param in command.params:
            for option in param.opts:
                if option.startswith("--") and option != "--help":
                    assert option in reference, f"docs/cli.md does not mention `magoo service {name} {option}`"
