"""The plugin system's front door: loading, the backend registry and the event dispatcher.

Each part is a module of its own: :mod:`magoo_core.plugin_loading` (:func:`create_plugin_manager`),
:mod:`magoo_core.plugin_registry` (:class:`Plugins`, :class:`BackendInfo`, :class:`PluginInfo`) and
:mod:`magoo_core.plugin_events` (``emit()``). This module re-exports them, so
``from magoo_core.plugins import Plugins, create_plugin_manager, hookimpl`` keeps working, and holds
the ``hookimpl`` marker plugins decorate their hooks with.
"""

from __future__ import annotations

import pluggy

from .plugin_checks import BACKEND_NAME, REQUIRED_METHODS
from .plugin_checks import check_backend_class as _check_backend_class  # magoo_core.testing.contracts uses it
from .plugin_events import ERROR_REPEAT_WINDOW, MAX_SLOW_CALLS
from .plugin_loading import (
    BUILTIN_DISTRIBUTION, BUILTIN_MODULES, ENTRY_POINT_GROUP, REGISTRATION_HOOKS, MagooPluginManager, create_plugin_manager,
)
from .plugin_registry import KNOWN_PLUGINS, BackendInfo, PluginInfo, Plugins
from .roles import Role

hookimpl = pluggy.HookimplMarker("magoo")

__all__ = [
    "BACKEND_NAME", "BUILTIN_DISTRIBUTION", "ENTRY_POINT_GROUP", "KNOWN_PLUGINS", "MAX_SLOW_CALLS",
    "REGISTRATION_HOOKS", "REQUIRED_METHODS", "BackendInfo", "PluginInfo", "Plugins", "create_plugin_manager", "hookimpl",
]
