"""The microphone-side parts of full duplex that the engine drives with every captured chunk.

:class:`Duplex` holds the optional stages a profile turns on under ``[engine]``, each in a module
of its own: ``noise`` (:class:`~magoo_core.noise.NoiseFilter`: noise suppression and automatic
gain, applied to the chunk), ``stop_word`` (:class:`~magoo_core.stop_word.StopWord`: "stop" while
something plays) and ``ducking`` (:class:`~magoo_core.ducking.Ducking`: other programs' sound
lowered while a turn is in progress or something plays). A stage the profile leaves out is None
and costs nothing. Runs on the event loop.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from .ducking import Ducking
from .noise import NoiseFilter
from .settings import EngineSettings
from .stop_word import StopWord
from .types import AudioChunk, State

__all__ = ["Duplex"]


class Duplex:
    """The ``[engine.noise]``, ``[engine.stop_word]`` and ``[engine.ducking]`` stages of one run.

    :param settings: the profile's ``[engine]``.
    :param stop: what the stop word does (the engine's ``Speech.stop``: the reply, announcement or
        ringing timer stops).
    """

    def __init__(self, settings: EngineSettings, stop: Callable[[], Awaitable[None]]) -> None:
        self.noise = NoiseFilter.of_settings(settings.noise)
        echo_cancel = settings.echo_cancel is not None and settings.echo_cancel.enabled
        self.stop_word = StopWord.of_settings(settings.stop_word, stop, echo_cancel=echo_cancel)
        self.ducking = Ducking.of_settings(settings.ducking)

    def clean(self, chunk: AudioChunk) -> AudioChunk:
        """``chunk`` through the noise stage (16 kHz mono then, possibly empty: the stage keeps less
        than 10 ms for the next chunk), or as it is without one."""
        return chunk if self.noise is None else self.noise.process(chunk)

    def observe(self, chunk: AudioChunk, state: State, playing: bool, *, private: bool = False) -> None:
        """Every chunk, with the turn's state and whether something plays now (a reply, an
        announcement, a ring). The stop word listens while something plays, but not to the chimes
        of a turn that waits for its command, nor while the user muted the microphone
        (``private``); other streams are lowered while a turn is in progress or something plays.
        Returns at once."""
        if self.stop_word is not None:
            self.stop_word.hear(chunk, playing and not private and state is not State.AWAKE)
        if self.ducking is not None:
            self.ducking.want(playing or state is not State.LISTENING)

    async def close(self) -> None:
        """Shutdown: other streams get their volume back (first: a hurried stop may not wait for
        the rest), the stop word's worker ends. Safe to call again."""
        if self.ducking is not None:
            await self.ducking.close()
        if self.stop_word is not None:
            await self.stop_word.close()
