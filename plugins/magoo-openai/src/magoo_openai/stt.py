"""``[stt] openai``: transcription by ``/v1/audio/transcriptions``, utterances cut on the device.

The endpoint transcribes a whole file, so the utterance is cut here, by
:mod:`magoo_core.end_of_speech` (Silero VAD): speech start and end are told to the engine as
:class:`SpeechActivity` as they happen, then the utterance goes up as a WAV file and its transcript
comes back, in pieces as it is written when the server streams (``stream=true``: gpt-4o-transcribe,
gpt-4o-mini-transcribe). Works with OpenAI and with OpenAI-compatible servers (speaches,
faster-whisper-server, LocalAI, Groq) through ``base_url``.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import io
import time
import wave
from collections.abc import AsyncIterator, Mapping
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import Field, field_validator

from magoo_core import AudioChunk, Backend, BackendError
from magoo_core.end_of_speech import FORMAT, EndOfSpeech, EndOfSpeechSettings, load_vad
from magoo_core.fields import Ratio, Seconds, StrictBool
from magoo_core.types import SpeechActivity, Transcript

from .client import EndpointConfig, Failures, bounded, call, open_client
from .utterances import Cut, UtteranceCutter

if TYPE_CHECKING:
    from magoo_core.doctor import Check

SECTION = "[stt] openai"
#: models that stream their transcript (``stream=true``) on OpenAI's API; others answer whole
STREAMING_MODELS = ("gpt-4o-transcribe", "gpt-4o-mini-transcribe")


class OpenAISpeechToText(Backend):
    """Cuts each utterance with a voice activity detector and transcribes it with an
    OpenAI-compatible ``/v1/audio/transcriptions`` endpoint."""

    name: ClassVar[str] = "openai"
    input_format = FORMAT
    replies = False

    class Config(EndpointConfig):
        model: str = Field(
            "gpt-4o-mini-transcribe",
            min_length=1,
            description=(
                "Transcription model: gpt-4o-mini-transcribe, gpt-4o-transcribe, whisper-1, or a local server's"
                " (speaches: Systran/faster-whisper-small ...)."
            ),
        )
        language: str = Field(
            "", description='Language of the speech (ISO-639-1: "en", "de"); "" lets the model detect it (slower, less accurate).'
        )
        prompt: str = Field("", description="Words or context that help the transcription (names, the assistant's vocabulary).")
        stream: StrictBool | None = Field(
            None,
            description=(
                "Ask for the transcript as it is written (partial transcripts); unset: on for gpt-4o-transcribe and"
                " gpt-4o-mini-transcribe, off otherwise (whisper-1 and most local servers answer whole)."
            ),
        )
        end_silence: Seconds(0.1, 5) = Field(
            0.5, description="Seconds of silence that end an utterance; 0.5 keeps pauses of about a third of a second inside a command, 0.6 about 0.45 s."
        )
        max_seconds: Seconds(1, 600) = Field(15.0, description="Longest utterance in seconds; it is sent when it reaches this.")
        no_speech: Seconds(0.5, 300) = Field(
            8.0, description="After a wake word: seconds without speech before the turn ends with nothing heard."
        )
        vad_threshold: Ratio() = Field(
            0.5, description="Speech probability (Silero VAD, 0..1) from which a frame counts as speech; higher ignores more noise."
        )
        pre_roll: Seconds(0, 2) = Field(0.3, description="Seconds of audio sent from before the detected start of speech.")

        @field_validator("language")
        @classmethod
        def _iso_639_1(cls, value: str) -> str:
            if value and not (len(value) == 2 and value.isalpha() and value.islower()):
                raise ValueError('must be a two-letter ISO-639-1 code such as "en", or "" to detect it')
            return value

    @classmethod
    def doctor(cls, config: Config, section: str) -> list[Check]:
        """``magoo doctor``: the voice activity detector loads; the endpoint answers, takes the key, has the model."""
        from .doctor import endpoint_rows, vad_row

        return [vad_row(section, config.end_silence), *endpoint_rows(config, section, config.model)]

    def __init__(self, config: Config) -> None:
        super().__init__(config)
        self.config: OpenAISpeechToText.Config = config
        self.streams = config.stream if config.stream is not None else config.model in STREAMING_MODELS
        self._failures = Failures(SECTION, "transcription", config)
        self._client: Any = None
        self._vad: Any = None
        self._worker: concurrent.futures.ThreadPoolExecutor | None = None
        self.counters = {"utterances": 0, "empty": 0, "failures": 0, "sent_seconds": 0.0}

    async def __aenter__(self) -> OpenAISpeechToText:
        self._client = open_client(self.config, self.name)
        # one thread owns the detector: its state must see the audio in order
        self._worker = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="magoo-openai-vad")
        try:
            self._vad = await self._run(load_vad)
        except BaseException:
            await self.__aexit__(None, None, None)
            raise
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        if self._worker is not None:
            self._worker.shutdown(wait=True)
        if self._client is not None:
            await self._client.close()
        self._worker = self._client = self._vad = None

    def stats(self) -> Mapping[str, float]:
        return {key: round(value, 3) for key, value in self.counters.items()}

    async def _run(self, function: Any, *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self._worker, function, *args)

    async def transcribe(self, audio: AsyncIterator[AudioChunk]) -> AsyncIterator[Transcript | SpeechActivity]:
        """Yield SpeechActivity at each start and end of speech, then the utterance's transcript
        (partial ones first when the server streams) and its final one.

        After a wake word (``audio.continuous`` False) it returns after the first utterance, or
        with an empty final transcript when ``no_speech`` seconds pass (or the audio ends) without
        speech. On a continuous stream it goes on, utterance after utterance.

        :raises BackendError: the request failed (one line naming what to fix; never the key).
        """
        if self._client is None:
            raise BackendError(f"{SECTION}: transcribe() before the backend was started")
        continuous = bool(getattr(audio, "continuous", False))
        cfg = self.config
        settings = EndOfSpeechSettings(
            end_silence=cfg.end_silence,
            max_seconds=cfg.max_seconds,
            no_speech=None if continuous else cfg.no_speech,
            threshold=cfg.vad_threshold,
            release=max(0.0, cfg.vad_threshold - 0.15),
        )
        detector = await self._run(lambda: EndOfSpeech(settings, vad=self._vad))
        cutter = UtteranceCutter(detector, pre_roll=cfg.pre_roll, tail=min(0.2, cfg.end_silence))
        clock = _AudioClock()
        async for chunk in audio:
            clock.heard(chunk)
            for cut in await self._run(cutter.feed, chunk.pcm):
                async for item in self._items(cut, clock, continuous):
                    yield item
                if cut.kind != "start" and not continuous:
                    return
        for cut in await self._run(cutter.finish):
            async for item in self._items(cut, clock, continuous):
                yield item
            if not continuous:
                return
        if not continuous:
            yield Transcript("", final=True)

    async def _items(self, cut: Cut, clock: _AudioClock, continuous: bool) -> AsyncIterator[Transcript | SpeechActivity]:
        if cut.kind == "start":
            yield SpeechActivity(True, clock.at(cut.at))
        elif cut.kind == "end":
            yield SpeechActivity(False, clock.at(cut.at))
            async for transcript in self._transcripts(cut.audio):
                yield transcript
        elif not continuous:  # no speech after the wake word
            yield Transcript("", final=True)

    async def _transcripts(self, pcm: bytes) -> AsyncIterator[Transcript]:
        """The transcript of one utterance: partial ones as the server streams, then the final one."""
        cfg = self.config
        self.counters["utterances"] += 1
        self.counters["sent_seconds"] += FORMAT.duration(len(pcm))
        options: dict[str, Any] = {"model": cfg.model, "file": ("speech.wav", wav_bytes(pcm), "audio/wav")}
        if cfg.language:
            options["language"] = cfg.language
        if cfg.prompt:
            options["prompt"] = cfg.prompt
        create = self._client.audio.transcriptions.create
        try:
            if not self.streams:
                result = await call(lambda: bounded(create(**options, response_format="json"), cfg.timeout), self._failures, cfg.retries)
                text = (getattr(result, "text", None) or "").strip()
            else:
                events = await call(lambda: bounded(create(**options, stream=True), cfg.timeout), self._failures, cfg.retries)
                text = ""
                async for done, text in self._stream(events):
                    if not done:
                        yield Transcript(text.strip(), final=False)
                text = text.strip()
        except BackendError:
            self.counters["failures"] += 1
            raise
        self.counters["empty"] += not text
        yield Transcript(text, final=True)

    async def _stream(self, events: Any) -> AsyncIterator[tuple[bool, str]]:
        """``(False, text so far)`` for each ``transcript.text.delta`` event, then ``(True, text)``
        from the ``transcript.text.done`` event (or the deltas, when the stream ends without one).
        Each event may take up to ``timeout`` seconds."""
        text = ""
        received = 0
        iterator = events.__aiter__()
        try:
            while True:
                try:
                    async with asyncio.timeout(self.config.timeout):
                        event = await anext(iterator)
                except StopAsyncIteration:
                    break
                received += 1
                kind = getattr(event, "type", None)
                if kind == "transcript.text.delta":
                    text += getattr(event, "delta", "") or ""
                    yield False, text
                elif kind == "transcript.text.done":
                    text = getattr(event, "text", None) or text
                    break
        except Exception as exc:
            raise self._failures.error(exc, received=f"{received} events" if received else "") from None
        finally:
            close = getattr(events, "close", None)
            if close is not None:
                await close()
        yield True, text


def wav_bytes(pcm: bytes) -> bytes:
    """``pcm`` (16 kHz mono 16-bit) as a WAV file in memory."""
    out = io.BytesIO()
    with wave.open(out, "wb") as wav:
        wav.setnchannels(FORMAT.channels)
        wav.setsampwidth(FORMAT.sample_width)
        wav.setframerate(FORMAT.sample_rate)
        wav.writeframes(pcm)
    return out.getvalue()


class _AudioClock:
    """Audio seconds of a stream → monotonic time, from the capture time of the last chunk.

    Times it gives never go backwards: a source read faster than real time (a file, a burst of
    pre-roll) stamps chunks by when they were read, not by the audio they hold."""

    def __init__(self) -> None:
        self._heard = 0.0
        self._last = 0.0
        self._given = 0.0

    def heard(self, chunk: AudioChunk) -> None:
        self._heard += chunk.duration
        self._last = chunk.timestamp or time.monotonic()

    def at(self, seconds: float) -> float:
        self._given = max(self._given, self._last - (self._heard - seconds))
        return self._given
