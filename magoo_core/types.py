"""The data that travels between backends, the engine and plugins.

Everything here is a frozen value (safe to hand to any thread, safe to keep), except
:class:`TurnTimeline`, which the engine fills in while its turn runs; hooks get a copy taken when
the turn ended, which nothing changes afterwards.
Times are ``time.monotonic()`` seconds unless a name says otherwise.
"""

from __future__ import annotations

import enum
from collections.abc import AsyncIterable, Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Any


@dataclass(frozen=True, slots=True)
class AudioFormat:
    """Layout of raw PCM: signed little-endian integers, channels interleaved.

    :param sample_rate: frames per second (Hz).
    :param channels: interleaved channels per frame.
    :param sample_width: bytes per sample (2 = int16, the only width most backends use).
    """

    sample_rate: int
    channels: int = 1
    sample_width: int = 2

    @property
    def frame_bytes(self) -> int:
        """Bytes of one frame (one sample of every channel)."""
        return self.channels * self.sample_width

    def duration(self, nbytes: int) -> float:
        """Seconds of audio held by ``nbytes`` of PCM in this format."""
        return nbytes / (self.frame_bytes * self.sample_rate)

    def __str__(self) -> str:
        return f"{self.sample_rate} Hz, {self.channels} ch, {8 * self.sample_width}-bit"


@dataclass(frozen=True, slots=True)
class AudioChunk:
    """A piece of PCM audio that always carries its format.

    :param pcm: interleaved little-endian signed samples.
    :param sample_rate: Hz.
    :param channels: interleaved channels.
    :param sample_width: bytes per sample.
    :param timestamp: monotonic time at which the *last* frame of the chunk was captured
        (or produced, for synthesized audio); 0.0 when unknown.
    """

    pcm: bytes
    sample_rate: int
    channels: int = 1
    sample_width: int = 2
    timestamp: float = 0.0

    @property
    def format(self) -> AudioFormat:
        return AudioFormat(self.sample_rate, self.channels, self.sample_width)

    @property
    def frames(self) -> int:
        """Frames (samples per channel) in the chunk."""
        return len(self.pcm) // (self.channels * self.sample_width)

    @property
    def duration(self) -> float:
        """Seconds of audio in the chunk."""
        return self.frames / self.sample_rate


@dataclass(frozen=True, slots=True)
class EncodedAudio:
    """Compressed or containerised audio (what a cloud TTS returns) that a player decodes.

    :param data: the bytes as received; a stream of these concatenated is one file.
    :param codec: ``"mp3"``, ``"wav"``, ``"opus"``, ``"ogg"`` ...
    :param sample_rate: Hz when known, else None.
    """

    data: bytes
    codec: str
    sample_rate: int | None = None


def _frozen(mapping: Mapping[str, float] | None) -> Mapping[str, float]:
    return MappingProxyType(dict(mapping or {}))


@dataclass(frozen=True, slots=True)
class WakeEvent:
    """A wake word was detected.

    :param model: the detector's model key (``"hey_jarvis"``).
    :param label: what the profile calls it (defaults to the model key).
    :param score: the score that crossed the threshold, 0..1.
    :param threshold: the threshold it crossed.
    :param timestamp: monotonic capture time of the frame that fired.
    :param scores: every model's score in that frame.
    """

    model: str
    score: float
    threshold: float
    timestamp: float
    label: str = ""
    scores: Mapping[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "scores", _frozen(self.scores))
        if not self.label:
            object.__setattr__(self, "label", self.model)


@dataclass(frozen=True, slots=True)
class SpeechActivity:
    """The speech-to-text backend's voice activity detector saw speech begin or end.

    :param started: True when speech began, False when it ended.
    :param timestamp: monotonic time of the boundary (audio time where known).
    """

    started: bool
    timestamp: float


@dataclass(frozen=True, slots=True)
class Transcript:
    """What the user said.

    :param text: the words; for a partial transcript, everything heard so far in this utterance.
    :param final: True once the utterance is complete and will not change.
    :param confidence: 0..1 when the backend reports one.
    """

    text: str
    final: bool = True
    confidence: float | None = None


