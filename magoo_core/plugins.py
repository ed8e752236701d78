"""Building the plugin manager: built-ins, entry points, the backend registry, and ``emit()``.

There is no global manager: :func:`create_plugin_manager` builds a fresh :class:`Plugins` each time
(the CLI builds one per command, tests build their own).
"""

from __future__ import annotations

import asyncio
import difflib
import importlib
import importlib.metadata
import inspect
import logging
import os
import re
import sys
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import pluggy
from pydantic import BaseModel

from . import hookspecs
from .errors import BackendError, PluginError
from .roles import Role
from .types import BackendFailure

log = logging.getLogger("magoo.plugins")

hookimpl = pluggy.HookimplMarker("magoo")

ENTRY_POINT_GROUP = "magoo"
BUILTIN_DISTRIBUTION = "magoo"
BUILTIN_MODULES = ("sources", "fakes", "recorder", "local")

REGISTRATION_HOOKS: dict[Role, str] = {
    Role.AUDIO_SOURCE: "magoo_register_audio_sources",
    Role.WAKE: "magoo_register_wake_detectors",
    Role.STT: "magoo_register_stt",
    Role.RESPONDER: "magoo_register_responders",
    Role.TTS: "magoo_register_tts",
    Role.PLAYER: "magoo_register_players",
    Role.ACTUATOR: "magoo_register_actuators",
}

REQUIRED_METHODS: dict[Role, tuple[str, ...]] = {
    Role.AUDIO_SOURCE: ("stream",),
    Role.WAKE: ("process", "reset"),
    Role.STT: ("transcribe",),
    Role.RESPONDER: ("respond",),
    Role.TTS: ("synthesize",),
    Role.PLAYER: ("play", "stop"),
    Role.ACTUATOR: (),
}

#: Backends of magoo's own plugins, so a profile naming one that is not installed says what to install.
KNOWN_PLUGINS: dict[str, str] = {
    "pyaudio": "magoo-pyaudio",
    "sounddevice": "magoo-sounddevice",
    "openwakeword": "magoo-openwakeword",
    "porcupine": "magoo-porcupine",
    "microwakeword": "magoo-microwakeword",
    "openai-realtime": "magoo-openai-realtime",
    "fish": "magoo-fish",
    "mpv": "magoo-mpv",
    "servo": "magoo-servo",
    "webhook": "magoo-webhook",
    "pocketsphinx": "magoo-pocketsphinx",
    "espeak": "magoo-espeak",
}

BACKEND_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]*$")
ERROR_REPEAT_WINDOW = 60.0
#: hook calls of one plugin left running in the background at most; beyond it the oldest is cancelled
MAX_SLOW_CALLS = 8


@dataclass(frozen=True)
class BackendInfo:
    """One registered backend: which class, and which plugin and distribution provided it."""

    role: Role
    name: str
    cls: type
    plugin: str
    distribution: str
    version: str

    @property
    def summary(self) -> str:
        doc = inspect.getdoc(self.cls) or ""
        return doc.splitlines()[0] if doc else ""


@dataclass
class PluginInfo:
    """What ``magoo plugins`` shows for one plugin, loaded or not."""

    name: str
    distribution: str
    version: str
    module: str
    builtin: bool = False
    hooks: list[str] = field(default_factory=list)
    backends: list[str] = field(default_factory=list)
    error: str | None = None
    missing_module: str | None = None
    install: str | None = None

    @property
    def loaded(self) -> bool:
        return self.error is None

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "distribution": self.distribution,
            "version": self.version,
            "module": self.module,
            "builtin": self.builtin,
            "loaded": self.loaded,
            "hooks": sorted(self.hooks),
            "backends": sorted(self.backends),
            "error": self.error,
            "missing_module": self.missing_module,
            "install": self.install,
        }

    def failure_message(self) -> str:
        text = f"plugin {self.name} {self.version} failed to load: {self.error}"
        if self.install:
            text += f". Install what it needs with: {self.install}"
        return text


