"""A faint noise added to the decoder's audio: :class:`Dither` (exact digital silence makes
pocketsphinx drop the last words). Not thread-safe: one per stream, on the decoder's thread."""

from __future__ import annotations


class Dither:
    """Adds Gaussian noise of standard deviation ``level`` (16-bit steps) to 16-bit frames; 0: none.
    Seeded, so the same audio is decoded the same way every time."""

    def __init__(self, level: float) -> None:
        import numpy as np  # here, not when `magoo plugins` imports the plugin

        self.level = level
        self._noise = np.random.default_rng(0)

    def __call__(self, frame: bytes) -> bytes:
        if not self.level:
            return frame
        import numpy as np

        noise = self._noise.normal(0.0, self.level, len(frame) // 2)
        mixed = np.frombuffer(frame, "<i2") + np.round(noise)
        return np.clip(mixed, -32768, 32767).astype("<i2").tobytes()