@dataclass(frozen=True, slots=True)
class TurnContext:
    """What a responder may know about the turn it answers, besides the transcript.

    Given to :meth:`~magoo_core.roles.Responder.respond` as ``context=`` when its ``respond``
    takes a ``context`` parameter (existing responders are called as before).

    :param turn: the turn number (1 for the first turn of a run).
    :param wake: the wake word that started this turn (its ``model`` and ``label``); None when no
        wake word did: a follow-up turn or a turn of continuous mode.
    :param follow_up: the turn was taken without a wake word, in the follow-up window after a reply.
    :param tools: every tool the plugins offer this run (a :class:`magoo_core.tools.Toolbox`,
        by name); a responder that calls tools narrows it to those its profile section turns on.
    """

    turn: int
    wake: WakeEvent | None = None
    follow_up: bool = False
    tools: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Reply:
    """What the assistant answers.

    :param text: the reply text (for a partial reply: the text so far).
    :param final: True when complete; only final replies are spoken.
    :param follow_up: after this reply, listen without the wake word: True opens the follow-up
        window (``[engine] follow_up`` seconds, or 5 s when that is 0: the reply asked a question),
        False keeps it closed (a goodbye), None leaves it to the profile.
    :param audio: the reply as sound, played as is through the speaker (muting, levels, barge-in)
        instead of the TTS; ``text`` then says what it says, or is empty. For a backend whose
        service speaks its own replies (Home Assistant's pipeline, OpenAI Realtime in audio).
    :param deltas: the reply as it is being written (text pieces), spoken from its first complete
        sentence on like a streamed responder's; ``text`` is then empty. Lets a speech-to-text
        backend that replies by itself stream its reply too.
    """

    text: str
    final: bool = True
    follow_up: bool | None = None
    audio: AsyncIterable[AudioChunk | EncodedAudio] | None = None
    deltas: AsyncIterable[str] | None = None


class State(enum.StrEnum):
    """The engine's state machine: listening → awake → thinking → speaking → listening."""

    LISTENING = "listening"
    AWAKE = "awake"
    THINKING = "thinking"
    SPEAKING = "speaking"


class Outcome(enum.StrEnum):
    """How a turn ended."""

    OK = "ok"
    NO_SPEECH = "no_speech"
    NO_REPLY = "no_reply"
    ERROR = "error"
    CANCELLED = "cancelled"
    INTERRUPTED = "interrupted"


@dataclass(slots=True)
class TurnTimeline:
    """One turn: when each of its steps happened (monotonic seconds; None = did not happen).

    The engine's turn is this object, filled in on the event loop as the turn goes;
    ``magoo_on_turn_end`` gets a copy made with ``ended`` set (:meth:`ended_at`).

    :param turn: 1-based turn number within this run.
    :param started: when the turn began (the wake, or the start of speech in continuous mode).
    :param wake: capture time of the frame that woke the engine.
    :param speech_end: when the user stopped speaking (STT's VAD or the final transcript).
    :param transcript: when the final transcript arrived.
    :param reply: when the reply text was ready.
    :param first_audio: when the player reported the first sound.
    :param ended: when the turn was over (sound ended, or the turn was dropped).
    :param outcome: how it ended.
    :param error: a one-line reason when the outcome is not OK.
    :param detected: when the engine had the wake detection in hand; ``detected - wake`` is the
        detection latency (scoring plus any backlog in front of the detector).
    :param follow_up: the turn was taken without a wake word, in the follow-up window after a reply.
    :param character: the label of the wake word whose ``by_wake`` settings answer the turn (its
        responder and voice): the wake word that started it, or for a follow-up the one of the turn it
        follows; None: the sections' own (continuous mode). Set when the turn is answered.
    """

    turn: int
    started: float
    wake: float | None = None
    speech_end: float | None = None
    transcript: float | None = None
    reply: float | None = None
    first_audio: float | None = None
    ended: float | None = None
    outcome: Outcome = Outcome.OK
    error: str | None = None
    detected: float | None = None
    follow_up: bool = False
    character: str | None = None

    def fail(self, outcome: Outcome, reason: str | None) -> None:
        """The turn did not go as planned; the first failure is the one kept."""
        if self.outcome is Outcome.OK:
            self.outcome, self.error = outcome, reason

    def ended_at(self, ended: float) -> TurnTimeline:
        """A copy of the turn as it ended at ``ended``, for history and hooks."""
        return replace(self, ended=ended)

    def latencies(self) -> dict[str, float]:
        """Milliseconds between the steps that happened, in the order they happened, for logs and
        dashboards; never negative (a step timed from the audio, like ``speech_end``, can come
        before the detection of a wake word that was scored late: it is then named first)."""
        steps = [
            ("wake", self.wake),
            ("detected", self.detected),
            ("speech_end", self.speech_end),
            ("transcript", self.transcript),
            ("reply", self.reply),
            ("first_audio", self.first_audio),
            ("ended", self.ended),
        ]
        happened = [(name, when) for name, when in steps if when is not None and not (name == "wake" and when == self.started)]
        out: dict[str, float] = {}
        previous_name, previous = "started", self.started
        for name, when in sorted(happened, key=lambda step: step[1]):  # stable: ties keep their order
            out[f"{previous_name}->{name}"] = round(max(0.0, when - previous) * 1000, 1)
            previous_name, previous = name, max(previous, when)
        if self.speech_end is not None and self.first_audio is not None and self.first_audio >= self.speech_end:
            out["speech_end->first_audio"] = round((self.first_audio - self.speech_end) * 1000, 1)
        return out

    def summary(self) -> str:
        """One line for logs: ``"ok — speech_end->transcript 2 ms, ..."`` with the reason if it failed."""
        reason = f" ({self.error})" if self.error else ""
        steps = ", ".join(f"{name} {ms:.0f} ms" for name, ms in self.latencies().items())
        return f"{self.outcome.value}{reason}" + (f" — {steps}" if steps else "")


