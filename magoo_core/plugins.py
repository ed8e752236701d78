"""Building the plugin manager: built-ins, entry points, the backend registry, and ``emit()``.

There is no global manager: :func:`create_plugin_manager` builds a fresh :class:`Plugins` each time
(the CLI builds one per command, tests build their own). What is checked lives in
:mod:`magoo_core.plugin_checks`; which plugins are installed, in :mod:`magoo_core.plugin_entry_points`.
"""

from __future__ import annotations

import asyncio
import importlib
import importlib.metadata
import inspect
import logging
import os
import sys
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import pluggy

from . import hookspecs, plugin_entry_points
from .errors import BackendError, PluginError
from .plugin_checks import BACKEND_NAME, REQUIRED_METHODS, nearest_hook
from .plugin_checks import check_backend_class as _check_backend_class  # magoo_core.testing.contracts uses it
from .roles import Role
from .types import BackendFailure

log = logging.getLogger("magoo.plugins")

hookimpl = pluggy.HookimplMarker("magoo")

ENTRY_POINT_GROUP = plugin_entry_points.PLUGIN_GROUP
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

ERROR_REPEAT_WINDOW = 60.0
#: hook calls of one plugin left running in the background at most; beyond it the oldest is cancelled
MAX_SLOW_CALLS = 8

__all__ = [
    "BACKEND_NAME", "BUILTIN_DISTRIBUTION", "ENTRY_POINT_GROUP", "KNOWN_PLUGINS", "MAX_SLOW_CALLS",
    "REGISTRATION_HOOKS", "REQUIRED_METHODS", "BackendInfo", "PluginInfo", "Plugins", "create_plugin_manager", "hookimpl",
]


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
    """What ``magoo plugins`` shows for one plugin, loaded or not.

    ``error`` says why it failed (None: loaded); ``offered`` holds every backend (``role:name``) it
    tried to register, also those it failed on, so a profile naming one is told about the failure;
    ``skipped`` says why an installed plugin was not even imported (``MAGOO_LOAD_PLUGINS``).
    """

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
    #: from an entry point (installed), not handed in by code: its mistakes mark it failed instead of raising
    entry_point: bool = False
    offered: list[str] = field(default_factory=list)
    skipped: str | None = None

    @property
    def loaded(self) -> bool:
        return self.error is None and self.skipped is None

    def offers(self, backend: str) -> bool:
        return any(entry.split(":", 1)[-1] == backend for entry in self.offered)

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
        if self.skipped is not None:
            return (
                f"plugin {self.name} {self.version} is installed but not loaded: {self.skipped};"
                f" add {self.name} to {plugin_entry_points.LOAD_VARIABLE}"
            )
        text = f"plugin {self.name} {self.version} failed to load: {self.error}"
        if self.install:
            text += f". Install what it needs with: {self.install}"
        return text

    def fail(self, error: str) -> None:
        """Mark this plugin failed (the first reason wins) and move what it registered to ``offered``."""
        if self.error is None:
            self.error = error
        self.offered.extend(b for b in self.backends if b not in self.offered)
        self.backends.clear()


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
        #: installed plugins that MAGOO_LOAD_PLUGINS left out (not imported)
        self.skipped: list[PluginInfo] = []
        #: problems with the plugin set as a whole, one line each (a MAGOO_LOAD_PLUGINS name that matches nothing)
        self.warnings: list[str] = []
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
        return [info for info in self.plugins if info.error is not None]

    def suspects(self, name: str, distribution: str | None = None) -> list[PluginInfo]:
        """Plugins that did not load and probably provide backend ``name``: first those that tried
        to register it, then the named ``distribution`` and plugins whose name contains the
        backend's. Installed plugins that ``MAGOO_LOAD_PLUGINS`` left out count too."""
        key = name.replace("_", "-").lower()
        candidates = [*self.failed(), *self.skipped]
        exact = [p for p in candidates if p.offers(name)]
        guessed = [
            p for p in candidates
            if p not in exact and (p.distribution == distribution or key in p.name.lower() or key in p.distribution.lower())
        ]
        return exact + guessed

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

    An installed plugin (an entry point) that is wrong in any way is marked failed and offers
    nothing, and the others load: it does not import, implements a hook no spec knows (a typo)
    or with an argument its spec does not pass, its registration raises, it registers an
    incomplete backend class or one with a misspelled ``magoo_on_*`` method, or it registers a
    backend name another installed distribution registers too (then both fail). ``magoo plugins``
    and ``magoo doctor`` show why, and it is fatal only to a profile that uses it. A registration
    that raises marks any plugin failed.

    :param entry_points: load plugins of the ``magoo`` entry-point group.
    :param builtins: register the built-in backends from :mod:`magoo_core.default_plugins`.
    :param extra: further plugin objects (modules, classes, instances), e.g. from tests.
    :param environ: where to read ``MAGOO_LOAD_PLUGINS`` / ``MAGOO_TRACE_PLUGINS`` (os.environ).
    :raises PluginError: a built-in or ``extra`` plugin — handed in by code, so a bug to fix now —
        implements a hook that does not exist or with arguments the spec does not have, or two of
        them register the same backend name.
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
        _load_entry_points(plugins, env)

    problems: list[str] = []
    for role, hook_name in REGISTRATION_HOOKS.items():
        problems += _collect_backends(plugins, role, hook_name)
    if problems:
        raise PluginError("\n".join(problems) + "\nFix the plugin handed to create_plugin_manager().")
    return plugins


