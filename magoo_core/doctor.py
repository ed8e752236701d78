"""``magoo doctor``: what is wrong with this machine, and with what a profile needs from it.

A check is a coroutine function that takes the :class:`Context` and returns :class:`Check` rows;
:data:`CHECKS` lists them in the order the report shows them. They run concurrently, each under
:data:`CHECK_TIMEOUT`, and anything that can block (a sound server that stopped answering, a DNS
server that is not there) runs in a subprocess that is killed at its limit or in a daemon thread
that is abandoned at its limit, so a hung part costs seconds and never the whole doctor.

Secrets: a ``{ env = "NAME" }`` is only ever looked up to say whether it is set and where from.
The profile's secret values are masked in every row as well, as the loader masks them.
"""

from __future__ import annotations

import asyncio
import enum
import grp
import importlib.metadata
import importlib.util
import json
import os
import re
import shutil
import signal
import socket
import sys
import threading
import time
import tomllib
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from .capture import PREFERRED_RATES, DeviceCapture, select_devices
from .errors import BackendError, ProfileError
from .plugins import KNOWN_PLUGINS, Plugins
from .profile import MASK, BackendSpec, Profile, load_profile
from .roles import Role
from .types import DeviceInfo

T = TypeVar("T")

MIN_PYTHON = (3, 11)
#: every check's own limit; the slow steps inside have shorter ones
CHECK_TIMEOUT = 10.0
PACTL_TIMEOUT = 2.0
#: `magoo devices` in a subprocess: starting Python and magoo, then PortAudio probing each rate
DEVICES_TIMEOUT = 8.0
NETWORK_TIMEOUT = 2.0
PIGPIO_TIMEOUT = 1.0
TOOL_TIMEOUT = 2.0
MODELS_TIMEOUT = 5.0  # finding model files; importing pyopen-wakeword or pocketsphinx on the way
#: what an unset ``{ env = ... }`` is replaced by, so the rest of the profile can still be checked
PLACEHOLDER = "magoo-doctor-unset"

ASOUND_CARDS = Path("/proc/asound/cards")
DEV = Path("/dev")
TOOLS = {tool: f"sudo apt install {tool}" for tool in ("mpv", "mpg123", "espeak-ng")}
START_SOUND_SERVER = "systemctl --user start pipewire-pulse  (or: pulseaudio --start)"
PLUG_IN_MICROPHONE = f"plug in a USB microphone, or start PulseAudio or PipeWire: {START_SOUND_SERVER}"
START_PIGPIOD = "sudo systemctl start pigpiod"
JOIN_GPIO = "sudo usermod -aG gpio $USER, then log in again"
INSTALL_LGPIO = "sudo apt install python3-lgpio  (or: uv pip install 'magoo-servo[lgpio]')"
INSTALL_PIGPIO = "sudo apt install python3-pigpio  (or: uv pip install pigpio)"
CHECK_WIDTH = 24  # the check column, at most: a host and port fit, found and fix get the rest
URL_PORTS = {"http": 80, "https": 443, "ws": 80, "wss": 443}
FEATURE_MODELS = ("melspectrogram", "embedding_model")  # openWakeWord's, shared by every wake word model


class Result(enum.StrEnum):
    OK = "OK"
    WARN = "WARN"
    FAIL = "FAIL"


@dataclass(frozen=True)
class Check:
    """One row of the report.

    :param check: what was checked, in a few words (``"sound server"``, ``"key OPENAI_API_KEY"``).
    :param result: OK, WARN (works, but not as well as it could) or FAIL (something will not work).
    :param found: what the check found, in one sentence or a short list.
    :param fix: for WARN and FAIL, what to do, one line, a command where there is one.
    """

    check: str
    result: Result
    found: str
    fix: str = ""


def ok(check: str, found: str) -> Check:
    return Check(check, Result.OK, found)


def warn(check: str, found: str, fix: str) -> Check:
    return Check(check, Result.WARN, found, fix)


def fail(check: str, found: str, fix: str) -> Check:
    return Check(check, Result.FAIL, found, fix)


