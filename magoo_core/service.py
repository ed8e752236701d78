"""``magoo service``: run a profile as a systemd service, with the unit magoo needs.

:func:`render_unit` turns a validated profile into the unit text; :func:`plan_install` decides
where it goes and which ``systemctl`` calls start it; :func:`service_app` is the ``magoo service``
command group (install, status, logs, uninstall). ``docs/operations.md`` explains every line of
the unit.
"""

from __future__ import annotations

import grp
import math
import os
import pwd
import re
import shlex
import shutil
import subprocess
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from .profile_model import Profile

SYSTEM_UNIT_DIR = Path("/etc/systemd/system")
#: where system units are written instead of /etc/systemd/system (tests, staging a disk image)
UNIT_DIR_VARIABLE = "MAGOO_SERVICE_UNIT_DIR"
#: on Raspberry Pi OS: /dev/snd/* (ALSA) belongs to audio, /dev/gpiomem and /dev/gpiochip* to gpio
SERVICE_GROUPS = ("audio", "gpio")
UNIT_PREFIX = "magoo-"
#: systemd's own marker that it runs as PID 1 (what sd_booted() checks)
SYSTEMD_RUNNING = Path("/run/systemd/system")
LINGER_DIR = Path("/var/lib/systemd/linger")

NO_SYSTEMD = (
    "magoo service needs systemd; this machine has none: "
    "run `magoo run --profile ...` under your own supervisor"
)


class ServiceError(Exception):
    """A ``magoo service`` command cannot go on; the message says what to do instead."""


# ---- naming and places ----------------------------------------------------------------------------


def unit_name(name: str) -> str:
    """``magoo-<name>.service``, with every character systemd-escape would encode replaced by ``-``."""
    return f"{UNIT_PREFIX}{re.sub(r'[^A-Za-z0-9:_.-]', '-', name) or 'magoo'}.service"


@dataclass(frozen=True)
class Scope:
    """The system service manager (``user=False``) or the user's, and the folder of its units."""

    user: bool
    folder: Path

    @classmethod
    def of(cls, user: bool, environ: Mapping[str, str] | None = None) -> Scope:
        env = os.environ if environ is None else environ
        if user:
            config = env.get("XDG_CONFIG_HOME") or str(Path(env.get("HOME") or Path.home()) / ".config")
            return cls(True, Path(config) / "systemd" / "user")
        return cls(False, Path(env.get(UNIT_DIR_VARIABLE) or SYSTEM_UNIT_DIR))

    @property
    def flags(self) -> list[str]:
        """What ``systemctl`` and ``journalctl`` need to talk to this manager."""
        return ["--user"] if self.user else []

    @property
    def option(self) -> str:
        """How ``magoo service`` is told this scope, for messages."""
        return " --user" if self.user else ""

    def installed(self) -> list[str]:
        """The magoo units in this scope's folder, by unit name."""
        if not self.folder.is_dir():
            return []
        return sorted(path.name for path in self.folder.glob(f"{UNIT_PREFIX}*.service") if path.is_file())


@dataclass(frozen=True)
class Account:
    """Who a system service runs as: ``User=`` and ``Group=`` (the user's primary group)."""

    user: str
    group: str

    @classmethod
    def invoking(cls, environ: Mapping[str, str] | None = None) -> Account:
        """The user who ran the command: ``$SUDO_USER`` under sudo, else the current user."""
        env = os.environ if environ is None else environ
        sudo_user = env.get("SUDO_USER") if os.geteuid() == 0 else None
        try:
            entry = pwd.getpwnam(sudo_user) if sudo_user else pwd.getpwuid(os.geteuid())
        except KeyError:
            raise ServiceError(f"the user {sudo_user!r} named by $SUDO_USER does not exist on this machine") from None
        try:
            group = grp.getgrgid(entry.pw_gid).gr_name
        except KeyError:
            group = str(entry.pw_gid)
        return cls(entry.pw_name, group)


def existing_groups(wanted: Sequence[str] = SERVICE_GROUPS) -> list[str]:
    """The groups of ``wanted`` that exist here: systemd refuses to start a unit naming a missing one."""
    found = []
    for name in wanted:
        try:
            grp.getgrnam(name)
        except KeyError:
            continue
        found.append(name)
    return found


def magoo_script() -> Path:
    """The ``magoo`` command of the running virtual environment."""
    return Path(sys.executable).parent / "magoo"


# ---- the unit -------------------------------------------------------------------------------------