def _register(plugins: Plugins, plugin: object, info: PluginInfo) -> None:
    """Register one plugin object; its hook mistakes raise, or mark it failed if it is installed."""
    plugins.plugins.append(info)
    plugins._info_by_plugin[info.name] = info
    try:
        plugins.pm.register(plugin, name=info.name)
    except ValueError as exc:  # pluggy: this name or object is registered already
        info.fail(str(exc))
        return
    except pluggy.PluginValidationError as exc:  # an argument its spec does not have
        problem = _hook_problem(exc)
    else:
        callers = plugins.pm.get_hookcallers(plugin) or []
        unknown = sorted({caller.name for caller in callers if caller.spec is None})
        problem = "; ".join(f"'{hook}' is not a magoo hook{nearest_hook(hook)}" for hook in unknown)
        if not problem:
            info.hooks = sorted({caller.name for caller in callers})
            return
        plugins.pm.unregister(plugin)
    if not info.entry_point:
        raise PluginError(
            f"plugin {info.name} ({info.distribution}): {problem}"
            "\nFix or uninstall the plugin; to start without it, list the plugins to load in"
            " MAGOO_LOAD_PLUGINS (comma-separated entry-point names)."
        )
    info.fail(problem)


def _load_entry_points(plugins: Plugins, environ: Mapping[str, str]) -> None:
    names = plugin_entry_points.load_list(environ)
    installed = plugin_entry_points.installed()
    unknown = plugin_entry_points.unknown_names(names, installed)
    if unknown:
        plugins.warnings.append(plugin_entry_points.unknown_names_message(unknown, installed))
    for entry in installed:
        info = PluginInfo(entry.name, entry.distribution, entry.version, entry.entry_point.value, entry_point=True)
        if not plugin_entry_points.allowed(entry, names):
            info.skipped = f"{plugin_entry_points.LOAD_VARIABLE}={environ.get(plugin_entry_points.LOAD_VARIABLE, '')} leaves it out"
            plugins.skipped.append(info)
            continue
        try:
            module = entry.entry_point.load()
        except Exception as exc:  # any import-time failure must not take the others down
            info.fail(f"{type(exc).__name__}: {exc}")
            if isinstance(exc, ModuleNotFoundError) and exc.name:
                info.missing_module = exc.name
                info.install = plugin_entry_points.install_hint(exc.name, entry.dist, entry.distribution)
            plugins.plugins.append(info)
            plugins._info_by_plugin[info.name] = info
            continue
        _register(plugins, module, info)


