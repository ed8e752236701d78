"""Fake devices for the test profile: a whole turn with no hardware, network or keys.

They behave like the real thing where it matters to the engine: the scripted STT only "hears"
audio above a level (so a muted microphone really hears nothing), the tone TTS streams chunks
with a speech-like envelope (so actuators have something to follow), and each can be told to
fail on chosen turns, to exercise the engine's error paths.
"""

from __future__ import annotations

import asyncio
import dataclasses
import enum
import json
import logging
import math
import re
from collections import deque
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import Field

from magoo_core.audio import rms_level, tone
from magoo_core.errors import BackendError
from magoo_core.event_recorder import EventRecorder
from magoo_core.fields import Count, Hertz, Ratio, SampleRate, Seconds, StrictBool, Template
from magoo_core.output_files import WriteFailures, open_for_append
from magoo_core.plugins import hookimpl
from magoo_core.roles import Backend, BackendConfig, Role
from magoo_core.secrets import Secrets
from magoo_core.types import AudioChunk, AudioFormat, Reply, SpeechActivity, Transcript, TurnContext, WakeEvent

log = logging.getLogger("magoo.fakes")

FailOn = Field(default_factory=list, max_length=1000, description="1-based call numbers on which to raise a BackendError (to test error handling).")


class ScriptedWakeDetector(Backend):
    """Fires at scripted moments of the audio it hears, or whenever the level is high (a tone).

    Its score of a frame is ``score`` when it fires; otherwise, with a ``level``, the frame's
    level scaled so that ``level`` would score ``threshold`` (a tone at half the level scores
    half the threshold: a near miss); else 0.
    """

    name: ClassVar[str] = "scripted"
    input_format = AudioFormat(16000)
    frame_samples = 1280

    class Config(BackendConfig):
        at: list[Seconds(0, 604800)] = Field(default_factory=list, description="Fire when this many seconds of audio have been heard (audio fed while muted is not heard); each 0 to 604800.")
        level: Ratio(lo_open=True) | None = Field(None, description="Also fire on any frame whose RMS level (0..1) reaches this.")
        model: str = Field("hey_magoo", description="Model name reported in the wake event.")
        score: Ratio() = Field(0.9, description="Score reported in the wake event.")
        threshold: Ratio() = Field(0.5, description="Threshold reported in the wake event.")
        labels: list[str] = Field(
            default_factory=list, max_length=100,
            description="The label of each detection in turn, cycled (two wake words in one script); empty: the model's name.",
        )

    @classmethod
    def labels(cls, config: Config) -> list[str]:
        """Every label its wake events can carry (``magoo check`` matches ``by_wake`` tables against them)."""
        return list(config.labels) or [config.model]

    def __init__(self, config: Config) -> None:
        super().__init__(config)
        self._heard = 0.0
        self._pending = sorted(config.at)
        self._score: float | None = None  # of the last frame
        self.detections = 0

    @property
    def scores(self) -> Mapping[str, float]:
        """The score of the last frame processed (see the class docstring); empty before the first."""
        return {} if self._score is None else {self.config.model: self._score}

    @property
    def thresholds(self) -> Mapping[str, float]:
        return {self.config.model: self.config.threshold}

    def process(self, chunk: AudioChunk) -> WakeEvent | None:
        cfg = self.config
        self._heard += chunk.duration
        level = rms_level(chunk) if cfg.level is not None else 0.0
        due = bool(self._pending) and self._heard >= self._pending[0]
        if due:
            self._pending.pop(0)
        elif cfg.level is None or level < cfg.level:
            self._score = 0.0 if cfg.level is None else cfg.threshold * level / cfg.level
            return None
        self._score = cfg.score
        self.detections += 1
        label = cfg.labels[(self.detections - 1) % len(cfg.labels)] if cfg.labels else ""
        return WakeEvent(cfg.model, cfg.score, cfg.threshold, chunk.timestamp, label=label, scores={cfg.model: cfg.score})

    def reconfigure(self, config: Config) -> bool:
        """A reload's new config, taken in place (called where ``process()`` is, never during it):
        a new ``level``, ``score``, ``threshold``, ``model`` or ``labels`` applies from the next frame;
        a new script (``at``) is refused, so the engine starts a detector with it."""
        if config.at != self.config.at:
            return False
        self.config = config
        return True

    def reset(self) -> None:
        """Nothing to forget: the script's clock keeps running."""

    def stats(self) -> Mapping[str, float]:
        return {"detections": self.detections, "heard_seconds": round(self._heard, 3)}


