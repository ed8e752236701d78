"""The input audio buffer of a loopback session, and the energy VAD that stands in for the server's.

Both work in audio time, not wall-clock: a client that streams faster or slower than real time
gets the same events at the same ``audio_*_ms``, which keeps tests deterministic. Positions are
session bytes: PCM16 mono at 24 kHz counted from session start, 48 bytes a millisecond.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import numpy as np

from .validate import silence_duration_ms

BYTES_PER_MS = 48
MIN_COMMIT_MS = 100
FRAME_MS = 10
FRAME_BYTES = FRAME_MS * BYTES_PER_MS
MIN_SPEECH_FRAMES = 10  # shorter bursts (a click, a tap on the mic) are not speech


def frame_dbfs(frame: bytes) -> float:
    """RMS level of PCM16 LE samples in dB of full scale (-inf for digital silence)."""
    samples = np.frombuffer(frame, dtype="<i2").astype(np.float64)
    rms = math.sqrt(float(np.mean(samples * samples))) / 32768.0 if len(samples) else 0.0
    return 20 * math.log10(rms) if rms > 0 else -math.inf


def speech_threshold_dbfs(threshold: float) -> float:
    """The level above which a frame counts as speech: threshold 0.5 (the default) is -45 dBFS."""
    return -70 + 50 * threshold


class EnergyVad:
    """Finds speech starts and stops in a stream of 10 ms frames.

    Feed every frame of the session, in order, with :meth:`push`. Speech starts at the first loud
    frame of a run that reaches :data:`MIN_SPEECH_FRAMES` loud frames before a gap of as many quiet
    ones; it stops once ``silence_ms`` of quiet frames have followed.
    """

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.speaking = False
        self.candidate_ms: int | None = None  # start of a loud run not yet long enough to be speech
        self._loud = 0
        self._quiet = 0

    def push(self, frame: bytes, frame_ms: int, threshold_dbfs: float, silence_ms: int) -> tuple[str, int] | None:
        """Take the frame starting at ``frame_ms`` (session audio time).

        :returns: ``("started", first_loud_frame_ms)`` or ``("stopped", end_of_silence_ms)`` when
            that happens with this frame, else None.
        """
        loud = frame_dbfs(frame) > threshold_dbfs
        if self.speaking:
            self._quiet = 0 if loud else self._quiet + 1
            if not loud and self._quiet * FRAME_MS >= silence_ms:
                self.reset()
                return "stopped", frame_ms + FRAME_MS
            return None
        if loud:
            if self.candidate_ms is None:
                self.candidate_ms, self._loud = frame_ms, 0
            self._loud += 1
            self._quiet = 0
            if self._loud >= MIN_SPEECH_FRAMES:
                start = self.candidate_ms
                self.speaking, self.candidate_ms, self._quiet = True, None, 0
                return "started", start
        elif self.candidate_ms is not None:
            self._quiet += 1
            if self._quiet >= MIN_SPEECH_FRAMES:
                self.candidate_ms = None
        return None


class InputAudioBuffer:
    """Audio appended since the last commit or clear, with the VAD run over every 10 ms frame.

    :attr:`start` is the session byte where :attr:`data` begins. With VAD on, audio that no coming
    speech start could reach back to is dropped, so an idle session does not grow without bound.
    """

    def __init__(self) -> None:
        self.data = bytearray()
        self.start = 0
        self.vad = EnergyVad()
        self._carry = bytearray()  # the tail that does not fill a VAD frame yet
        self._next_frame = 0  # session byte where that tail starts

    def append(self, pcm: bytes, turn_detection: dict | None) -> Iterator[tuple[str, int]]:
        """Add ``pcm``; yield what the VAD finds in it (see :meth:`EnergyVad.push`), in order.

        Audio is added at once; the VAD runs as the iterator is consumed.
        """
        self.data += pcm
        self._carry += pcm
        while len(self._carry) >= FRAME_BYTES:
            frame = bytes(self._carry[:FRAME_BYTES])
            del self._carry[:FRAME_BYTES]
            frame_ms = self._next_frame // BYTES_PER_MS
            self._next_frame += FRAME_BYTES
            if turn_detection is not None:
                found = self.vad.push(frame, frame_ms, speech_threshold_dbfs(turn_detection.get("threshold", 0.5)),
                                      silence_duration_ms(turn_detection))
                if found:
                    yield found
        if turn_detection is not None and not self.vad.speaking:
            self._trim(turn_detection.get("prefix_padding_ms", 300) + 1000)

    def take(self, start: int, end: int) -> bytes:
        """Session bytes ``start:end``; the buffer then begins at ``end``."""
        audio = bytes(self.data[start - self.start : end - self.start])
        del self.data[: end - self.start]
        self.start = end
        return audio

    def clear(self) -> None:
        self.start += len(self.data)
        self.data.clear()
        self.vad.reset()

    def _trim(self, reach_ms: int) -> None:
        anchor = self.vad.candidate_ms if self.vad.candidate_ms is not None else self._next_frame // BYTES_PER_MS
        excess = (anchor - reach_ms) * BYTES_PER_MS - self.start
        if excess > 1000 * BYTES_PER_MS:  # trim a second or more at a time, not on every append
            del self.data[:excess]
            self.start += excess