def _plain(value: str) -> str:
    """A unit setting's value: specifiers (``%``) escaped, control characters (a newline) made spaces."""
    return re.sub(r"[\x00-\x1f\x7f]", " ", value).replace("%", "%%")


def _exec_word(word: str) -> str:
    """One word of ``ExecStart=``: ``%`` and ``$`` escaped, quoted when it has spaces or quotes."""
    if re.search(r"[\x00-\x1f\x7f]", word):
        raise ServiceError(f"{word!r} has a control character (a newline?); systemd cannot run it: rename it")
    word = word.replace("%", "%%").replace("$", "$$")
    if word and not re.search(r"[\s\"'\\;]", word):
        return word
    return '"' + word.replace("\\", "\\\\").replace('"', '\\"') + '"'


def stop_timeout(shutdown_timeout: float) -> int:
    """``TimeoutStopSec``: the turn, the tasks and the backends each get up to shutdown_timeout."""
    return max(20, math.ceil(4 * shutdown_timeout))


def render_unit(
    profile: Profile,
    *,
    unit: str,
    magoo: Path,
    account: Account | None,
    groups: Sequence[str] = (),
) -> str:
    """The unit file that runs ``profile``.

    :param unit: the unit's name (``magoo-kitchen.service``), for the header comment.
    :param magoo: absolute path of the ``magoo`` command (the venv's script).
    :param account: the user of a system unit; None: a ``--user`` unit (no ``User=``).
    :param groups: supplementary groups of a system unit; each must exist on this machine.
    """
    if profile.path is None:
        raise ServiceError("a service needs a profile file, not profile data")
    user_unit = account is None
    lines = [
        f"# {unit}: written by `magoo service install`; run it again to change this file.",
        "[Unit]",
        f"Description=magoo voice assistant ({_plain(profile.name)})",
        # the user manager has no network-online.target: a user unit cannot wait for it
        "After=sound.target" if user_unit else "After=sound.target network-online.target",
        *([] if user_unit else ["Wants=network-online.target"]),
        "StartLimitIntervalSec=60",
        "StartLimitBurst=5",
        "",
        "[Service]",
        "Type=notify",
        "NotifyAccess=main",
        "ExecStart=" + " ".join(_exec_word(w) for w in (str(magoo), "run", "--profile", str(profile.path))),
        "ExecReload=/bin/kill -HUP $MAINPID",  # systemctl reload: a hot reload of the profile
        f"WorkingDirectory={_plain(str(profile.path.parent))}",
        "Environment=PYTHONUNBUFFERED=1",
        "Environment=PYTHONFAULTHANDLER=1",
        "Restart=on-failure",
        "RestartSec=5",
        "RestartPreventExitStatus=2",
        "WatchdogSec=30",
        "TimeoutStartSec=120",
        f"TimeoutStopSec={stop_timeout(profile.engine.shutdown_timeout)}",
        "KillMode=mixed",
    ]
    if account is not None:
        lines += [f"User={_plain(account.user)}", f"Group={_plain(account.group)}"]
        if groups:
            lines.append(f"SupplementaryGroups={' '.join(groups)}")
    lines += ["", "[Install]", f"WantedBy={'default.target' if user_unit else 'multi-user.target'}"]
    return "\n".join(lines) + "\n"


# ---- install --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class InstallPlan:
    """What ``magoo service install`` writes and runs."""

    scope: Scope
    unit: str
    path: Path
    text: str
    #: ``systemctl`` arguments, in order (``--user`` not included)
    commands: tuple[tuple[str, ...], ...]
    #: the unit file there now; None: there is none
    previous: str | None

    @property
    def changes(self) -> bool:
        return self.previous != self.text


def plan_install(
    profile: Profile,
    *,
    user: bool,
    name: str | None = None,
    environ: Mapping[str, str] | None = None,
) -> InstallPlan:
    """Render the unit for ``profile`` and decide where it goes and how it is started."""
    env = os.environ if environ is None else environ
    if user and os.geteuid() == 0 and env.get("SUDO_USER"):
        raise ServiceError(
            "--user installs a service for the user running magoo; run it without sudo"
            " (or leave out --user for a system service)"
        )
    magoo = magoo_script()
    if not magoo.is_file():
        raise ServiceError(
            f"there is no magoo command next to this Python ({magoo}); install magoo in a virtual"
            " environment (./scripts/setup.sh) and run its .venv/bin/magoo"
        )
    scope = Scope.of(user, env)
    account = None if user else Account.invoking(env)
    unit = unit_name(name if name is not None else profile.name)
    text = render_unit(profile, unit=unit, magoo=magoo, account=account, groups=() if user else existing_groups())
    path = scope.folder / unit
    previous = path.read_text(encoding="utf-8") if path.is_file() else None
    if previous is not None and previous != text:
        # enable --now would leave the running service on the old unit
        commands = (("daemon-reload",), ("enable", unit), ("restart", unit))
    else:
        commands = (("daemon-reload",), ("enable", "--now", unit))
    return InstallPlan(scope, unit, path, text, commands, previous)