class ScriptedSpeechToText(Backend):
    """Hears speech by its level and answers each utterance with the next scripted transcript."""

    name: ClassVar[str] = "scripted"
    input_format = AudioFormat(16000)

    class Config(BackendConfig):
        transcripts: list[str] = Field(default_factory=lambda: ["what time is it"], min_length=1, description="What the user 'said', one per utterance, cycled.")
        speech_level: Ratio(lo_open=True) = Field(0.02, description="RMS level (0..1) above which audio counts as speech.")
        end_silence: Seconds(0.01, 60) = Field(0.5, description="Seconds of quiet after speech that end an utterance.")
        partial_every: Seconds(0.01, 60) = Field(0.3, description="Seconds of speech between partial transcripts (one more word each).")
        replies: StrictBool = Field(False, description="Also reply by itself, like a conversational backend (OpenAI Realtime).")
        reply_template: Template("text") = Field("You said: {text}", description="The reply when `replies` is on; {text} is the transcript.")
        reply_as: Literal["text", "deltas", "audio"] = Field(
            "text", description="With `replies`: the reply as its whole text, as text deltas (word by word), or as sound (a tone)."
        )
        audio_fail: list[Count(1, 1_000_000)] = Field(
            default_factory=list, max_length=1000, description="Replies (1-based) whose audio breaks off after its first chunk."
        )
        fail: list[Count(1, 1_000_000)] = FailOn

    def __init__(self, config: Config) -> None:
        super().__init__(config)
        self.replies = config.replies
        self.utterances = 0

    async def transcribe(self, audio: AsyncIterator[AudioChunk]) -> AsyncIterator[Transcript | Reply | SpeechActivity]:
        speech = quiet = 0.0
        words_shown = 0
        async for chunk in audio:
            if rms_level(chunk) >= self.config.speech_level:
                if speech == 0.0:
                    yield SpeechActivity(True, chunk.timestamp)
                speech += chunk.duration
                quiet = 0.0
                words = self._next_text().split()
                due = min(len(words), 1 + int(speech / self.config.partial_every))
                if due > words_shown:
                    words_shown = due
                    yield Transcript(" ".join(words[:due]), final=False)
            elif speech > 0.0:
                quiet += chunk.duration
                if quiet >= self.config.end_silence:
                    yield SpeechActivity(False, chunk.timestamp)
                    for item in self._finish():
                        yield item
                    speech = quiet = 0.0
                    words_shown = 0
        if speech > 0.0:
            for item in self._finish():
                yield item

    def _next_text(self) -> str:
        transcripts = self.config.transcripts
        return transcripts[self.utterances % len(transcripts)]

    def _finish(self) -> list[Transcript | Reply]:
        text = self._next_text()
        self.utterances += 1
        if self.utterances in self.config.fail:
            raise BackendError(f"scripted failure on utterance {self.utterances}")
        items: list[Transcript | Reply] = [Transcript(text, final=True, confidence=1.0)]
        if self.replies:
            items.append(scripted_reply(
                self.config.reply_template.format(text=text), self.config.reply_as,
                broken=self.utterances in self.config.audio_fail,
            ))
        return items

    def stats(self) -> Mapping[str, float]:
        return {"utterances": self.utterances}


class EchoResponder(Backend):
    """Replies with what it heard, through a template; with ``stream``, word by word, as a
    language model writes (a streamed reply: an async iterator of text deltas)."""

    name: ClassVar[str] = "echo"

    class Config(BackendConfig):
        template: Template("text", "wake", "turn", "follow_up") = Field(
            "You said: {text}",
            description="The reply; {text} is the final transcript, {wake} the label of the wake word that "
            "started the turn (empty without one), {turn} the turn number, {follow_up} 'yes' or 'no'.",
        )
        stream: StrictBool = Field(False, description="Give the reply as a stream of text deltas, one word each.")
        token_seconds: Seconds(0, 10) = Field(
            0.0, description="With stream: seconds before each word (0.033 is a language model's ~30 tokens a second)."
        )
        audio: StrictBool = Field(False, description="Give the reply as sound (a tone as long as its text), with its text.")
        audio_fail: list[Count(1, 1_000_000)] = Field(
            default_factory=list, max_length=1000, description="With audio: replies (1-based) whose audio breaks off after its first chunk."
        )
        follow_up: StrictBool | None = Field(
            None, description="The reply's follow_up: true asks for the follow-up window, false closes it (with stream: "
            "a closing Reply(text=\"\") says so); none leaves it to the profile.",
        )
        fail: list[Count(1, 1_000_000)] = FailOn

    def __init__(self, config: Config) -> None:
        super().__init__(config)
        self.calls = 0
        #: the context of each call, in order (for tests)
        self.contexts: list[TurnContext | None] = []

    async def respond(self, transcript: Transcript, context: TurnContext | None = None) -> Reply | AsyncIterator[str] | None:
        self.calls += 1
        self.contexts.append(context)
        if self.calls in self.config.fail:
            raise BackendError(f"scripted failure on reply {self.calls}")
        wake = context.wake.label if context is not None and context.wake is not None else ""
        text = self.config.template.format(
            text=transcript.text,
            wake=wake,
            turn=str(context.turn) if context is not None else "",
            follow_up="yes" if context is not None and context.follow_up else "no",
        )
        if self.config.stream:
            return self._words(text)
        if self.config.audio:
            return Reply(text, audio=spoken_tone(text, broken=self.calls in self.config.audio_fail), follow_up=self.config.follow_up)
        return Reply(text, follow_up=self.config.follow_up)

    async def _words(self, text: str) -> AsyncIterator[str | Reply]:
        for word in words(text):
            await asyncio.sleep(self.config.token_seconds)
            yield word
        if self.config.follow_up is not None:
            yield Reply("", follow_up=self.config.follow_up)


