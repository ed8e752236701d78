"""The engine's ``[engine]`` settings as its parts read them, swapped whole by a hot reload.

The engine hands one :class:`LiveSettings` to its parts (turns, answers, speaker, voice, follow-up,
continuous mode); each reads a setting when it needs it (``settings.reply_timeout``), so a
reload (:mod:`magoo_core.reload`) that calls :meth:`LiveSettings.use` changes what the next read
gives, with no part told. A part that copies a value at construction (the wake worker's pre-roll,
the monitor's intervals) does not see the change: those settings need a restart, or the reload
hands them over (the slots' restart settings); :data:`magoo_core.reload.LIVE_ENGINE_SETTINGS`
lists the live ones.
"""

from __future__ import annotations

from typing import Any

from .settings import EngineSettings

__all__ = ["LiveSettings"]


class LiveSettings:
    """Reads as the :class:`~magoo_core.settings.EngineSettings` in use now (every attribute and
    method of the model). Runs on the event loop: :meth:`use` is called there, between two reads.

    :param settings: the settings the run starts with.
    """

    __slots__ = ("current",)

    def __init__(self, settings: EngineSettings) -> None:
        self.current = settings

    def __getattr__(self, name: str) -> Any:
        return getattr(self.current, name)

    def use(self, settings: EngineSettings) -> None:
        """From the next read on, every part sees ``settings``."""
        self.current = settings

    def __repr__(self) -> str:
        return f"LiveSettings({self.current!r})"