def write_unit(path: Path, text: str) -> None:
    """Write the unit atomically: systemd never reads half a file."""
    partial = path.with_name(f".{path.name}.partial")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        partial.write_text(text, encoding="utf-8")
        partial.chmod(0o644)
        os.replace(partial, path)
    except OSError as exc:
        raise ServiceError(f"cannot write {path}: {exc.strerror or exc}") from None


def linger_hint(user: str) -> str | None:
    """The one extra step for a user service to start at boot without a login; None: done already."""
    if (LINGER_DIR / user).exists():
        return None
    return (
        f"A user service starts at boot only when systemd keeps your user manager running without a login:"
        f" run `sudo loginctl enable-linger {user}` once."
    )


# ---- running systemctl and journalctl --------------------------------------------------------------


def tool(name: str) -> str:
    """The path of ``systemctl`` or ``journalctl``; a ServiceError when there is none."""
    found = shutil.which(name)
    if found is None:
        raise ServiceError(f"{NO_SYSTEMD} (no {name} on PATH)")
    return found


def run_tool(name: str, args: Sequence[str]) -> int:
    """Run ``name args`` with the terminal's stdin/stdout/stderr; its exit code."""
    return subprocess.run([tool(name), *args], check=False).returncode


def systemctl(scope: Scope, *args: str) -> None:
    """One ``systemctl`` call that must work; a failure is a ServiceError with a hint."""
    code = run_tool("systemctl", [*scope.flags, *args])
    if code != 0:
        command = shlex.join(["systemctl", *scope.flags, *args])
        hint = ""
        if not SYSTEMD_RUNNING.is_dir():
            hint = (
                ": this machine was not booted with systemd (no /run/systemd/system);"
                " run `magoo run --profile ...` under your own supervisor"
            )
        elif scope.user:
            hint = ": a user service needs your login's systemd (log in on the console or over ssh, not with su)"
        raise ServiceError(f"`{command}` failed (exit {code}){hint}")


def find_unit(scope: Scope, name: str | None) -> str:
    """The installed unit ``--name`` means, or the only magoo unit installed."""
    installed = scope.installed()
    other = Scope.of(not scope.user)
    elsewhere = other.installed()
    switch = "a user service: add --user" if other.user else "a system service: leave out --user"
    if name is not None:
        unit = unit_name(name)
        if unit in installed:
            return unit
        message = f"{unit} is not installed (no {scope.folder / unit})"
        if unit in elsewhere:
            message += f"; it is installed as {switch}"
        elif installed:
            message += f"; installed here: {', '.join(installed)}"
        raise ServiceError(message)
    if len(installed) == 1:
        return installed[0]
    if installed:
        names = ", ".join(u.removeprefix(UNIT_PREFIX).removesuffix(".service") for u in installed)
        raise ServiceError(
            f"several magoo services are installed ({', '.join(installed)}); choose one with --name ({names})"
        )
    message = f"no magoo service is installed in {scope.folder}"
    if elsewhere:
        message += f"; {', '.join(elsewhere)} is installed as {switch}"
    else:
        message += f": install one with `magoo service install{scope.option} --profile FILE`"
    raise ServiceError(message)


# ---- the command group ----------------------------------------------------------------------------


def _say(text: str) -> None:
    sys.stdout.write(text if text.endswith("\n") else text + "\n")
    sys.stdout.flush()


def _fail(exc: ServiceError) -> typer.Exit:
    sys.stderr.write(f"magoo service: {exc}\n")
    return typer.Exit(1)


UserOption = Annotated[
    bool, typer.Option("--user", help="A service of your own user (systemctl --user) instead of a system service.")
]
NameOption = Annotated[
    str | None, typer.Option("--name", help="The service magoo-NAME; default: the only magoo service installed.")
]


