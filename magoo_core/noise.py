"""Noise suppression and automatic gain on the microphone, before wake scoring and speech-to-text.

:class:`NoiseFilter` runs WebRTC's noise suppressor, high-pass filter and (optionally) automatic
gain control through ``webrtc-noise-gain`` (imported when a profile turns ``[engine.noise]`` on, so
a profile without it never loads the native library). The library works on 10 ms frames of 16 kHz
mono int16: a chunk in another format is converted first (:class:`~magoo_core.audio.AudioConverter`),
and the samples short of a whole frame wait for the next chunk, so what comes out is always 16 kHz
mono and lags the microphone by less than 10 ms.

Runs on the event loop, in ``Engine._on_audio``, for every captured chunk: about 2 ms of CPU per
second of audio on this machine's core (measured in tests/test_noise.py's comment), a small fraction of wake scoring.
"""

from __future__ import annotations

import logging
from typing import Any

from .audio import AudioConverter
from .settings import NoiseSettings
from .types import AudioChunk, AudioFormat

__all__ = ["FRAME", "NoiseFilter"]

log = logging.getLogger("magoo.engine")

#: the format the library works in, and its frame (10 ms)
FORMAT = AudioFormat(16000)
FRAME = 160


class NoiseFilter:
    """The ``[engine.noise]`` stage: :meth:`process` cleans one chunk of microphone audio.

    :param settings: ``suppression`` (0-4) and ``auto_gain`` (0-31 dBFS, 0: off).
    :param processor: a ``webrtc_noise_gain.AudioProcessor`` already made; by default one is made
        from ``settings`` (use :meth:`of_settings`, which survives a missing library).
    :raises ImportError: ``webrtc-noise-gain`` is not installed (without ``processor``).
    """

    def __init__(self, settings: NoiseSettings, processor: Any = None) -> None:
        if processor is None:
            from webrtc_noise_gain import AudioProcessor

            processor = AudioProcessor(settings.auto_gain, settings.suppression)
        self.settings = settings
        self._processor = processor
        self._converter = AudioConverter(FORMAT, FRAME)

    @classmethod
    def of_settings(cls, settings: NoiseSettings | None) -> NoiseFilter | None:
        """The stage a profile asks for; None when it asks for none, or (with one warning naming the
        install command) when the library is missing: the run goes on with the raw microphone."""
        if settings is None or not settings.enabled or (settings.suppression == 0 and settings.auto_gain == 0):
            return None
        try:
            return cls(settings)
        except ImportError as exc:
            log.warning(
                "[engine.noise] is off: %s. Install it with `uv pip install webrtc-noise-gain` (or magoo's extra"
                " `duplex`); the microphone is used as it is", exc,
            )
            return None

    def process(self, chunk: AudioChunk) -> AudioChunk:
        """``chunk`` cleaned, as 16 kHz mono int16: the whole 10 ms frames there are so far (the
        rest waits for the next chunk, so the result may be empty: zero frames). Its timestamp is
        that of its last frame. Blocks for the library's work (well under the chunk's duration)."""
        frames = self._converter.convert(chunk)
        if not frames:
            return AudioChunk(b"", FORMAT.sample_rate, timestamp=chunk.timestamp)
        cleaned = b"".join(self._processor.Process10ms(frame.pcm).audio for frame in frames)
        return AudioChunk(cleaned, FORMAT.sample_rate, timestamp=frames[-1].timestamp)

    def reset(self) -> None:
        """Drop the samples waiting for a whole frame (the microphone was reopened)."""
        self._converter.reset()