class MagooPluginManager(pluggy.PluginManager):
    """A pluggy manager that treats every ``magoo_*`` callable as a hook, decorated or not.

    That way a misspelled hook name (``magoo_on_wak``) is caught by validation instead of being
    silently ignored.
    """

    def parse_hookimpl_opts(self, plugin: object, name: str):  # type: ignore[override]
        opts = super().parse_hookimpl_opts(plugin, name)
        if opts is None and name.startswith("magoo_"):
            member = getattr(plugin, name, None)
            if inspect.isroutine(member):
                return {}  # pluggy fills in the defaults
        return opts


class Plugins:
    """The loaded plugins: a pluggy manager, the backend registry and what failed to load.

    Created by :func:`create_plugin_manager`. ``emit()`` must be called on the event loop.
    """

    def __init__(self, pm: pluggy.PluginManager, *, trace: bool = False) -> None:
        self.pm = pm
        self.trace = trace
        self.hook_timeout = 5.0
        self.backends: dict[Role, dict[str, BackendInfo]] = {role: {} for role in Role}
        self.plugins: list[PluginInfo] = []
        self._info_by_plugin: dict[str, PluginInfo] = {}
        self._slow: dict[str, deque[asyncio.Future]] = {}  # plugin -> its hook calls left running, oldest first
        self._reported: dict[tuple[str, str, str], float] = {}

    # ---- registry ---------------------------------------------------------------------------

    def backend(self, role: Role, name: str) -> BackendInfo | None:
        return self.backends[role].get(name)

    def names(self, role: Role) -> list[str]:
        return sorted(self.backends[role])

    def device_listers(self, only: str | None = None) -> list[tuple[str, type]]:
        """(backend name, class) of every registered backend that can list sound devices
        (``list_devices``, as :class:`~magoo_core.capture.DeviceCapture` has); ``only``: that one."""
        return [
            (name, info.cls)
            for role in Role
            for name, info in sorted(self.backends[role].items())
            if callable(getattr(info.cls, "list_devices", None)) and only in (None, name)
        ]

    def failed(self) -> list[PluginInfo]:
        return [info for info in self.plugins if not info.loaded]

    def suspects(self, name: str, distribution: str | None = None) -> list[PluginInfo]:
        """Failed plugins that probably provide backend ``name``: the named ``distribution``, or
        plugins whose name contains the backend's."""
        key = name.replace("_", "-").lower()
        return [
            p for p in self.failed()
            if p.distribution == distribution or key in p.name.lower() or key in p.distribution.lower()
        ]

    # ---- instances ----------------------------------------------------------------------------

    def register_instance(self, instance: object, name: str) -> bool:
        """Register a running backend's ``@hookimpl`` methods; False when it has none."""
        if not any(name_.startswith("magoo_on_") for name_ in dir(instance)):
            return False
        try:
            self.pm.register(instance, name=name)
            self.pm.check_pending()
        except pluggy.PluginValidationError as exc:
            if self.pm.is_registered(instance):
                self.pm.unregister(instance)
            raise PluginError(f"{name}: {_hook_problem(exc)}") from None
        self._info_by_plugin[name] = PluginInfo(name, "", "", type(instance).__module__)
        return True

    def unregister_instance(self, instance: object) -> None:
        if self.pm.is_registered(instance):
            self.pm.unregister(instance)

    # ---- events -------------------------------------------------------------------------------

    async def emit(self, event: str, **kwargs: Any) -> None:
        """Call every ``magoo_on_<event>`` implementation, isolating each one.

        Sync implementations run inline; coroutines run concurrently and are awaited for at most
        ``hook_timeout`` seconds, after which the engine moves on and the slow call finishes in
        the background. While a plugin still has such a call running, its next coroutines go
        straight to the background (a hook hung on every call must not slow every event down by
        ``hook_timeout``), and beyond :data:`MAX_SLOW_CALLS` of them the oldest is cancelled, so
        they cannot pile up over weeks. A raising implementation is logged with its plugin's name
        and reported through ``magoo_on_error`` (not for ``error`` itself); repeats of the same
        failure, and of the same slowness, are logged at most once a minute.
        """
        hook = getattr(self.pm.hook, f"magoo_on_{event}")
        pending: dict[asyncio.Future, str] = {}
        failures: list[tuple[str, BaseException]] = []
        for impl in hook.get_hookimpls():
            arguments = {arg: kwargs[arg] for arg in impl.argnames if arg in kwargs}
            if self.trace:
                shown = ", ".join(f"{k}={v!r}" for k, v in arguments.items())
                print(f"magoo-trace: {impl.plugin_name}.magoo_on_{event}({shown})", file=sys.stderr)
            try:
                result = impl.function(**arguments)
                if inspect.isawaitable(result):
                    call = asyncio.ensure_future(result)
                    if self._slow.get(impl.plugin_name):
                        self._leave_behind(impl.plugin_name, event, call)
                    else:
                        pending[call] = impl.plugin_name
            except Exception as exc:
                failures.append((impl.plugin_name, exc))
        if pending:
            done, slow = await asyncio.wait(pending, timeout=self.hook_timeout)
            for task in done:
                if not task.cancelled() and task.exception() is not None:
                    failures.append((pending[task], task.exception()))
            for task in slow:
                if self._first_in_window((pending[task], event, "slow")):
                    log.warning(
                        "plugin %s: magoo_on_%s is still running after %.1f s; carrying on without it",
                        pending[task], event, self.hook_timeout,
                    )
                self._leave_behind(pending[task], event, task)
        for plugin_name, exc in failures:
            await self._hook_failed(plugin_name, event, exc)

    def _leave_behind(self, plugin_name: str, event: str, call: asyncio.Future) -> None:
        """Let a slow hook call finish in the background, cancelling the plugin's oldest one when
        it has more than :data:`MAX_SLOW_CALLS` there."""
        running = self._slow.setdefault(plugin_name, deque())
        running.append(call)
        call.add_done_callback(self._background_done(plugin_name, event))
        if len(running) > MAX_SLOW_CALLS:
            running.popleft().cancel()
            if self._first_in_window((plugin_name, "", "cancelled")):
                log.warning(
                    "plugin %s: %d of its hook calls are still running; cancelling the oldest ones so they do not pile up",
                    plugin_name, len(running),
                )

    def _background_done(self, plugin_name: str, event: str) -> Callable[[asyncio.Future], None]:
        def done(task: asyncio.Future) -> None:
            running = self._slow.get(plugin_name)
            if running is not None and task in running:
                running.remove(task)
                if not running:
                    del self._slow[plugin_name]
            if not task.cancelled() and task.exception() is not None:
                self._log_hook_failure(plugin_name, event, task.exception())

        return done

    async def _hook_failed(self, plugin_name: str, event: str, exc: BaseException) -> None:
        if not self._log_hook_failure(plugin_name, event, exc) or event == "error":
            return
        said = exc.message if isinstance(exc, BackendError) else f"raised {type(exc).__name__}: {exc}"
        failure = BackendFailure(role="plugin", backend=plugin_name, message=f"plugin {plugin_name}: magoo_on_{event} {said}")
        await self.emit("error", failure=failure)

    def _log_hook_failure(self, plugin_name: str, event: str, exc: BaseException) -> bool:
        if not self._first_in_window((plugin_name, event, f"{type(exc).__name__}: {exc}")):
            return False
        if isinstance(exc, BackendError):  # the plugin saying what is wrong: no traceback needed
            log.warning("plugin %s: magoo_on_%s: %s", plugin_name, event, exc.message)
        else:
            log.error("plugin %s: magoo_on_%s raised", plugin_name, event, exc_info=exc)
        return True

    def _first_in_window(self, key: tuple[str, str, str]) -> bool:
        """True when ``key`` (plugin, event, what happened) was not seen within :data:`ERROR_REPEAT_WINDOW`."""
        now = time.monotonic()
        if now - self._reported.get(key, -ERROR_REPEAT_WINDOW) < ERROR_REPEAT_WINDOW:
            return False
        # forget what was not seen for a window: messages that vary (a turn number) must not pile up over weeks
        self._reported = {k: t for k, t in self._reported.items() if now - t < ERROR_REPEAT_WINDOW}
        self._reported[key] = now
        return True

    async def drain(self, timeout: float) -> None:
        """Wait up to ``timeout`` seconds for slow hook calls still running, then cancel them."""
        running = {task for tasks in self._slow.values() for task in tasks}
        if running:
            _, slow = await asyncio.wait(running, timeout=timeout)
            for task in slow:
                task.cancel()


