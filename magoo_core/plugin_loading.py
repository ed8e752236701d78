"""Loading the plugins: built-ins, then each entry point in its own try, into a :class:`Plugins`.

There is no global manager: :func:`create_plugin_manager` builds a fresh one each time (the CLI
builds one per command, tests build their own). What is checked lives in
:mod:`magoo_core.plugin_checks`; which plugins are installed, in :mod:`magoo_core.plugin_entry_points`.
Loading imports plugin modules: blocking, call it before the engine starts.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import inspect
import logging
import os
import sys
from collections.abc import Iterable, Mapping

import pluggy

from . import hookspecs, plugin_entry_points
from .errors import PluginError
from .plugin_checks import check_backend_class, check_service_class, nearest_hook
from .plugin_registry import BackendInfo, PluginInfo, Plugins, hook_problem
from .roles import ROLES, Role
from .services import SECTION, ServiceInfo

log = logging.getLogger("magoo.plugins")

ENTRY_POINT_GROUP = plugin_entry_points.PLUGIN_GROUP
BUILTIN_DISTRIBUTION = "magoo"
BUILTIN_MODULES = ("sources", "fakes", "recorder", "local", "clock")

#: the hook that registers the backends of each role (the ``register_hook`` of :data:`~magoo_core.roles.ROLES`)
REGISTRATION_HOOKS: dict[Role, str] = {info.role: info.register_hook for info in ROLES}

__all__ = [
    "BUILTIN_DISTRIBUTION", "BUILTIN_MODULES", "ENTRY_POINT_GROUP", "REGISTRATION_HOOKS", "MagooPluginManager",
    "create_plugin_manager",
]


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
    for info in ROLES:
        problems += _collect_backends(plugins, info.role, info.register_hook)
    problems += _collect_services(plugins)
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
        problem = hook_problem(exc)
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
            problem = check_backend_class(role, cls)
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


def _collect_services(plugins: Plugins) -> list[str]:
    """Run every plugin's ``magoo_register_services``; returns the clashes between plugins handed in
    by code (fatal). An installed plugin whose service is wrong, or takes a taken name, fails."""
    problems: list[str] = []
    for impl in plugins.pm.hook.magoo_register_services.get_hookimpls():
        info = plugins._info_by_plugin[impl.plugin_name]
        if info.error:
            continue

        def register(cls: type, _info: PluginInfo = info) -> None:
            if isinstance(getattr(cls, "name", None), str):
                _info.offered.append(f"{SECTION}:{cls.name}")
            problem = check_service_class(cls)
            if problem:
                raise PluginError(f"service {_class_name(cls)}: {problem}")
            existing = plugins.services.get(cls.name)
            if existing is not None and existing.cls is not cls:
                what = f"service '{cls.name}' is registered twice: by {existing.distribution} ({existing.plugin}) and by {_info.distribution} ({_info.name})"
                if not _info.entry_point:
                    problems.append(what)
                    return
                raise PluginError(f"{what}; rename it or uninstall {_info.distribution}")
            plugins.services[cls.name] = ServiceInfo(
                cls.name, cls, frozenset(cls.roles), _info.name, _info.distribution, _info.version
            )
            _info.backends.append(f"{SECTION}:{cls.name}")

        try:
            impl.function(register=register)
        except Exception as exc:
            reason = str(exc) if isinstance(exc, PluginError) else f"magoo_register_services raised {type(exc).__name__}: {exc}"
            _forget(plugins, info, reason)
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
    for name in [n for n, s in plugins.services.items() if s.plugin == info.name]:
        del plugins.services[name]
    info.fail(reason)


def _class_name(cls: object) -> str:
    name = getattr(cls, "name", None)
    qualified = f"{getattr(cls, '__module__', '?')}.{getattr(cls, '__qualname__', repr(cls))}"
    return f"'{name}' ({qualified})" if isinstance(name, str) else qualified


def _version(distribution: str) -> str:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return "0+unknown"