def words(text: str) -> list[str]:
    """``text`` as a language model streams it: each word with the white space before it."""
    return re.findall(r"\s*\S+", text)


async def _deltas(text: str) -> AsyncIterator[str]:
    for word in words(text):
        await asyncio.sleep(0)
        yield word


#: seconds of a reply given as sound per character of its text, like the tone TTS's default
TONE_SECONDS_PER_CHAR = 0.03


async def spoken_tone(text: str, *, broken: bool = False, sample_rate: int = 16000, realtime: bool = False) -> AsyncIterator[AudioChunk]:
    """A reply as sound: a tone with a syllable-like envelope, as long as the tone TTS would say
    ``text`` (so actuators have levels to follow); ``broken``: raises a BackendError after the
    first chunk, as a connection lost in the middle of the audio; ``realtime``: no faster than
    it plays."""
    step = 0.05
    chunks = max(2, round(TONE_SECONDS_PER_CHAR * len(text) / step))
    samples = round(step * sample_rate)
    for index in range(chunks):
        if index == 1 and broken:
            raise BackendError("scripted failure in the middle of the audio reply")
        envelope = 0.15 + 0.6 * abs(math.sin(math.pi * 4 * index * step))
        yield tone(330.0, step, sample_rate, amplitude=envelope, phase_samples=index * samples)
        await asyncio.sleep(step if realtime else 0)


def scripted_reply(text: str, form: str, *, broken: bool = False, realtime: bool = False) -> Reply:
    """``text`` as a reply of the given form: ``text``, ``deltas`` (word by word) or ``audio`` (a tone)."""
    if form == "deltas":
        return Reply("", deltas=_deltas(text))
    if form == "audio":
        return Reply(text, audio=spoken_tone(text, broken=broken, realtime=realtime))
    return Reply(text)


class ToneSpeech(Backend):
    """Speaks any text as a tone with a syllable-like envelope, its length following the text."""

    name: ClassVar[str] = "tone"

    class Config(BackendConfig):
        sample_rate: SampleRate = Field(22050, description="Output sample rate in Hz.")
        frequency: Hertz() = Field(220.0, description="Tone frequency in Hz.")
        seconds_per_char: Seconds(0.001, 10) = Field(0.03, description="Length of speech per character of text.")
        max_seconds: Seconds(0.01, 600) = Field(3.0, description="Longest reply in seconds.")
        chunk_ms: Count(5, 1000) = Field(50, description="Length of each streamed chunk in milliseconds.")
        realtime: StrictBool = Field(False, description="Produce audio no faster than real time, like a streaming service.")
        fail: list[Count(1, 1_000_000)] = FailOn

    def __init__(self, config: Config) -> None:
        super().__init__(config)
        self.calls = 0

    @classmethod
    def output_kind(cls, config: Config) -> AudioFormat:
        """What every reply with ``config`` is, known before start: mono 16-bit PCM."""
        return AudioFormat(config.sample_rate)

    @property
    def output_format(self) -> AudioFormat:
        return self.output_kind(self.config)

    async def synthesize(self, text: str) -> AsyncIterator[AudioChunk]:
        self.calls += 1
        cfg = self.config
        seconds = min(cfg.max_seconds, max(cfg.seconds_per_char * len(text), cfg.chunk_ms / 1000))
        step = cfg.chunk_ms / 1000
        chunks = max(1, round(seconds / step))
        for index in range(chunks):
            if index == 1 and self.calls in cfg.fail:
                raise BackendError(f"scripted failure in the middle of reply {self.calls}")
            envelope = 0.15 + 0.6 * abs(math.sin(math.pi * 4 * index * step))  # ~4 syllables a second
            samples = round(step * cfg.sample_rate)
            yield tone(cfg.frequency, step, cfg.sample_rate, amplitude=envelope, phase_samples=index * samples)
            await asyncio.sleep(step if cfg.realtime else 0)


