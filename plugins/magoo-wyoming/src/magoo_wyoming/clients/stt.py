"""``[stt] wyoming``: transcripts from a Wyoming speech-to-text server (wyoming-faster-whisper, ...).

magoo ends each utterance itself (:class:`~magoo_core.end_of_speech.EndOfSpeech`, Silero VAD),
as Home Assistant does for the servers that say ``requires_external_vad`` (most of them). One
connection per utterance, opened when speech starts: ``transcribe`` → ``audio-start`` → the
pre-roll and every chunk as it is captured → ``audio-stop`` at the end of speech ← ``transcript``.
Streaming servers (``supports_transcript_streaming``) also send ``transcript-start`` /
``transcript-chunk``…, which are yielded as partial transcripts while the user still speaks. A
``transcript`` that comes before magoo's end of speech (a server with its own VAD) ends the
utterance there.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import time
from collections.abc import AsyncIterator, Mapping
from typing import Any, ClassVar

from pydantic import Field
from wyoming.asr import Transcribe
from wyoming.audio import AudioChunk as WyomingChunk
from wyoming.audio import AudioStart, AudioStop

from magoo_core import AudioChunk, Backend, BackendError
from magoo_core.end_of_speech import FORMAT, EndOfSpeech, EndOfSpeechSettings, load_vad
from magoo_core.fields import Ratio, Seconds
from magoo_core.types import SpeechActivity, Transcript

from ..connection import Connection
from .service import ServerConfig, Service, first_program

SECTION = "[stt] wyoming"


class WyomingSpeechToText(Backend):
    """Transcribes with a Wyoming ASR server; utterances are cut by magoo's voice activity detector."""

    name: ClassVar[str] = "wyoming"
    input_format = FORMAT
    replies = False

    class Config(ServerConfig):
        model: str = Field("", description='Model to ask for ("tiny-int8"); "" uses the server\'s.')
        language: str = Field("", description='Language of the speech ("en", "de"); "" lets the server decide.')
        end_silence: Seconds(0.1, 5) = Field(0.5, description="Seconds of silence that end an utterance.")
        max_seconds: Seconds(1, 600) = Field(15.0, description="Longest utterance in seconds; it is ended there.")
        no_speech: Seconds(0.5, 300) = Field(8.0, description="After a wake word: seconds without speech before the turn ends with nothing heard.")
        vad_threshold: Ratio() = Field(0.5, description="Speech probability (Silero VAD, 0..1) from which a frame counts as speech.")
        pre_roll: Seconds(0, 2) = Field(0.3, description="Seconds of audio sent from before the detected start of speech.")
        transcript_timeout: Seconds(0.5, 300) = Field(15.0, description="Seconds the server may take for the transcript after the end of speech.")

    @classmethod
    def doctor(cls, config: Config, section: str) -> list:
        """``magoo doctor``: the server answers ``describe`` and has the model and language."""
        from .doctor import server_rows

        return server_rows(cls, config, section)

    @staticmethod
    def wanted(config: Config) -> str:
        what = "speech-to-text program"
        if config.model:
            what += f" with model {config.model!r}"
        return what + (f" for language {config.language!r}" if config.language else "")

    @staticmethod
    def picker(config: Config):
        return lambda info: first_program(info.asr, config.model, config.language)

    def __init__(self, config: Config) -> None:
        super().__init__(config)
        self.config: WyomingSpeechToText.Config = config
        self.service = Service(config, SECTION, self.wanted(config), self.picker(config))
        self._vad: Any = None
        self._worker: concurrent.futures.ThreadPoolExecutor | None = None
        self.counters = {"utterances": 0, "empty": 0, "failures": 0, "partials": 0}

    async def __aenter__(self) -> WyomingSpeechToText:
        await self.service.describe()
        # one thread owns the detector: its state must see the audio in order
        self._worker = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="magoo-wyoming-vad")
        self._vad = await self._run(load_vad)
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        if self._worker is not None:
            self._worker.shutdown(wait=True)
        self._worker = self._vad = None

    def stats(self) -> Mapping[str, float]:
        return dict(self.counters)

    async def _run(self, function: Any, *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self._worker, function, *args)

    async def transcribe(self, audio: AsyncIterator[AudioChunk]) -> AsyncIterator[Transcript | SpeechActivity]:
        """Yield SpeechActivity at each start and end of speech, partial transcripts while a
        streaming server sends them, then each utterance's final transcript.

        After a wake word (``audio.continuous`` False) it returns after the first utterance, or
        with an empty final transcript after ``no_speech`` seconds (or the end of the audio)
        without speech. On a continuous stream it goes on, utterance after utterance.

        :raises BackendError: the server refused, closed mid-utterance, stayed silent or sent
            malformed frames (one line).
        """
        if self._worker is None:
            raise BackendError(f"transcribe() before the backend was started")
        continuous = bool(getattr(audio, "continuous", False))
        cfg = self.config
        settings = EndOfSpeechSettings(
            end_silence=cfg.end_silence, max_seconds=cfg.max_seconds, no_speech=None if continuous else cfg.no_speech,
            threshold=cfg.vad_threshold, release=max(0.0, cfg.vad_threshold - 0.15),
        )
        detector = await self._run(lambda: EndOfSpeech(settings, vad=self._vad))
        recent = _Recent(cfg.pre_roll + 0.3)
        utterance: _Utterance | None = None
        try:
            async for chunk in audio:
                recent.add(chunk)
                if utterance is not None:
                    await utterance.send(chunk.pcm)
                for boundary in await self._run(detector.feed, chunk.pcm):
                    if boundary.kind == "start" and utterance is None:
                        yield SpeechActivity(True, recent.time_of(boundary.at))
                        utterance = await self._open(recent.since(boundary.at - cfg.pre_roll))
                    elif boundary.kind == "end" and utterance is not None:
                        yield SpeechActivity(False, recent.time_of(boundary.at))
                        async for transcript in self._finish(utterance):
                            yield transcript
                        utterance = None
                        if not continuous:
                            return
                    elif boundary.kind == "no_speech" and not continuous:
                        yield Transcript("", final=True)
                        return
                if utterance is not None:
                    for partial in utterance.partials():
                        yield partial
                    if utterance.final is not None:  # the server ended the utterance by itself
                        yield SpeechActivity(False, recent.time_of(recent.heard))
                        async for transcript in self._finish(utterance):
                            yield transcript
                        utterance = None  # the detector's own end of it, when it comes, is passed over
                        if not continuous:
                            return
            if utterance is not None:
                await self._run(detector.finish)
                yield SpeechActivity(False, recent.time_of(recent.heard))
                async for transcript in self._finish(utterance):
                    yield transcript
                utterance = None
            elif not continuous:
                yield Transcript("", final=True)
        finally:
            if utterance is not None:
                await utterance.close()

    async def _open(self, preroll: bytes) -> _Utterance:
        cfg = self.config
        connection = await self.service.connect()
        utterance = _Utterance(connection, self.counters)
        try:
            await connection.send(
                Transcribe(name=cfg.model or None, language=cfg.language or None).event(),
                AudioStart(rate=FORMAT.sample_rate, width=FORMAT.sample_width, channels=FORMAT.channels).event(),
            )
            await utterance.send(preroll)
        except BaseException:
            await utterance.close()
            raise
        self.counters["utterances"] += 1
        return utterance

    async def _finish(self, utterance: _Utterance) -> AsyncIterator[Transcript]:
        try:
            async for transcript in utterance.finish(self.config.transcript_timeout):
                yield transcript
        except BackendError:
            self.counters["failures"] += 1
            raise
        finally:
            await utterance.close()


