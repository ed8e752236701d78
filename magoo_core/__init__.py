"""magoo: a framework for voice assistants that run for weeks on a small Linux box.

This module is the public API for plugin authors: the hook marker, the backend base classes,
the data types and the errors.
"""

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
    "Transcript",
    "TurnTimeline",
    "WakeEvent",
    "create_plugin_manager",
    "hookimpl",
    "require",
]