class ScriptedPipeline(ScriptedSpeechToText):
    """A service (``[services.NAME]``) that is speech-to-text, responder and text-to-speech over one
    pretend connection, like a Home Assistant pipeline: scripted transcripts, replies through a
    template (or, with ``replies``, by itself as text, deltas or audio), a tone for speech.

    ``down_file``: while that file exists the connection is down: the service cannot start and
    its replies fail, so a test can take the service away and give it back."""

    name: ClassVar[str] = "scripted-pipeline"
    roles: ClassVar[frozenset[Role]] = frozenset({Role.STT, Role.RESPONDER, Role.TTS})

    class Config(ScriptedSpeechToText.Config):
        respond_template: Template("text") = Field("The house heard: {text}", description="The responder's reply; {text} is the transcript.")
        down_file: Path | None = Field(None, description="While this file exists, the service cannot start and its replies fail (its connection is down).")
        respond_fail: list[Count(1, 1_000_000)] = Field(
            default_factory=list, max_length=1000, description="Replies (1-based, per instance) on which the responder raises a BackendError."
        )

    def __init__(self, config: Config) -> None:
        super().__init__(config)
        self.entered = self.exited = 0
        self.replies_made = 0
        self.speech = ToneSpeech(ToneSpeech.Config(sample_rate=16000, frequency=330.0))
        self.output_format = self.speech.output_format

    async def __aenter__(self):
        if self.config.down_file is not None and self.config.down_file.exists():
            raise BackendError("connection refused (the scripted pipeline is down)")
        self.entered += 1
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self.exited += 1

    async def respond(self, transcript: Transcript) -> Reply:
        self.replies_made += 1
        if self.config.down_file is not None and self.config.down_file.exists():
            raise BackendError("connection lost (the scripted pipeline is down)")
        if self.replies_made in self.config.respond_fail:
            raise BackendError(f"scripted failure on reply {self.replies_made}")
        return Reply(self.config.respond_template.format(text=transcript.text))

    def synthesize(self, text: str) -> AsyncIterator[AudioChunk]:
        return self.speech.synthesize(text)

    def stats(self) -> Mapping[str, float]:
        return {"utterances": self.utterances, "replies": self.replies_made}


#: events the log actuator keeps in memory (for tests); a run of weeks must not keep them all
KEPT_EVENTS = 10_000


class EventLogActuator(Backend, EventRecorder):
    """Writes every event it receives to a JSON-lines file (and the debug log): proof of what happened.

    Each line is masked with the profile's secrets (known from the startup event) before it is written.
    """

    name: ClassVar[str] = "log"

    class Config(BackendConfig):
        path: Path | None = Field(None, description="JSON-lines file to append events to; none = log only.")
        events: list[str] | None = Field(None, description="Only these events (e.g. ['wake', 'reply']); none = all.")

    def __init__(self, config: Config) -> None:
        Backend.__init__(self, config)
        EventRecorder.__init__(self)
        self.events = deque(maxlen=KEPT_EVENTS)  # the file is the record; memory keeps the latest only
        self._file = None
        self._secrets = Secrets()
        self._write_failures = WriteFailures("the event log", log)

    async def __aenter__(self):
        if self.config.path is not None:
            # a regular file only (never a device, fifo or link); 0o600: it holds what people said
            self._file = open_for_append(self.config.path, mode=0o600)
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    def _add(self, event: str, **arguments: Any) -> None:
        if event == "startup":  # the secrets are learnt even when startup is not one of the events kept
            profile = arguments["profile"]
            self._secrets = getattr(profile, "secrets", self._secrets)
        if self.config.events is not None and event not in self.config.events:
            return
        super()._add(event, **arguments)
        if event == "startup":
            arguments = {"profile": arguments["profile"].name}
        record = self._secrets.mask(json.dumps({"event": event, **{k: _jsonable(v) for k, v in arguments.items()}}))
        if event != "speak_chunk":
            log.debug("event %s", record)
        if self._file is not None:
            try:
                self._file.write(record + "\n")
                self._file.flush()
            except OSError as exc:  # a full disk: said once, then reminded of now and then
                self._write_failures.failed(self.config.path, exc)
            else:
                self._write_failures.succeeded(self.config.path)


def _jsonable(value: Any) -> Any:
    if hasattr(value, "__aiter__"):  # a reply's audio or deltas: not kept, only noted
        return "<stream>"
    if isinstance(value, enum.Enum):
        return value.value
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value


@hookimpl
def magoo_register_wake_detectors(register):
    register(ScriptedWakeDetector)


@hookimpl
def magoo_register_stt(register):
    register(ScriptedSpeechToText)


@hookimpl
def magoo_register_responders(register):
    register(EchoResponder)


@hookimpl
def magoo_register_tts(register):
    register(ToneSpeech)


@hookimpl
def magoo_register_actuators(register):
    register(EventLogActuator)


@hookimpl
def magoo_register_services(register):
    register(ScriptedPipeline)