# ---- building ---------------------------------------------------------------------------------


def create_plugin_manager(
    *,
    entry_points: bool = True,
    builtins: bool = True,
    extra: Iterable[object] = (),
    environ: Mapping[str, str] | None = None,
) -> Plugins:
    """Build the plugin manager: built-in backends, then each entry point in its own try.

    :param entry_points: load plugins of the ``magoo`` entry-point group.
    :param builtins: register the built-in backends from :mod:`magoo_core.default_plugins`.
    :param extra: further plugin objects (modules, classes, instances), e.g. from tests.
    :param environ: where to read ``MAGOO_LOAD_PLUGINS`` / ``MAGOO_TRACE_PLUGINS`` (os.environ).
    :raises PluginError: a plugin implements a hook that does not exist (a typo) or with
        arguments the spec does not have, or two distributions register the same backend name.
    """
    env = os.environ if environ is None else environ
    pm = MagooPluginManager("magoo")
    pm.add_hookspecs(hookspecs)
    plugins = Plugins(pm, trace=env.get("MAGOO_TRACE_PLUGINS", "").lower() not in ("", "0", "false", "no"))

    if builtins:
        for module_name in BUILTIN_MODULES:
            module = importlib.import_module(f"magoo_core.default_plugins.{module_name}")
            info = PluginInfo(
                f"magoo:{module_name}", BUILTIN_DISTRIBUTION, _version(BUILTIN_DISTRIBUTION), module.__name__, builtin=True
            )
            _register(plugins, module, info)
    for index, plugin in enumerate(extra):
        name = getattr(plugin, "__name__", None) or f"{type(plugin).__name__}-{index}"
        info = PluginInfo(name, getattr(plugin, "__module__", name) or name, "", name)
        _register(plugins, plugin, info)
    if entry_points:
        _load_entry_points(plugins, env.get("MAGOO_LOAD_PLUGINS"))

    problems = _validate_hooks(plugins)
    for role, hook_name in REGISTRATION_HOOKS.items():
        problems += _collect_backends(plugins, role, hook_name)
    if problems:
        raise PluginError(
            "\n".join(problems)
            + "\nFix or uninstall the plugin; to start without it, list the plugins to load in"
            " MAGOO_LOAD_PLUGINS (comma-separated entry-point names)."
        )
    return plugins


