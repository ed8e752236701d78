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
    from .roles import AudioStream, Backend, BackendConfig, PlaybackProgress, Role
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
        Transcript,
        TurnTimeline,
        WakeEvent,
    )

#: public name -> the submodule that defines it
_HOMES: dict[str, str] = {
    **dict.fromkeys(("BackendError", "MagooError", "MissingDependency", "PluginError", "ProfileError", "require"), "errors"),
    **dict.fromkeys(("BackendInfo", "Plugins", "create_plugin_manager", "hookimpl"), "plugins"),
    **dict.fromkeys(("AudioStream", "Backend", "BackendConfig", "PlaybackProgress", "Role"), "roles"),
    **dict.fromkeys(
        (
            "AudioChunk", "AudioFormat", "BackendFailure", "EncodedAudio", "EngineStatus", "Outcome", "Reply",
            "SpeechActivity", "State", "Transcript", "TurnTimeline", "WakeEvent",
        ),
        "types",
    ),
}

__all__ = sorted(_HOMES)


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'magoo_core' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{home}", __name__), name)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
