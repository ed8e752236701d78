"""What the decoding of one stream reports, in audio time (:class:`Event`), and the decoder steps both
ways of cutting utterances (pocketsphinx's detector, Silero) share."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal


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


def end_open_utterance(decoder: Any) -> None:
    """End an utterance a previous, abandoned stream left open in ``decoder`` (none: nothing to do)."""
    try:
        decoder.end_utt()
    except RuntimeError:
        pass  # no utterance was open: the normal case


def whole_frames(pending: bytes, pcm: bytes, frame_bytes: int) -> tuple[list[bytes], bytes]:
    """``pending + pcm`` cut into frames of ``frame_bytes``: the whole frames, and what is left over."""
    data = pending + pcm
    whole = len(data) - len(data) % frame_bytes
    return [data[offset : offset + frame_bytes] for offset in range(0, whole, frame_bytes)], data[whole:]


def words_so_far(decoder: Any) -> str:
    """The decoder's hypothesis of the utterance so far ("" before it has one)."""
    hyp = decoder.hyp()
    return hyp.hypstr if hyp is not None else ""


def final_words(decoder: Any) -> tuple[str, float | None]:
    """The ended utterance's words and their confidence (0..1; None without words)."""
    hyp = decoder.hyp()
    text = hyp.hypstr if hyp is not None else ""
    return text, min(max(float(hyp.prob), 0.0), 1.0) if hyp is not None and text else None


class WakeTail:
    """Drops the final of an utterance that is the wake word's own tail: it began in the first
    ``preroll`` seconds of the stream (captured up to the wake word's frame) and matched nothing.

    A turn's stream starts with a pre-roll, so that a command said without a pause is heard whole;
    the end of "hey jarvis" is in it too. Decoded alone it matches no command, and taken as the
    final it would end the turn before the user spoke. Used on the event loop, one per stream.

    :param skipped: called each time a final is dropped.
    """

    def __init__(self, preroll: float, skipped: Callable[[], None] = lambda: None) -> None:
        self.preroll = preroll
        self._skipped = skipped
        self._started_at: float | None = None

    def drop(self, events: list[Event]) -> list[Event]:
        """``events`` without the final of a wake-word tail (its start and end of speech stay: they were heard)."""
        kept: list[Event] = []
        for event in events:
            if event.kind == "start":
                self._started_at = event.at
            elif event.kind == "final" and not event.text and self._started_at is not None and self._started_at < self.preroll:
                self._skipped()
                continue
            kept.append(event)
        return kept