def _register(plugins: Plugins, plugin: object, info: PluginInfo) -> None:
    try:
        plugins.pm.register(plugin, name=info.name)
    except (ValueError, pluggy.PluginValidationError) as exc:
        message = _hook_problem(exc) if isinstance(exc, pluggy.PluginValidationError) else str(exc)
        if isinstance(exc, pluggy.PluginValidationError):
            raise PluginError(f"plugin {info.name} ({info.distribution}): {message}") from None
        info.error = message
    else:
        info.hooks = sorted({impl.name for impl in plugins.pm.get_hookcallers(plugin) or []})
    plugins.plugins.append(info)
    plugins._info_by_plugin[info.name] = info


def _load_entry_points(plugins: Plugins, allow_list: str | None) -> None:
    allowed = None if allow_list is None else {n.strip() for n in allow_list.split(",") if n.strip()}
    seen: set[str] = set()
    for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        dist = getattr(ep, "dist", None)
        distribution = dist.name if dist is not None else ep.name
        if allowed is not None and ep.name not in allowed and distribution not in allowed:
            continue
        if ep.name in seen:
            continue  # the same distribution seen twice on sys.path
        seen.add(ep.name)
        version = dist.version if dist is not None else ""
        info = PluginInfo(ep.name, distribution, version, ep.value)
        try:
            module = ep.load()
        except Exception as exc:  # any import-time failure must not take the others down
            info.error = f"{type(exc).__name__}: {exc}"
            if isinstance(exc, ModuleNotFoundError) and exc.name:
                info.missing_module = exc.name
                info.install = _install_hint(exc.name, dist, distribution)
            plugins.plugins.append(info)
            plugins._info_by_plugin[info.name] = info
            continue
        _register(plugins, module, info)