@dataclass(frozen=True, slots=True)
class BackendFailure:
    """A backend failed; passed to ``magoo_on_error``.

    :param role: the role of the failing backend (``"stt"``), or ``"plugin"`` for a hook.
    :param backend: the backend's short name, or the plugin name for a hook failure.
    :param message: one readable line that says what went wrong and what to do.
    :param retryable: False when retrying cannot help (bad key, missing library).
    :param turn: the turn that was dropped because of it, if any.
    """

    role: str
    backend: str
    message: str
    retryable: bool = True
    turn: int | None = None


@dataclass(frozen=True, slots=True)
class Timer:
    """A timer as hooks, the status and the store see it: a snapshot taken when it was handed out.

    :param id: its identity, the same across restarts (12 hex digits).
    :param name: what it is called and said as ("pasta"; "5 minute" when set without a name).
    :param total_seconds: the duration it was set for.
    :param ends_at: when it ends, wall-clock Unix seconds (``time.time()``), as of the snapshot.
    """

    id: str
    name: str
    total_seconds: float
    ends_at: float

    def seconds_left(self, now: float) -> float:
        """Seconds until it ends from ``now`` (wall-clock Unix seconds); 0 once it ended."""
        return max(0.0, self.ends_at - now)


@dataclass(frozen=True, slots=True)
class EngineStatus:
    """A snapshot for the heartbeat and status displays.

    :param state: current state.
    :param uptime: seconds since the engine started.
    :param turns: turns finished.
    :param errors: backend failures seen.
    :param counters: engine counters (``frames``, ``overflows``, ``restarts`` ...).
    :param backends: each running backend's own ``stats()``, keyed ``"role:name"`` (a backend
        used again, like a second servo, is ``"role:name#2"``; a ``by_wake`` table's, ``"role:name@label"``).
    :param health: each backend's health, keyed like ``backends``: ``"ok"``, ``"failing"`` (its
        last call failed), ``"restarting"``, ``"stopped"`` or, for a service that is entered but
        not available (a satellite Home Assistant has not connected to), ``"waiting"``.
    :param input_level: RMS level of the last second of microphone audio, 0..1 of full scale.
    :param last_wake: the most recent wake word detection, or None.
    :param wakes: detections per wake word label since the start.
    :param timers: the timers running, soonest first (:mod:`magoo_core.timers`).
    """

    state: State
    uptime: float
    turns: int
    errors: int
    counters: Mapping[str, float] = field(default_factory=dict)
    backends: Mapping[str, Mapping[str, float]] = field(default_factory=dict)
    health: Mapping[str, str] = field(default_factory=dict)
    input_level: float = 0.0
    last_wake: WakeEvent | None = None
    wakes: Mapping[str, int] = field(default_factory=dict)
    timers: tuple[Timer, ...] = ()


@dataclass(frozen=True, slots=True)
class DeviceInfo:
    """A sound device as a driver (PortAudio, ...) lists it; what ``magoo devices`` prints.

    :param index: the driver's index; it can change when devices are plugged in or out, so
        profiles should name devices by a part of ``name``.
    :param name: the driver's name for the device (``"USB PnP Sound Device: Audio (hw:1,0)"``).
    :param host_api: the driver layer (``"ALSA"``, ``"JACK"`` ...).
    :param max_input_channels: 0 for an output-only device.
    :param max_output_channels: 0 for an input-only device.
    :param default_sample_rate: Hz, the driver's default.
    :param default_input: the system's default input device.
    :param default_output: the system's default output device.
    :param input_rates: rates (Hz) at which mono 16-bit input opens, when probed; else empty.
    :param output_rates: rates (Hz) at which 16-bit output opens, when probed; else empty.
    """

    index: int
    name: str
    host_api: str
    max_input_channels: int
    max_output_channels: int
    default_sample_rate: float
    default_input: bool = False
    default_output: bool = False
    input_rates: tuple[int, ...] = ()
    output_rates: tuple[int, ...] = ()

    @staticmethod
    def khz(rates: tuple[int, ...]) -> str:
        """Rates as people read them: ``(16000, 44100)`` → ``"16 44.1"``."""
        return " ".join(f"{rate / 1000:g}" for rate in rates)

    def describe(self) -> str:
        """One line for messages: ``[1] default (ALSA, 32 in, 44100 Hz, default input)``."""
        parts = [self.host_api, f"{self.max_input_channels} in", f"{self.default_sample_rate:.0f} Hz"]
        if self.default_input:
            parts.append("default input")
        return f"[{self.index}] {self.name} ({', '.join(parts)})"