def _collect_backends(plugins: Plugins, role: Role, hook_name: str) -> list[str]:
    """Run every plugin's registration hook of ``role``; returns the clashes between plugins handed
    in by code (fatal), having marked failed every installed plugin in a clash."""
    problems: list[str] = []
    for impl in getattr(plugins.pm.hook, hook_name).get_hookimpls():
        info = plugins._info_by_plugin[impl.plugin_name]
        if info.error:
            continue  # failed in an earlier registration hook: it offers nothing

        def register(cls: type, _info: PluginInfo = info) -> None:
            if isinstance(getattr(cls, "name", None), str):
                _info.offered.append(f"{role.value}:{cls.name}")
            problem = _check_backend_class(role, cls)
            if problem:
                raise PluginError(f"{role.title} backend {_class_name(cls)}: {problem}")
            existing = plugins.backends[role].get(cls.name)
            if existing is not None and existing.cls is not cls:
                _clash(plugins, role, cls, existing, _info, problems)
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
            reason = str(exc) if isinstance(exc, PluginError) else f"{hook_name} raised {type(exc).__name__}: {exc}"
            _forget(plugins, info, reason)  # a half-registered plugin offers nothing
            log.debug("plugin %s failed to register", impl.plugin_name, exc_info=True)
    return problems


def _clash(plugins: Plugins, role: Role, cls: type, existing: BackendInfo, new: PluginInfo, problems: list[str]) -> None:
    """Two plugins register the same backend name: fail the installed one(s), else report it.

    Two installed plugins both fail (which one a profile would get is a coin toss); an installed
    plugin taking a name of one handed in by code (a built-in) fails, and the other keeps it.
    """
    old = plugins._info_by_plugin[existing.plugin]
    what = f"{role.title} backend '{cls.name}'"
    if not (old.entry_point or new.entry_point):
        problems.append(
            f"{what} is registered twice: by {existing.distribution} ({existing.plugin}) and by {new.distribution} ({new.name})"
        )
        return
    if new.entry_point and old.entry_point:
        fix = f"uninstall one of them, or leave one out with {plugin_entry_points.LOAD_VARIABLE}"
        _forget(plugins, old, f"registers {what}, which {_who(new)} registers too; {fix}")
        raise PluginError(f"registers {what}, which {_who(old)} registers too; {fix}")  # marks the new one failed
    if new.entry_point:
        raise PluginError(f"registers {what}, which {_who(old)} already provides; rename it or uninstall {new.distribution}")
    _forget(plugins, old, f"registers {what}, which {_who(new)} already provides; rename it or uninstall {old.distribution}")
    plugins.backends[role][cls.name] = BackendInfo(role, cls.name, cls, new.name, new.distribution, new.version)
    new.backends.append(f"{role.value}:{cls.name}")


def _who(info: PluginInfo) -> str:
    return f"{info.distribution} {info.version}".strip()


def _forget(plugins: Plugins, info: PluginInfo, reason: str) -> None:
    """Mark ``info`` failed and take its backends out of the registry."""
    for role_backends in plugins.backends.values():
        for name in [n for n, b in role_backends.items() if b.plugin == info.name]:
            del role_backends[name]
    info.fail(reason)


def _class_name(cls: object) -> str:
    name = getattr(cls, "name", None)
    qualified = f"{getattr(cls, '__module__', '?')}.{getattr(cls, '__qualname__', repr(cls))}"
    return f"'{name}' ({qualified})" if isinstance(name, str) else qualified


def _hook_problem(exc: pluggy.PluginValidationError) -> str:
    return str(exc).replace("\n", " ")


def _version(distribution: str) -> str:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return "0+unknown"
