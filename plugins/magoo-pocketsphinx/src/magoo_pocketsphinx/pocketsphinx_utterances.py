"""Utterances of one stream cut by pocketsphinx's own voice activity detector (``vad = "pocketsphinx"``).

30 ms frames; ``START_FRAMES`` speech frames in a row start an utterance, ``end_silence`` of
non-speech frames or ``max_seconds`` end it. Runs on the decoder's thread only.
"""

from __future__ import annotations

from collections import deque
from typing import Any

from .dither import Dither
from .events import Event, end_open_utterance, final_words, whole_frames, words_so_far

SAMPLE_RATE = 16000
FRAME_SECONDS = 0.03  # pocketsphinx's VAD classifies 30 ms frames
FRAME_BYTES = round(SAMPLE_RATE * FRAME_SECONDS) * 2
START_FRAMES = 3  # consecutive speech frames (90 ms) that start an utterance: a click does not
PRE_SPEECH = 0.3  # seconds of audio before the detected start that are decoded too (soft onsets)


class PocketsphinxUtterances:
    """Voice activity by pocketsphinx's detector and decoding of one audio stream, on the decoder's thread.

    Idle, it keeps ``PRE_SPEECH`` of audio; ``START_FRAMES`` speech frames in a row start an
    utterance (decoded from the kept audio on), ``end_silence`` of non-speech frames or
    ``max_seconds`` end it.
    """

    def __init__(self, decoder: Any, vad: Any, config: Any, start_mean: str | None) -> None:
        self.decoder, self.vad, self.config = decoder, vad, config
        self.start_mean = start_mean
        self.heard = 0.0
        self.finals = 0
        self._pending = b""
        self._kept: deque[bytes] = deque(maxlen=round(PRE_SPEECH / FRAME_SECONDS))
        self._run = 0  # speech frames in a row while idle
        self._quiet = 0  # non-speech frames in a row in an utterance
        self._in_utterance = False
        self._length = 0.0
        self._next_partial = 0.0
        self._partial = ""
        self._dithered = Dither(config.dither)

    def reset(self) -> None:
        """End an utterance a previous, abandoned stream left open."""
        end_open_utterance(self.decoder)

    def feed(self, pcm: bytes) -> list[Event]:
        events: list[Event] = []
        frames, self._pending = whole_frames(self._pending, pcm, FRAME_BYTES)
        decode = bytearray()
        for raw in frames:
            speech = self.vad.is_speech(raw)  # on the audio as captured: the dither is for the decoder
            frame = self._dithered(raw)
            self.heard += FRAME_SECONDS
            if not self._in_utterance:
                self._kept.append(frame)
                self._run = self._run + 1 if speech else 0
                if self._run >= START_FRAMES:
                    self._begin(events, decode)
                continue
            decode += frame
            self._length += FRAME_SECONDS
            self._quiet = 0 if speech else self._quiet + 1
            if self._quiet * FRAME_SECONDS >= self.config.end_silence - 1e-9:
                events.append(Event("end", self.heard - self._quiet * FRAME_SECONDS))
                self._end(events, decode)
            elif self._length >= self.config.max_seconds - 1e-9:
                events.append(Event("end", self.heard))
                self._end(events, decode)
            elif self._length >= self._next_partial:
                self._process(decode)
                self._next_partial += self.config.partial_every
                text = words_so_far(self.decoder)
                if text and text != self._partial:
                    self._partial = text
                    events.append(Event("partial", self.heard, text))
        self._process(decode)
        return events

    def finish(self) -> list[Event]:
        """The audio ended: close an utterance in progress."""
        events: list[Event] = []
        if self._in_utterance:
            events.append(Event("end", self.heard))
            self._end(events, bytearray())
        return events

    def _begin(self, events: list[Event], decode: bytearray) -> None:
        self._in_utterance = True
        self._length = len(self._kept) * FRAME_SECONDS
        self._quiet = 0
        self._partial = ""
        self._next_partial = self._length + self.config.partial_every
        events.append(Event("start", self.heard - START_FRAMES * FRAME_SECONDS))
        if self.start_mean is not None:
            self.decoder.set_cmn(self.start_mean)
        self.decoder.start_utt()
        decode += b"".join(self._kept)
        self._kept.clear()

    def _process(self, decode: bytearray) -> None:
        if decode:
            self.decoder.process_raw(bytes(decode), False, False)
            decode.clear()

    def _end(self, events: list[Event], decode: bytearray) -> None:
        self._process(decode)
        self.decoder.end_utt()
        text, confidence = final_words(self.decoder)
        events.append(Event("final", self.heard, text, confidence))
        self.finals += 1
        self._in_utterance = False
        self._run = 0