def service_app(load: Callable[[Path], Profile]) -> typer.Typer:
    """The ``magoo service`` commands.

    :param load: reads and validates a profile, printing every problem and exiting with code 2.
    """
    app = typer.Typer(
        name="service",
        help="Run a profile as a systemd service: install, status, logs, uninstall.",
        no_args_is_help=True,
        rich_markup_mode=None,
    )

    @app.command()
    def install(
        profile: Annotated[Path, typer.Option("--profile", "-p", help="The TOML profile the service runs.")],
        user: UserOption = False,
        name: Annotated[
            str | None, typer.Option("--name", help="Call the service magoo-NAME; default: the profile's [magoo] name.")
        ] = None,
        dry_run: Annotated[
            bool, typer.Option("--dry-run", help="Print the unit and the commands; change nothing.")
        ] = False,
    ) -> None:
        """Write a systemd unit that runs the profile, then enable and start it (now and at every boot)."""
        loaded = load(profile)
        try:
            plan = plan_install(loaded, user=user, name=name)
            linger = linger_hint(pwd.getpwuid(os.getuid()).pw_name) if user else None
            if dry_run:
                _say(f"would write {plan.path}:\n{plan.text}would run:")
                for args in plan.commands:
                    _say("  " + shlex.join(["systemctl", *plan.scope.flags, *args]))
                if linger:
                    _say(linger)
                return
            tool("systemctl")
            if not user and os.geteuid() != 0:
                again = [str(magoo_script()), "service", "install", "--profile", str(loaded.path)]
                command = shlex.join(again + (["--name", name] if name is not None else []))
                raise ServiceError(
                    f"a system service is written to {plan.path}, which needs root: run"
                    f" `sudo {command}`, or add --user for a service of your own (docs/operations.md says which)"
                )
            if plan.changes:
                write_unit(plan.path, plan.text)
            try:
                for args in plan.commands:
                    systemctl(plan.scope, *args)
            except ServiceError as exc:
                if not plan.changes:
                    raise
                # a failed install leaves the unit folder as it found it
                if plan.previous is None:
                    plan.path.unlink()
                    raise ServiceError(f"{exc}. {plan.path} was removed again: nothing is installed") from None
                write_unit(plan.path, plan.previous)
                raise ServiceError(f"{exc}. {plan.path} is as it was") from None
        except ServiceError as exc:
            raise _fail(exc) from None
        what = "unchanged" if not plan.changes else "written" if plan.previous is None else "replaced"
        _say(f"{plan.unit}: {plan.path} {what}; it runs now and at every boot.")
        names = "" if name is None else f" --name {shlex.quote(name)}"
        _say(
            f"See it with `magoo service status{plan.scope.option}{names}`"
            f" and `magoo service logs{plan.scope.option}{names} --follow`."
        )
        if linger:
            _say(linger)

    @app.command()
    def status(name: NameOption = None, user: UserOption = False) -> None:
        """Show the service's state: systemctl status, passed through."""
        try:
            scope = Scope.of(user)
            tool("systemctl")
            unit = find_unit(scope, name)
            code = run_tool("systemctl", [*scope.flags, "status", unit])
        except ServiceError as exc:
            raise _fail(exc) from None
        raise typer.Exit(code)

    @app.command()
    def logs(
        name: NameOption = None,
        user: UserOption = False,
        follow: Annotated[bool, typer.Option("--follow", "-f", help="Keep printing new lines.")] = False,
        lines: Annotated[int, typer.Option("--lines", "-n", help="How many of the last lines (0: all).", min=0)] = 100,
    ) -> None:
        """Show the service's log from the journal: journalctl -u, passed through."""
        try:
            scope = Scope.of(user)
            tool("journalctl")
            unit = find_unit(scope, name)
            args = [*scope.flags, "-u", unit]
            if lines:
                args.append(f"--lines={lines}")
            if follow:
                args.append("--follow")
            code = run_tool("journalctl", args)
        except ServiceError as exc:
            raise _fail(exc) from None
        raise typer.Exit(code)

    @app.command()
    def uninstall(name: NameOption = None, user: UserOption = False) -> None:
        """Stop and disable the service, remove its unit file, reload systemd."""
        try:
            scope = Scope.of(user)
            tool("systemctl")
            unit = find_unit(scope, name)
            if not user and os.geteuid() != 0:
                raise ServiceError(f"removing {scope.folder / unit} needs root: run it with sudo")
            systemctl(scope, "disable", "--now", unit)
            (scope.folder / unit).unlink()
            systemctl(scope, "daemon-reload")
        except ServiceError as exc:
            raise _fail(exc) from None
        _say(f"{unit}: stopped, disabled and removed.")

    return app
