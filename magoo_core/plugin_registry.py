"""The backend registry: which plugins loaded, which backends they registered, and what failed.

:class:`Plugins` is what :func:`~magoo_core.plugin_loading.create_plugin_manager` returns;
:class:`BackendInfo` and :class:`PluginInfo` are its rows. Lookups are plain dict reads, safe
from any thread once loading is done.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from typing import Any

import pluggy

from . import plugin_entry_points
from .errors import PluginError
from .plugin_events import EventDispatcher
from .roles import Role

#: Backends of magoo's own plugins, so a profile naming one that is not installed says what to install.
KNOWN_PLUGINS: dict[str, str] = {
    "pyaudio": "magoo-pyaudio",
    "sounddevice": "magoo-sounddevice",
    "openwakeword": "magoo-openwakeword",
    "porcupine": "magoo-porcupine",
    "microwakeword": "magoo-microwakeword",
    "openai": "magoo-openai",
    "openai-realtime": "magoo-openai-realtime",
    "fish": "magoo-fish",
    "mpv": "magoo-mpv",
    "servo": "magoo-servo",
    "webhook": "magoo-webhook",
    "web": "magoo-web",
    "mqtt": "magoo-mqtt",
    "pocketsphinx": "magoo-pocketsphinx",
    "espeak": "magoo-espeak",
}

__all__ = ["KNOWN_PLUGINS", "BackendInfo", "PluginInfo", "Plugins", "ServiceInfo", "hook_problem"]


def _first_line(doc: str | None) -> str:
    return doc.splitlines()[0] if doc else ""


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
        """The first line of the class's docstring ("" without one)."""
        return _first_line(inspect.getdoc(self.cls))


@dataclass(frozen=True)
class ServiceInfo:
    """One registered service class: which roles it serves, and which plugin provided it."""

    name: str
    cls: type
    roles: frozenset[Role]
    plugin: str
    distribution: str
    version: str

    @property
    def summary(self) -> str:
        """The first line of the class's docstring ("" without one)."""
        return _first_line(inspect.getdoc(self.cls))

    @property
    def role_names(self) -> str:
        """``"stt, responder, tts"``: its roles in the profile's order."""
        return ", ".join(role.value for role in Role if role in self.roles)

    def as_backend(self, role: Role) -> BackendInfo:
        """The service seen as a backend of ``role`` (what a role section's spec carries)."""
        return BackendInfo(role, self.name, self.cls, self.plugin, self.distribution, self.version)


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


class Plugins:
    """The loaded plugins: a pluggy manager, the backend registry and what failed to load.

    Created by :func:`~magoo_core.plugin_loading.create_plugin_manager`. ``emit()`` and
    ``drain()`` are its :class:`~magoo_core.plugin_events.EventDispatcher`'s, on the event loop.
    """

    def __init__(self, pm: pluggy.PluginManager, *, trace: bool = False) -> None:
        self.pm = pm
        self.events = EventDispatcher(pm, trace=trace)
        self.backends: dict[Role, dict[str, BackendInfo]] = {role: {} for role in Role}
        #: service classes (``magoo_register_services``) by name: one backend for several roles
        self.services: dict[str, ServiceInfo] = {}
        self.plugins: list[PluginInfo] = []
        #: installed plugins that MAGOO_LOAD_PLUGINS left out (not imported)
        self.skipped: list[PluginInfo] = []
        #: problems with the plugin set as a whole, one line each (a MAGOO_LOAD_PLUGINS name that matches nothing)
        self.warnings: list[str] = []
        self._info_by_plugin: dict[str, PluginInfo] = {}

    # ---- registry ---------------------------------------------------------------------------

    def backend(self, role: Role, name: str) -> BackendInfo | None:
        return self.backends[role].get(name)

    def names(self, role: Role) -> list[str]:
        return sorted(self.backends[role])

    def service(self, name: str) -> ServiceInfo | None:
        """The service class registered as ``name`` (``[services.X] backend = name``), or None."""
        return self.services.get(name)

    def service_names(self) -> list[str]:
        return sorted(self.services)

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
        """Register a running backend's ``@hookimpl`` methods (events, and ``magoo_register_tools``);
        False when it has none."""
        if not any(name_.startswith("magoo_on_") or name_ == "magoo_register_tools" for name_ in dir(instance)):
            return False
        try:
            self.pm.register(instance, name=name)
            self.pm.check_pending()
        except pluggy.PluginValidationError as exc:
            if self.pm.is_registered(instance):
                self.pm.unregister(instance)
            raise PluginError(f"{name}: {hook_problem(exc)}") from None
        self._info_by_plugin[name] = PluginInfo(name, "", "", type(instance).__module__)
        self.events.catch_up(instance)  # an instance restarted during the run gets the run's handles
        return True

    def unregister_instance(self, instance: object) -> None:
        if self.pm.is_registered(instance):
            self.pm.unregister(instance)

    # ---- events (the dispatcher's) ----------------------------------------------------------

    async def emit(self, event: str, **kwargs: Any) -> None:
        """:meth:`EventDispatcher.emit <magoo_core.plugin_events.EventDispatcher.emit>`."""
        await self.events.emit(event, **kwargs)

    async def drain(self, timeout: float) -> None:
        """:meth:`EventDispatcher.drain <magoo_core.plugin_events.EventDispatcher.drain>`."""
        await self.events.drain(timeout)

    @property
    def hook_timeout(self) -> float:
        """Seconds ``emit()`` waits for async hook implementations (``[engine] hook_timeout``)."""
        return self.events.hook_timeout

    @hook_timeout.setter
    def hook_timeout(self, seconds: float) -> None:
        self.events.hook_timeout = seconds

    @property
    def trace(self) -> bool:
        """Print every hook call to stderr (``MAGOO_TRACE_PLUGINS``)."""
        return self.events.trace

    @trace.setter
    def trace(self, on: bool) -> None:
        self.events.trace = on


def hook_problem(exc: pluggy.PluginValidationError) -> str:
    """pluggy's validation message on one line."""
    return str(exc).replace("\n", " ")