@dataclass
class Context:
    """What every check may look at: the plugins and, with ``--profile``, the profile.

    :param profile: the validated profile; when it only fails for unset ``{ env = ... }``
        variables, validated with :data:`PLACEHOLDER` in their place so the other checks still run.
    :param problems: why the profile does not load as it is, or None.
    :param raw: the profile's TOML as parsed, when it parses.
    """

    plugins: Plugins
    profile_path: Path | None = None
    profile: Profile | None = None
    problems: ProfileError | None = None
    raw: Mapping[str, Any] | None = None
    environ: Mapping[str, str] = field(default_factory=lambda: os.environ)
    _dotenv: dict[str, bool] | None = None  # variable -> has a value; the values are not kept

    @property
    def dotenv_path(self) -> Path | None:
        return self.profile_path.absolute().parent / ".env" if self.profile_path else None

    def specs(self) -> list[BackendSpec]:
        """Every configured backend of the profile, backups included (none without a profile)."""
        found = []
        for spec in self.profile.specs() if self.profile else ():
            while spec is not None:
                found.append(spec)
                spec = spec.backup
        return found

    def secret_source(self, var: str) -> tuple[str | None, bool]:
        """Where ``var`` is set (the environment, or the .env file beside the profile) and whether
        it is empty; (None, True) when it is set nowhere. Its value never leaves this method."""
        if var in self.environ:
            return "the environment", not self.environ[var]
        if self._dotenv is None:
            self._dotenv = {}
            if self.dotenv_path is not None and self.dotenv_path.is_file():
                from dotenv import dotenv_values

                self._dotenv = {k: bool(v) for k, v in dotenv_values(self.dotenv_path).items() if v is not None}
        if var in self._dotenv:
            return str(self.dotenv_path), not self._dotenv[var]
        return None, True


CheckFunction = Callable[[Context], Awaitable[list[Check]]]


# ---- running ------------------------------------------------------------------------------------


def diagnose(
    plugins: Plugins, profile_path: Path | None = None, *, environ: Mapping[str, str] | None = None
) -> list[Check]:
    """Run every check of :data:`CHECKS` (blocking; a few seconds) and return the rows in order."""
    context = open_context(plugins, profile_path, environ=os.environ if environ is None else environ)
    return asyncio.run(run_checks(context, CHECKS))