class _Utterance:
    """One utterance's connection: audio goes out as it comes, the server's events are read by a
    task of their own so that partials arrive while the user speaks."""

    def __init__(self, connection: Connection, counters: dict[str, float]) -> None:
        self.connection = connection
        self.counters = counters
        self.final: str | None = None  # the transcript, once the server sent it
        self._text = ""  # what transcript-chunks said so far
        self._new: list[str] = []  # partial texts not yet handed on
        self._failure: BackendError | None = None
        self._done = asyncio.Event()
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        try:
            while self.final is None:
                event = await self.connection.receive(None, "the transcript")
                if event.type == "transcript-chunk":
                    self._text += str(event.data.get("text", ""))
                    self._new.append(self._text.strip())
                elif event.type == "transcript-start":
                    self._text = ""
                elif event.type == "transcript":
                    self.final = str(event.data.get("text", "") or "").strip()
        except BackendError as exc:
            self._failure = exc
        finally:
            self._done.set()

    async def send(self, pcm: bytes) -> None:
        if pcm and self.final is None and not self._done.is_set():
            await self.connection.send(WyomingChunk(rate=FORMAT.sample_rate, width=FORMAT.sample_width, channels=FORMAT.channels, audio=pcm).event())

    def partials(self) -> list[Transcript]:
        new, self._new = self._new, []
        self.counters["partials"] += len(new)
        return [Transcript(text, final=False) for text in new if text]

    async def finish(self, timeout: float) -> AsyncIterator[Transcript]:
        """Send ``audio-stop`` (unless the server already answered) and yield what is left:
        partials, then the final transcript.

        :raises BackendError: closed or silent before the transcript, or a malformed frame.
        """
        if self.final is None and not self._done.is_set():
            await self.connection.send(AudioStop().event())
        try:
            async with asyncio.timeout(timeout):
                await self._done.wait()
        except TimeoutError:
            raise BackendError(f"{self.connection.address} sent no transcript within {timeout:g} s of the end of speech") from None
        for partial in self.partials():
            yield partial
        if self.final is None:
            raise self._failure or BackendError(f"{self.connection.address} closed without a transcript")
        self.counters["empty"] += not self.final
        yield Transcript(self.final, final=True)

    async def close(self) -> None:
        self._reader.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await self._reader
        await self.connection.close()


class _Recent:
    """The last ``seconds`` of 16 kHz audio, addressed in audio seconds since the stream began,
    and the capture time of any such second."""

    def __init__(self, seconds: float) -> None:
        self._keep = round(seconds * FORMAT.sample_rate) * FORMAT.frame_bytes
        self._buffer = bytearray()
        self._start = 0  # bytes of the stream before _buffer[0]
        self._last_time = 0.0  # capture time of the newest byte

    @property
    def heard(self) -> float:
        return FORMAT.duration(self._start + len(self._buffer))

    def add(self, chunk: AudioChunk) -> None:
        self._buffer += chunk.pcm
        self._last_time = chunk.timestamp or time.monotonic()
        drop = max(0, len(self._buffer) - self._keep)
        if drop:
            del self._buffer[:drop]
            self._start += drop

    def since(self, seconds: float) -> bytes:
        """The audio kept from ``seconds`` on."""
        offset = max(0, round(seconds * FORMAT.sample_rate)) * FORMAT.frame_bytes
        return bytes(self._buffer[max(0, offset - self._start):])

    def time_of(self, seconds: float) -> float:
        return self._last_time - max(0.0, self.heard - seconds)
