"""Utterances cut out of a 16 kHz stream, with their audio: :class:`UtteranceCutter`.

:class:`~magoo_core.end_of_speech.EndOfSpeech` says where speech starts and ends; this keeps the
audio around it, so that an utterance can be sent whole to a server that transcribes files. Pure,
synchronous CPU work: call it from one thread at a time.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from magoo_core.end_of_speech import FORMAT, EndOfSpeech

#: audio kept beyond ``pre_roll`` while idle: a start is reported a few frames after it began
_SLACK = 0.2


@dataclass(frozen=True, slots=True)
class Cut:
    """A boundary, in audio seconds since the cutter was made.

    :param kind: ``"start"``, ``"end"`` or ``"no_speech"`` (see :class:`~magoo_core.end_of_speech.Boundary`).
    :param at: where it is, in seconds of audio.
    :param audio: for an end, the utterance's PCM (16 kHz mono 16-bit): ``pre_roll`` before its
        start to ``tail`` after its end, as far as that audio was heard.
    :param reason: for an end, ``"silence"`` or ``"max_seconds"``.
    """

    kind: Literal["start", "end", "no_speech"]
    at: float
    audio: bytes = b""
    reason: str = ""


class UtteranceCutter:
    """Feeds audio to ``detector`` and keeps what an utterance needs: the last ``pre_roll``
    seconds while idle, everything from the utterance's start while it lasts.

    :param detector: a fresh (or reset) end-of-speech detector; its audio time is this cutter's.
    :param pre_roll: seconds kept before the detected start (a soft first syllable).
    :param tail: seconds kept after the detected end (a soft last one).
    """

    def __init__(self, detector: EndOfSpeech, *, pre_roll: float = 0.3, tail: float = 0.2) -> None:
        self.detector = detector
        self.pre_roll = pre_roll
        self.tail = tail
        self._buffer = bytearray()
        self._buffer_start = 0  # byte offset in the stream of _buffer[0]
        self._fed = 0  # bytes fed in all
        self._utterance: int | None = None  # byte offset where the open utterance's audio begins

    def feed(self, pcm: bytes) -> list[Cut]:
        """The cuts found in ``pcm`` (any length of 16 kHz mono 16-bit), in order. Blocking CPU work."""
        self._buffer += pcm
        self._fed += len(pcm)
        cuts = [self._cut(boundary) for boundary in self.detector.feed(pcm)]
        self._trim()
        return cuts

    def finish(self) -> list[Cut]:
        """The audio ended: an utterance still open ends here, with all that was heard of it."""
        cuts = [self._cut(boundary) for boundary in self.detector.finish()]
        self._trim()
        return cuts

    def _cut(self, boundary) -> Cut:
        if boundary.kind == "start":
            self._utterance = max(self._buffer_start, _offset(boundary.at - self.pre_roll))
            return Cut("start", boundary.at)
        if boundary.kind == "end":
            begin = self._utterance if self._utterance is not None else self._buffer_start
            end = min(self._fed, _offset(boundary.at + self.tail))
            audio = bytes(self._buffer[begin - self._buffer_start : max(begin, end) - self._buffer_start])
            self._utterance = None
            return Cut("end", boundary.at, audio, boundary.reason)
        return Cut(boundary.kind, boundary.at)

    def _trim(self) -> None:
        keep_from = self._utterance if self._utterance is not None else self._fed - _offset(self.pre_roll + _SLACK)
        drop = max(0, keep_from - self._buffer_start)
        if drop:
            del self._buffer[:drop]
            self._buffer_start += drop


def _offset(seconds: float) -> int:
    """Byte offset of ``seconds`` of audio, on a sample boundary (never before 0)."""
    return max(0, round(seconds * FORMAT.sample_rate)) * FORMAT.frame_bytes
