"""magoo: a framework for voice assistants that run for weeks on a small Linux box.

This module is the public API for plugin authors: the hook marker, the backend base classes,
the data types and the errors.

Names are imported on first use (PEP 562), so that ``import magoo_core.cli`` — which every
``magoo`` command starts with — does not pay for pydantic, pluggy and the backend types when
all it does is print ``--help``. ``from magoo_core import Backend`` works as before.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .errors import BackendError, MagooError, MissingDependency, PluginError, ProfileError, require
    from .plugins import BackendInfo, Plugins, create_plugin_manager, hookimpl
    from .roles import AudioStream, Backend, BackendConfig, InputFile, InputFolder, PlaybackProgress, Role
    from .types import (
        AudioChunk,
        AudioFormat,
        BackendFailure,
        EncodedAudio,
        EngineStatus,
        Outcome,
        Reply,
        SpeechActivity,
        State,
        Timer,
        Transcript,
        TurnContext,
        TurnTimeline,
        WakeEvent,
    )

__all__ = [
    "AudioChunk",
    "AudioFormat",
    "AudioStream",
    "Backend",
    "BackendConfig",
    "BackendError",
    "BackendFailure",
    "BackendInfo",
    "EncodedAudio",
    "EngineStatus",
    "InputFile",
    "InputFolder",
    "MagooError",
    "MissingDependency",
    "Outcome",
    "PlaybackProgress",
    "PluginError",
    "Plugins",
    "ProfileError",
    "Reply",
    "Role",
    "SpeechActivity",
    "State",
    "Timer",
    "Transcript",
    "TurnContext",
    "TurnTimeline",
    "WakeEvent",
    "create_plugin_manager",
    "hookimpl",
    "require",
]

#: where the names of __all__ are defined, lightest first: a name is looked up in each in turn
_HOMES = ("errors", "types", "roles", "plugins")


def __getattr__(name: str) -> Any:
    if name in __all__:
        for home in _HOMES:
            module = importlib.import_module(f".{home}", __name__)
            if hasattr(module, name):
                value = globals()[name] = getattr(module, name)  # later look-ups skip this function
                return value
    raise AttributeError(f"module 'magoo_core' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