def open_context(plugins: Plugins, profile_path: Path | None, *, environ: Mapping[str, str]) -> Context:
    """Load the profile the way ``magoo run`` does; when only unset variables stop it, load it again
    with placeholders for them, so their rows say FAIL while everything else is still checked."""
    context = Context(plugins, profile_path, environ=environ)
    if profile_path is None:
        return context
    try:
        context.raw = tomllib.loads(Path(profile_path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        pass  # load_profile says what is wrong with the file
    try:
        context.profile = load_profile(profile_path, plugins, environ=environ)
        return context
    except ProfileError as exc:
        context.problems = exc
    unset = {var for _, _, var in env_references(context.raw or {}) if context.secret_source(var)[0] is None}
    if unset:
        try:
            filled = {**environ, **dict.fromkeys(unset, PLACEHOLDER)}
            context.profile = load_profile(profile_path, plugins, environ=filled)
        except ProfileError:
            pass  # other problems too: the profile's row lists them, the checks that need it skip
    return context


async def run_checks(context: Context, checks: tuple[CheckFunction, ...]) -> list[Check]:
    """Run ``checks`` concurrently, each limited to :data:`CHECK_TIMEOUT`; a check that raises or
    runs out of time becomes a FAIL row of its own instead of stopping the others."""

    async def guarded(check: CheckFunction) -> list[Check]:
        name = check.__name__.removeprefix("check_").replace("_", " ")
        try:
            async with asyncio.timeout(CHECK_TIMEOUT):
                return await check(context)
        except TimeoutError:
            found = f"the check did not finish within {CHECK_TIMEOUT:g} s"
            return [fail(name, found, "run it again; if it hangs again, report it")]
        except Exception as exc:
            found = f"the check itself failed: {type(exc).__name__}: {exc}"
            return [fail(name, found, "report this as a bug in magoo doctor")]

    rows = [row for rows in await asyncio.gather(*(guarded(check) for check in checks)) for row in rows]
    secrets = context.profile.secret_values - {PLACEHOLDER} if context.profile else frozenset()
    return [_masked(row, secrets) for row in rows]


def exit_code(checks: list[Check]) -> int:
    """0 when nothing FAILs, else 1."""
    return 1 if any(c.result is Result.FAIL for c in checks) else 0


def print_report(checks: list[Check], console: Console, *, as_json: bool = False) -> int:
    """Print the table (or JSON) and return the exit code."""
    code = exit_code(checks)
    counts = {result: sum(c.result is result for c in checks) for result in Result}
    if as_json:
        worst = Result.FAIL if code else (Result.WARN if counts[Result.WARN] else Result.OK)
        console.print_json(json.dumps({"result": worst.value, "checks": [asdict(c) for c in checks]}))
        return code
    table = Table(show_lines=True, expand=True)
    table.add_column("check", width=min(CHECK_WIDTH, max((len(c.check) for c in checks), default=5)), overflow="fold")
    table.add_column("result", no_wrap=True)
    table.add_column("found", ratio=4, overflow="fold")
    table.add_column("fix", ratio=4, overflow="fold")
    style = {Result.OK: "green", Result.WARN: "yellow", Result.FAIL: "bold red"}
    for row in checks:
        result = f"[{style[row.result]}]{row.result.value}[/]"
        table.add_row(escape(row.check), result, escape(row.found), escape(row.fix))
    console.print(table)
    console.print(", ".join(f"{counts[r]} {r.value}" for r in reversed(Result)), highlight=False)
    return code


def _masked(row: Check, secrets: frozenset[str]) -> Check:
    def mask(text: str) -> str:
        for secret in secrets:
            text = re.sub(rf"(?<!\w){re.escape(secret)}(?!\w)", MASK, text)
        return text

    return replace(row, check=mask(row.check), found=mask(row.found), fix=mask(row.fix)) if secrets else row


# ---- blocking work, bounded ---------------------------------------------------------------------


async def run_command(args: list[str], timeout: float) -> tuple[int, str, str]:
    """Run ``args`` and return (exit code, stdout, stderr); killed after ``timeout`` (TimeoutError)."""
    proc = await asyncio.create_subprocess_exec(
        *args, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    try:
        async with asyncio.timeout(timeout):
            out, err = await proc.communicate()
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise
    assert proc.returncode is not None
    return proc.returncode, out.decode(errors="replace"), err.decode(errors="replace")


async def in_daemon_thread(call: Callable[[], T], timeout: float) -> T:
    """``call()`` in a daemon thread; after ``timeout`` the thread is abandoned (TimeoutError).

    Not ``asyncio.to_thread``: its pool is joined when the loop and then Python shut down, so one
    hung ``getaddrinfo`` would hold the whole doctor.
    """
    loop = asyncio.get_running_loop()
    future: asyncio.Future[T] = loop.create_future()

    def settle(result: Any, error: BaseException | None) -> None:
        if not future.done():
            future.set_exception(error) if error is not None else future.set_result(result)

    def work() -> None:
        try:
            result, error = call(), None
        except BaseException as exc:  # handed to the awaiting coroutine
            result, error = None, exc
        try:
            loop.call_soon_threadsafe(settle, result, error)
        except RuntimeError:
            pass  # the loop is gone: nobody waits any more

    threading.Thread(target=work, daemon=True, name="magoo-doctor").start()
    async with asyncio.timeout(timeout):
        return await future


async def reach(host: str, port: int, timeout: float) -> tuple[bool, str]:
    """Resolve ``host`` and open a TCP connection to ``port``, each within ``timeout`` seconds.

    :returns: (True, what answered) or (False, what went wrong), in words for a row.
    """
    try:
        infos = await in_daemon_thread(lambda: socket.getaddrinfo(host, port, type=socket.SOCK_STREAM), timeout)
    except TimeoutError:
        return False, f"DNS: no answer for {host} within {timeout:g} s"
    except OSError as exc:
        return False, f"DNS: cannot resolve {host} ({exc.strerror or exc})"
    addresses = list(dict.fromkeys(info[4][0] for info in infos))
    started = time.monotonic()
    problem = ""
    try:
        async with asyncio.timeout(timeout):
            for address in addresses:
                try:
                    _, writer = await asyncio.open_connection(address, port)
                except OSError as exc:
                    refused = isinstance(exc, ConnectionRefusedError)
                    problem = "refuses connections" if refused else (exc.strerror or str(exc))
                    continue
                writer.close()
                elapsed = (time.monotonic() - started) * 1000
                return True, f"{host}:{port} ({address}) accepts connections ({elapsed:.0f} ms)"
    except TimeoutError:
        problem = f"no answer within {timeout:g} s (a firewall, or the host is down?)"
    return False, f"{host}:{port} ({', '.join(addresses)}): {problem}"


# ---- the checks ---------------------------------------------------------------------------------


async def check_python(context: Context) -> list[Check]:
    version = ".".join(map(str, sys.version_info[:3]))
    found = f"Python {version} ({sys.executable}); magoo {_version('magoo')}"
    if sys.version_info < MIN_PYTHON:
        wanted = ".".join(map(str, MIN_PYTHON))
        fix = f"install Python {wanted} or newer (Raspberry Pi OS bookworm has 3.11), then ./scripts/demo.sh"
        return [fail("python", found, fix)]
    return [ok("python", found)]


async def check_plugins(context: Context) -> list[Check]:
    """Every plugin distribution with its version; one row per plugin that did not import."""
    loaded: dict[str, str] = {}  # distribution -> version
    rows = []
    for info in context.plugins.plugins:
        if info.loaded:
            loaded.setdefault(info.distribution, info.version)
            continue
        fix = info.install or f"uv pip install --reinstall {info.distribution}  (`magoo plugins` shows the error)"
        used = [
            backend for backend in backend_names(context.raw or {})
            if info in context.plugins.suspects(backend, KNOWN_PLUGINS.get(backend))
        ]
        name = f"plugin {info.name}"
        if used:
            rows.append(fail(name, f"{info.version}: did not load, and the profile uses it: {info.error}", fix))
        else:
            rows.append(warn(name, f"{info.version}: did not load: {info.error}", fix))
    versions = set(loaded.values())
    if len(versions) == 1:  # the workspace's plugins move together: say the version once
        names = f"{', '.join(sorted(loaded))} (all {versions.pop()})"
    else:
        names = ", ".join(f"{name} {version}" for name, version in sorted(loaded.items()))
    return [ok("plugins", f"{len(loaded)} distributions imported: {names}"), *rows]


async def check_profile(context: Context) -> list[Check]:
    if context.profile_path is None:
        return []
    name = f"profile {context.profile_path}"
    if context.problems is None:
        assert context.profile is not None
        backends = ", ".join(f"{spec.section} {spec.backend}" for spec in context.specs())
        return [ok(name, f"loads: {backends}")]
    fix = f"fix them; `magoo check {context.profile_path}` lists them"
    if context.profile is not None:  # it loads once the unset variables have values: nothing else is wrong
        count = len(context.problems.issues)
        unset = f"{count} environment variable{'s are' if count != 1 else ' is'} not set"
        return [fail(name, f"does not load: {unset} (the key rows); the other checks ran without them", fix)]
    issues = "\n".join(str(issue) for issue in context.problems.issues)
    return [fail(name, f"does not load, so the checks of its backends were skipped:\n{issues}", fix)]


async def check_keys(context: Context) -> list[Check]:
    """Each ``{ env = "NAME" }`` of the profile: set or not, and where from; never its value."""
    users: dict[str, list[str]] = {}
    for section, key, var in env_references(context.raw or {}):
        users.setdefault(var, []).append(f"{section} {key}")
    rows = []
    for var, where in users.items():
        source, empty = context.secret_source(var)
        used = f"used by {', '.join(where)}"
        name = f"key {var}"
        if source is None:
            rows.append(fail(name, f"not set ({used})", f"export {var}=...  or add {var}=... to {context.dotenv_path}"))
        elif empty:
            rows.append(warn(name, f"set but empty, in {source} ({used})", f"give {var} its value in {source}"))
        else:
            rows.append(ok(name, f"set, in {source} ({used})"))
    return rows


async def check_sound(context: Context) -> list[Check]:
    server, listing = await asyncio.gather(_sound_server(), _list_devices(context))
    rows = [server, _alsa_cards()]
    needs_microphone = context.profile is None or _device_source(context) is not None
    if not listing:
        rows.append(warn(
            "microphones", "no installed backend can capture from a sound device",
            "uv pip install magoo-pyaudio  (or magoo-sounddevice)",
        ))
    backends: dict[Check, list[str]] = {}  # backends that see the same thing share a row
    for backend, (devices, problem) in listing.items():
        inputs = [d for d in devices if d.max_input_channels > 0]
        if inputs:
            row = ok("", "; ".join(_describe_input(d) for d in inputs))
            backends.setdefault(row, []).append(backend)
            continue
        found = f"no input device at all: {problem}" if problem else "no input device at all"
        install = re.search(r"Install it with: (.*)$", problem or "")
        fix = install.group(1) if install else PLUG_IN_MICROPHONE
        row = fail("", found, fix) if needs_microphone else warn("", f"{found} (the profile needs none)", fix)
        backends.setdefault(row, []).append(backend)
    rows.extend(replace(row, check=f"microphones ({', '.join(names)})") for row, names in backends.items())
    spec = _device_source(context)
    if spec is not None:
        rows.append(_profile_device(spec, listing.get(spec.backend)))
    return rows


async def check_tools(context: Context) -> list[Check]:
    """mpv, mpg123 and espeak-ng, and the binaries the profile's players and voices run."""
    needs: dict[str, list[tuple[BackendSpec, str]]] = {}  # binary -> (spec, why)
    for spec in context.specs():
        config = spec.config
        if spec.backend == "mpv":
            needs.setdefault(config.mpv, []).append((spec, f"{spec.section} mpv plays the replies"))
        elif spec.backend == "espeak":
            needs.setdefault(config.binary, []).append((spec, f"{spec.section} espeak speaks the replies"))
    binaries = list(dict.fromkeys([*TOOLS, *needs]))
    versions = await asyncio.gather(*(_tool_version(binary) for binary in binaries))
    rows = []
    for binary, (path, version) in zip(binaries, versions, strict=True):
        install = TOOLS.get(Path(binary).name, f"install {binary}, or fix the path in the profile")
        if path is not None:
            rows.append(ok(binary, f"{version or binary} at {path}"))
            continue
        reasons = needs.get(binary, [])
        if not reasons:
            rows.append(warn(binary, "not on PATH", install))
            continue
        spec, why = reasons[0]
        fallback = getattr(spec.config, "fallback", None) == "mpg123" and shutil.which(spec.config.mpg123)
        if fallback:
            rows.append(warn(binary, f"not on PATH; {why}: mp3 plays through mpg123, other formats cannot", install))
        elif spec.backup is not None:
            rows.append(warn(binary, f"not on PATH; {why}, so its backup {spec.backup.backend} takes over", install))
        else:
            rows.append(fail(binary, f"not on PATH, and {why}", install))
    return rows


async def check_gpio(context: Context) -> list[Check]:
    servos = [spec for spec in context.specs() if spec.role is Role.ACTUATOR and spec.backend == "servo"]
    local = [s for s in servos if s.config.pin_factory in ("default", "lgpio")]
    devices = sorted(DEV.glob("gpiochip*")) + sorted(DEV.glob("gpiomem*"))
    users = "".join(
        f"; {s.section} servo {s.config.pin_label()} uses pin_factory {s.config.pin_factory!r}" for s in local
    )
    if not devices:
        found = f"no GPIO here (not a Raspberry Pi?): no {DEV}/gpiochip* or {DEV}/gpiomem*{users}"
        if local:
            fix = 'run it on the Raspberry Pi, or set pin_factory = "mock" in the servo to try without hardware'
            rows = [fail("GPIO", found, fix)]
        else:
            fix = 'nothing to do unless a servo needs GPIO; pin_factory = "mock" runs one without'
            rows = [warn("GPIO", found, fix)]
    else:
        closed = [str(d) for d in devices if not os.access(d, os.R_OK | os.W_OK)]
        names = ", ".join(d.name for d in devices)
        if closed:
            found = f"{names}; this user may not open {', '.join(closed)} ({_gpio_group()}){users}"
            rows = [fail("GPIO", found, JOIN_GPIO) if local else warn("GPIO", found, JOIN_GPIO)]
        else:
            rows = [ok("GPIO", f"{names}: readable and writable ({_gpio_group()})")]
    for spec in servos:
        rows.extend(await _servo(spec, context.environ))
    return rows


async def check_network(context: Context) -> list[Check]:
    """For every http(s)/ws(s) address a backend is configured with: DNS, then a TCP connect."""
    targets: dict[tuple[str, int], list[tuple[str, str]]] = {}  # (host, port) -> (section, key)
    for spec in context.specs():
        for key, value in spec.config:
            if not isinstance(value, str):
                continue
            parts = urlsplit(value)
            if parts.scheme in URL_PORTS and parts.hostname:
                try:
                    port = parts.port or URL_PORTS[parts.scheme]
                except ValueError:
                    continue  # not a port: the backend's own validation says so
                targets.setdefault((parts.hostname, port), []).append((spec.section, key))
    results = await asyncio.gather(*(reach(host, port, NETWORK_TIMEOUT) for host, port in targets))
    rows = []
    for ((host, port), users), (reached, found) in zip(targets.items(), results, strict=True):
        name = f"network {host}:{port}"
        found += f" (for {', '.join(f'{section} {key}' for section, key in users)})"
        section, key = users[0]
        if reached:
            rows.append(ok(name, found))
        elif found.startswith("DNS"):
            rows.append(fail(name, found, f"check the network and DNS (/etc/resolv.conf), or fix {key} in {section}"))
        else:
            rows.append(fail(name, found, f"start the server there, or fix {key} in {section}"))
    return rows


async def check_models(context: Context) -> list[Check]:
    """The model files of the profile's wake word and speech-to-text backends exist."""
    rows = []
    for spec in context.specs():
        check = MODEL_CHECKS.get(spec.backend)
        if check is not None:
            rows.extend(await in_daemon_thread(lambda spec=spec, check=check: check(spec), MODELS_TIMEOUT))
    return rows


#: The report's checks, in the order it shows them. A plugin's own checks would join this list
#: through a hook (not there yet).
CHECKS: tuple[CheckFunction, ...] = (
    check_python, check_plugins, check_profile, check_keys, check_sound,
    check_tools, check_gpio, check_network, check_models,
)


# ---- profile helpers ----------------------------------------------------------------------------


def env_references(raw: Mapping[str, Any]) -> list[tuple[str, str, str]]:
    """Every ``{ env = "NAME" }`` in the parsed profile, as (section, dotted key, NAME)."""
    found: list[tuple[str, str, str]] = []

    def walk(value: Any, section: str, path: tuple[str, ...]) -> None:
        if isinstance(value, Mapping) and set(value) == {"env"}:
            if isinstance(value["env"], str) and value["env"]:
                found.append((section, ".".join(path), value["env"]))
        elif isinstance(value, Mapping):
            for key, item in value.items():
                walk(item, section, (*path, str(key)))
        elif isinstance(value, list):
            for index, item in enumerate(value):
                walk(item, section, (*path, str(index)))

    for name, value in raw.items():
        if name == Role.ACTUATOR.value and isinstance(value, list):
            for index, table in enumerate(value, 1):
                walk(table, f"[[actuators]] #{index}", ())
        else:
            walk(value, f"[{name}]", ())
    return found


def backend_names(raw: Mapping[str, Any]) -> set[str]:
    """The backends a parsed profile names (backups included), whether or not they exist."""
    names: set[str] = set()
    tables = [v for k, v in raw.items() if k != Role.ACTUATOR.value] + list(raw.get(Role.ACTUATOR.value) or [])
    for table in tables:
        while isinstance(table, Mapping):
            if isinstance(table.get("backend"), str):
                names.add(table["backend"])
            table = table.get("backup")
    return names


# ---- sound --------------------------------------------------------------------------------------


async def _sound_server() -> Check:
    name = "sound server"
    if shutil.which("pactl") is None:
        found = "pactl is not installed, so no PulseAudio or PipeWire server can be asked"
        return warn(name, found, "sudo apt install pulseaudio-utils")
    try:
        code, out, err = await run_command(["pactl", "info"], PACTL_TIMEOUT)
    except TimeoutError:
        found = f"`pactl info` got no answer within {PACTL_TIMEOUT:g} s: the server hangs, and all sound through it"
        return fail(name, found, f"restart it: {START_SOUND_SERVER}")
    if code != 0:
        reason = (err.strip().splitlines() or ["no answer"])[0]
        fix = f"start it: {START_SOUND_SERVER}; without one (Pi OS Lite), name the USB card in [audio_source] device"
        return warn(name, f"no PulseAudio or PipeWire server answers ({reason})", fix)
    info = dict(line.split(": ", 1) for line in out.splitlines() if ": " in line)
    server = f"{info.get('Server Name', 'a server')} {info.get('Server Version', '')}".strip()
    found = f"{server} at {info.get('Server String', '?')}; default source {info.get('Default Source', '(none)')}"
    return ok(name, found)


def _alsa_cards() -> Check:
    name = "ALSA cards"
    try:
        text = ASOUND_CARDS.read_text()
    except OSError:
        text = ""
    cards = re.findall(r"^\s*(\d+)\s+\[([^\]]*?)\s*\]:\s*(.*?)\s*$", text, re.MULTILINE)
    if not cards:
        fix = "plug in a USB microphone; `arecord -l` lists the cards that capture"
        return warn(name, f"the kernel lists no sound card ({ASOUND_CARDS})", fix)
    return ok(name, "; ".join(f"{number} {card_id}: {description}" for number, card_id, description in cards))


async def _list_devices(context: Context) -> dict[str, tuple[list[DeviceInfo], str | None]]:
    """What ``magoo devices --json`` lists, per capture backend: (devices, problem or None).

    In a subprocess: PortAudio can hang on a stalled sound server, and it writes ALSA's and
    JACK's complaints straight to file descriptor 2.
    """
    expected = [name for name, _ in context.plugins.device_listers()]
    if not expected:
        return {}
    try:
        devices = [sys.executable, "-m", "magoo_core.cli", "devices", "--json"]
        code, out, err = await run_command(devices, DEVICES_TIMEOUT)
    except TimeoutError:
        problem = f"listing the devices took over {DEVICES_TIMEOUT:g} s (a hung sound server?)"
        return {name: ([], problem) for name in expected}
    if code < 0:  # PortAudio aborts when ALSA has no device at all, rather than listing none
        last = err.strip().splitlines()[-1] if err.strip() else ""
        problem = f"`magoo devices` crashed ({signal.Signals(-code).name}){f': {last}' if last else ''}"
        return {name: ([], problem) for name in expected}
    try:
        listed = json.loads(out) if out.strip() else {}
    except json.JSONDecodeError:
        listed = {}
    errors = dict(re.findall(r"^(\S+): could not list devices: (.*)$", err, re.MULTILINE))
    result = {}
    for name in expected:
        if name in listed:
            result[name] = ([_device(d) for d in listed[name]], None)
        else:
            result[name] = ([], f"could not list devices: {errors.get(name, 'no answer from `magoo devices`')}")
    return result


def _device(data: Mapping[str, Any]) -> DeviceInfo:
    rates = {key: tuple(data[key]) for key in ("input_rates", "output_rates")}
    return DeviceInfo(**{**data, **rates})


def _describe_input(device: DeviceInfo) -> str:

    default = ", default" if device.default_input else ""
    rates = f"{DeviceInfo.khz(device.input_rates)} kHz" if device.input_rates else "no rate opens"
    return f"[{device.index}] {device.name}{default}: {rates}"


def _device_source(context: Context) -> BackendSpec | None:
    spec = context.profile.audio_source if context.profile else None
    return spec if spec is not None and issubclass(spec.info.cls, DeviceCapture) else None


def _profile_device(spec: BackendSpec, listed: tuple[list[DeviceInfo], str | None] | None) -> Check:
    """The profile's microphone, found by the rule the capture uses, and whether its rate opens."""
    wanted = spec.config.device
    name = f"{spec.section} device"
    shown = "the default input" if wanted is None else repr(wanted)
    devices, problem = listed or ([], f"{spec.backend} listed nothing")
    inputs = [d for d in devices if d.max_input_channels > 0]
    choose = "set [audio_source] device to a part of one of their names; `magoo devices` lists them"
    if problem:
        return fail(name, f"{shown}: {problem}", "fix the microphone rows above first")
    matches = select_devices(devices, wanted)
    if not matches:
        found = ", ".join(f"[{d.index}] {d.name}" for d in inputs) or "none"
        return fail(name, f"no input matches {shown}; inputs: {found}", choose if inputs else "plug in the microphone")
    rate = spec.config.sample_rate
    for device in matches:
        if rate == "auto" and device.input_rates:
            return ok(name, f"{shown} is [{device.index}] {device.name}; opens at {_first_rate(device)} Hz (auto)")
        if rate in device.input_rates:
            return ok(name, f"{shown} is [{device.index}] {device.name}; opens at {rate} Hz")
    device = matches[0]
    chosen = f"{shown} is [{device.index}] {device.name}"
    if rate != "auto" and rate not in PREFERRED_RATES:
        found = f"{chosen}; {rate} Hz was not tried (magoo probes only {_hz(PREFERRED_RATES)})"
        return warn(name, found, 'set sample_rate = "auto" unless the device needs exactly this rate')
    opens = _hz(device.input_rates) or "no rate"
    return fail(name, f"{chosen}; it does not open at {rate} Hz (it opens at {opens})", 'set sample_rate = "auto"')


def _first_rate(device: DeviceInfo) -> int:
    return next(rate for rate in PREFERRED_RATES if rate in device.input_rates)


def _hz(rates: tuple[int, ...]) -> str:
    return ", ".join(map(str, rates))


# ---- tools and GPIO -----------------------------------------------------------------------------


async def _tool_version(binary: str) -> tuple[str | None, str]:
    """(path or None, first line of ``--version``, or "" when it says nothing in time)."""
    path = shutil.which(binary)
    if path is None:
        return None, ""
    try:
        _, out, _ = await run_command([path, "--version"], TOOL_TIMEOUT)
    except (TimeoutError, OSError):
        return path, ""
    first = out.strip().splitlines()[0] if out.strip() else ""
    return path, re.split(r"\s{2,}|\s+(?:Copyright|\(C\)|\()", first)[0][:80]


def _gpio_group() -> str:
    try:
        gid = grp.getgrnam("gpio").gr_gid
    except KeyError:
        return "there is no group gpio"
    member = gid in os.getgroups() or gid == os.getgid()
    return "in group gpio" if member else "not in group gpio"


async def _servo(spec: BackendSpec, environ: Mapping[str, str]) -> list[Check]:
    config = spec.config
    name = f"servo {config.pin_label()}"
    factory = config.pin_factory
    if factory == "mock":
        return [ok(name, f"{spec.section}: gpiozero's mock pins, no hardware needed")]
    if factory == "default":  # gpiozero tries lgpio, RPi.GPIO, then pigpio with the daemon its variables name
        library = next((m for m in ("lgpio", "RPi", "pigpio") if importlib.util.find_spec(m)), None)
        if library is None:
            found = f"{spec.section}: no GPIO library for gpiozero (lgpio, RPi.GPIO or pigpio) is installed"
            return [fail(name, found, INSTALL_LGPIO)]
        if library != "pigpio":
            return [ok(name, f"{spec.section}: gpiozero picks {'RPi.GPIO' if library == 'RPi' else library}")]
        host, port = environ.get("PIGPIO_ADDR", "localhost"), int(environ.get("PIGPIO_PORT", "8888"))
        return [await _pigpio_daemon(name, f"{spec.section}: gpiozero picks pigpio", host, port)]
    rows = []
    if importlib.util.find_spec(factory) is None:
        found = f"{spec.section} pin_factory {factory!r} needs the Python module {factory}, which is not installed"
        rows.append(fail(name, found, INSTALL_LGPIO if factory == "lgpio" else INSTALL_PIGPIO))
    if factory == "pigpio":
        rows.append(await _pigpio_daemon(name, spec.section, config.pigpio_host, config.pigpio_port))
    return rows or [ok(name, f"{spec.section}: through {factory}")]


async def _pigpio_daemon(name: str, what: str, host: str, port: int) -> Check:
    reached, found = await reach(host, port, PIGPIO_TIMEOUT)
    if reached:
        return ok(name, f"{what}; the pigpio daemon answers at {host}:{port}")
    remote = "" if host in ("localhost", "127.0.0.1", "::1") else f"on {host}: "
    fix = f'{remote}{START_PIGPIOD}  (or use pin_factory = "lgpio")'
    return fail(name, f"{what}; cannot reach the pigpio daemon: {found}", fix)


# ---- models -------------------------------------------------------------------------------------


def _openwakeword(spec: BackendSpec) -> list[Check]:
    """Each model resolved by the plugin itself (a name through pyopen-wakeword, or a file)."""
    detector = spec.create()
    name = f"{spec.section} openwakeword"
    rows, files = [], []
    for model in spec.config.models:
        try:
            files.append(detector._model_file(model))
        except BackendError as exc:
            fix = "fix `path` in [wake] models" if model.path is not None else (
                "uv pip install --reinstall 'pyopen-wakeword>=1.1,<1.2'"
            )
            rows.append(fail(f"{name} {model.key}", exc.message, fix))
    if files:
        framework = files[0].suffix.lstrip(".")
        try:
            features = [detector._feature_file(kind, framework, files).name for kind in FEATURE_MODELS]
        except BackendError as exc:
            fix = "set melspectrogram_model and embedding_model in [wake]"
            return [*rows, fail(f"{name} features", exc.message, fix)]
        shown = ", ".join(f"{model.key} ({path})" for model, path in zip(spec.config.models, files, strict=False))
        if not rows:
            rows.append(ok(name, f"{shown}; with {' and '.join(features)}"))
    return rows


def _pocketsphinx(spec: BackendSpec) -> list[Check]:
    config = spec.config
    name = f"{spec.section} pocketsphinx"
    files = {key: getattr(config, key) for key in ("hmm", "dictionary", "lm", "grammar")}
    missing = {key: path for key, path in files.items() if path is not None and not path.exists()}
    if missing:
        found = "missing: " + ", ".join(f"{key} {path}" for key, path in missing.items())
        return [fail(name, found, f"fix {', '.join(missing)} in {spec.section}")]
    if importlib.util.find_spec("pocketsphinx") is None:
        return [fail(name, "the Python module pocketsphinx is not installed", "uv pip install magoo-pocketsphinx")]
    import pocketsphinx

    model = Path(pocketsphinx.get_model_path())
    if config.hmm is None and not (model / "en-us" / "en-us").is_dir():
        found = f"the model in the pocketsphinx wheel is missing ({model})"
        return [fail(name, found, "uv pip install --reinstall pocketsphinx")]
    if config.commands:
        search = f"a grammar of {len(config.commands)} commands"
    else:
        search = f"grammar {config.grammar}" if config.grammar else f"language model {config.lm or model / 'en-us'}"
    return [ok(name, f"{search}; acoustic model {config.hmm or model / 'en-us' / 'en-us'}")]


def _porcupine(spec: BackendSpec) -> list[Check]:
    config = spec.config
    name = f"{spec.section} porcupine"
    files = [("keyword_paths", p) for p in config.keyword_paths]
    files += [(key, path) for key in ("model_path", "library_path") if (path := getattr(config, key)) is not None]
    missing = [(key, path) for key, path in files if not path.is_file()]
    if missing:
        found = "missing: " + ", ".join(f"{key} {path}" for key, path in missing)
        return [fail(name, found, f"fix {', '.join(dict.fromkeys(key for key, _ in missing))} in {spec.section}")]
    if importlib.util.find_spec("pvporcupine") is None:
        return [fail(name, "the Python module pvporcupine is not installed", "uv pip install magoo-porcupine")]
    keywords = [*config.keywords, *(p.name for p in config.keyword_paths)]
    return [ok(name, f"keywords {', '.join(keywords)}" + (f"; {len(files)} file(s) found" if files else ""))]


def _microwakeword(spec: BackendSpec) -> list[Check]:
    name = f"{spec.section} microwakeword"
    missing = [m.name for m in spec.config.models if m.name.endswith(".json") and not Path(m.name).is_file()]
    if missing:
        return [fail(name, f"no model file at {', '.join(missing)}", f"fix models in {spec.section}")]
    return [ok(name, ", ".join(m.name for m in spec.config.models))]


#: model checks by backend name; blocking, run in a thread
MODEL_CHECKS: dict[str, Callable[[BackendSpec], list[Check]]] = {
    "openwakeword": _openwakeword,
    "pocketsphinx": _pocketsphinx,
    "porcupine": _porcupine,
    "microwakeword": _microwakeword,
}


def _version(distribution: str) -> str:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return "(not installed)"
