"""What the decoding of one stream reports, in audio time: :class:`Event`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True, slots=True)
class Event:
    """A start or end of speech, or a partial or final transcript.

    :param at: seconds of audio from the start of the stream.
    :param held: for an end, True when end of speech waited ``unfinished_silence`` (the words looked unfinished).
    """

    kind: Literal["start", "end", "partial", "final"]
    at: float
    text: str = ""
    confidence: float | None = None
    held: bool = False