def _install_hint(module: str, dist: importlib.metadata.Distribution | None, distribution: str) -> str:
    wanted = module.split(".")[0].replace("_", "-").lower()
    for requirement in (dist.requires or []) if dist is not None else []:
        name = re.split(r"[\s;<>=!~\[(]", requirement, maxsplit=1)[0]
        if name.replace("_", "-").lower() == wanted:
            return f"uv pip install '{requirement.split(';')[0].strip()}'"
    return f"uv pip install --reinstall {distribution}  (it needs the module '{module}')"


def _validate_hooks(plugins: Plugins) -> list[str]:
    """Report hooks that no spec knows, with a did-you-mean, instead of ignoring them."""
    known = [name for name in dir(hookspecs) if name.startswith("magoo_")]
    problems = []
    for hook_name in dir(plugins.pm.hook):
        caller = getattr(plugins.pm.hook, hook_name)
        if not isinstance(caller, pluggy.HookCaller) or caller.spec is not None:
            continue
        for impl in caller.get_hookimpls():
            close = difflib.get_close_matches(hook_name, known, n=1)
            hint = f"; did you mean '{close[0]}'?" if close else ""
            problems.append(f"plugin {impl.plugin_name}: '{hook_name}' is not a magoo hook{hint}")
    return problems


def _collect_backends(plugins: Plugins, role: Role, hook_name: str) -> list[str]:
    problems: list[str] = []
    for impl in getattr(plugins.pm.hook, hook_name).get_hookimpls():
        info = plugins._info_by_plugin[impl.plugin_name]
        if info.error:
            continue  # failed in an earlier registration hook: it offers nothing

        def register(cls: type, _info: PluginInfo = info) -> None:
            problem = _check_backend_class(role, cls)
            if problem:
                raise PluginError(f"{role.title} backend {cls!r}: {problem}")
            existing = plugins.backends[role].get(cls.name)
            if existing is not None and existing.cls is not cls:
                problems.append(
                    f"{role.title} backend '{cls.name}' is registered twice: by {existing.distribution}"
                    f" ({existing.plugin}) and by {_info.distribution} ({_info.name})"
                )
                return
            plugins.backends[role][cls.name] = BackendInfo(
                role, cls.name, cls, _info.name, _info.distribution, _info.version
            )
            _info.backends.append(f"{role.value}:{cls.name}")

        if plugins.trace:
            print(f"magoo-trace: {impl.plugin_name}.{hook_name}(register)", file=sys.stderr)
        try:
            impl.function(register=register)
        except Exception as exc:
            info.error = f"{hook_name} raised {type(exc).__name__}: {exc}"
            _forget_backends(plugins, info)  # a half-registered plugin offers nothing
            log.debug("plugin %s failed to register", impl.plugin_name, exc_info=True)
    return problems


def _forget_backends(plugins: Plugins, info: PluginInfo) -> None:
    for role_backends in plugins.backends.values():
        for name in [n for n, b in role_backends.items() if b.plugin == info.name]:
            del role_backends[name]
    info.backends.clear()


def _check_backend_class(role: Role, cls: object) -> str | None:
    if not isinstance(cls, type):
        return "register() takes a class, not an instance"
    name = getattr(cls, "name", None)
    if not isinstance(name, str) or not BACKEND_NAME.match(name):
        return "needs a class attribute `name`: lowercase letters, digits, '-' or '_'"
    config = getattr(cls, "Config", None)
    if not (isinstance(config, type) and issubclass(config, BaseModel)):
        return "needs a nested `Config` class (a magoo_core.BackendConfig)"
    if config.model_config.get("extra") != "forbid":
        return "its Config must forbid extra keys (subclass magoo_core.BackendConfig)"
    missing = [m for m in REQUIRED_METHODS[role] if not callable(getattr(cls, m, None))]
    if missing:
        return f"is missing {', '.join(missing)}()"
    return None


def _hook_problem(exc: pluggy.PluginValidationError) -> str:
    return str(exc).replace("\n", " ")


def _version(distribution: str) -> str:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return "0+unknown"
