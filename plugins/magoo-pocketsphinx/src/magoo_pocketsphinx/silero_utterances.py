"""Utterances of one stream cut by Silero VAD (:mod:`magoo_core.end_of_speech`) and decoded by pocketsphinx.

Each 32 ms frame goes to the decoder's buffer first, then to the detector, so that when the
detector asks whether the words look unfinished (at ``end_silence``) the decoder has heard
everything before that frame. The words are judged on every frame of the pause, and the pause
counts as finished when they looked finished on any of them: pocketsphinx's partial result
wavers for a few hundred ms after the last word (in grammar mode "what time is it" reads "what
time" 0.06-0.3 s after its end, then "what time is it" again). For the same reason, when the
final result looks unfinished but the words looked finished on a frame of the last pause, those
words are the result. Runs on the decoder's thread only.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from magoo_core.end_of_speech import FRAME_BYTES, FRAME_SECONDS, EndOfSpeech, EndOfSpeechSettings

from .events import Event, end_open_utterance, final_words, whole_frames, words_so_far

SAMPLE_BYTES = 2
RATE = 16000
#: seconds of quiet decoded after the end, before the final result: with only a short end_silence
#: after the last word, pocketsphinx's search has not settled yet ("what time is it" ends as "what
#: time" 0.3 s after it). Quiet is what follows an end anyway; decoding it costs a few ms.
SETTLE = 0.4


class SileroUtterances:
    """Voice activity by Silero and decoding of one audio stream, on the decoder's thread.

    Idle, it keeps ``pre_speech`` seconds of audio (more: the detector reports a start a few frames
    late); at a start the decoder gets the audio from ``pre_speech`` before it on. The detector ends
    the utterance (``end_silence``, or ``unfinished_silence`` while ``unfinished(words so far)``).

    :param dither: a function adding the configured faint noise to a frame (the decoder's audio only).
    :param held: called (on this thread) each time a pause waits ``unfinished_silence``.
    """

    def __init__(
        self,
        decoder: Any,
        vad: Any,
        config: Any,
        start_mean: str | None,
        *,
        unfinished: Callable[[str], bool],
        dither: Callable[[bytes], bytes],
        pre_speech: float,
        held: Callable[[], None] = lambda: None,
    ) -> None:
        self.decoder, self.config, self.start_mean = decoder, config, start_mean
        self.heard = 0.0
        self.finals = 0
        settings = EndOfSpeechSettings(
            end_silence=config.end_silence,
            max_seconds=config.max_seconds,
            unfinished_silence=config.unfinished_silence,
        )
        self._test = unfinished
        self._held = held
        self._detector = EndOfSpeech(settings, vad=vad, unfinished=self._words_unfinished)
        self._dither = dither
        self._pre_speech = pre_speech
        self._keep = _bytes(pre_speech + 0.2)
        self._pending = b""
        self._kept = bytearray()  # idle: the latest audio, dithered
        self._decode = bytearray()  # in an utterance: audio not yet given to the decoder
        self._in_utterance = False
        self._length = 0.0
        self._next_partial = 0.0
        self._partial = ""
        self._pause_finished = False  # the words looked finished on a frame of this pause
        self._finished_words = ""  # ... and what they were then

    def reset(self) -> None:
        """End an utterance a previous, abandoned stream left open."""
        end_open_utterance(self.decoder)

    def feed(self, pcm: bytes) -> list[Event]:
        events: list[Event] = []
        frames, self._pending = whole_frames(self._pending, pcm, FRAME_BYTES)
        for raw in frames:
            self.heard += FRAME_SECONDS
            if self._in_utterance:
                self._decode += self._dither(raw)
                self._length += FRAME_SECONDS
            else:
                self._kept += self._dither(raw)
                del self._kept[: max(0, len(self._kept) - self._keep)]
            for boundary in self._detector.feed(raw):  # the detector scores the raw audio
                if boundary.kind == "start":
                    self._begin(events, boundary.at)
                elif boundary.kind == "end":
                    events.append(Event("end", boundary.at, held=boundary.held))
                    self._end(events)
            if self._in_utterance:
                self._follow_pause()
            if self._in_utterance and self._length >= self._next_partial:
                self._partial_event(events)
        self._process()
        return events

    def finish(self) -> list[Event]:
        """The audio ended: close an utterance in progress."""
        events: list[Event] = []
        if self._in_utterance:
            self._detector.finish()
            events.append(Event("end", self.heard))
            self._end(events)
        return events

    def _follow_pause(self) -> None:
        """After each frame of an utterance: in a pause, note whether the words look finished now."""
        if self._detector.probability >= self._detector.settings.release:
            self._pause_finished, self._finished_words = False, ""
        elif not self._pause_finished and self._detector.settings.unfinished_silence is not None:
            words = self._words()
            self._pause_finished = not self._test(words)
            if self._pause_finished:
                self._finished_words = words

    def _words(self) -> str:
        self._process()
        return words_so_far(self.decoder)

    def _words_unfinished(self) -> bool:
        unfinished = not self._pause_finished and self._test(self._words())
        if unfinished:
            self._held()
        return unfinished

    def _begin(self, events: list[Event], at: float) -> None:
        kept_from = self.heard - len(self._kept) / (RATE * SAMPLE_BYTES)
        first = max(0, _bytes(at - self._pre_speech - kept_from))
        audio = self._kept[first:]
        self._kept = bytearray()
        self._in_utterance = True
        self._length = len(audio) / (RATE * SAMPLE_BYTES)
        self._partial = ""
        self._next_partial = self._length + self.config.partial_every
        events.append(Event("start", at))
        if self.start_mean is not None:
            self.decoder.set_cmn(self.start_mean)
        self.decoder.start_utt()
        self._decode += audio

    def _partial_event(self, events: list[Event]) -> None:
        self._process()
        self._next_partial += self.config.partial_every
        text = words_so_far(self.decoder)
        if text and text != self._partial:
            self._partial = text
            events.append(Event("partial", self.heard, text))

    def _process(self) -> None:
        if self._decode:
            self.decoder.process_raw(bytes(self._decode), False, False)
            self._decode.clear()

    def _end(self, events: list[Event]) -> None:
        self._decode += self._dither(bytes(_bytes(SETTLE)))
        self._process()
        self.decoder.end_utt()
        text, confidence = final_words(self.decoder)
        if self._finished_words and self._test(text):  # the search wavered after the pause began
            text, confidence = self._finished_words, None
        events.append(Event("final", self.heard, text, confidence))
        self.finals += 1
        self._in_utterance = False
        self._pause_finished, self._finished_words = False, ""


def _bytes(seconds: float) -> int:
    """Bytes of 16 kHz 16-bit mono audio in ``seconds``, on a sample boundary."""
    return round(seconds * RATE) * SAMPLE_BYTES
