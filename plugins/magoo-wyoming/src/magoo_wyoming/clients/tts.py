"""``[tts] wyoming``: speech from a Wyoming text-to-speech server (wyoming-piper, ...), streamed.

One connection per text: ``synthesize`` → ``audio-start`` / ``audio-chunk``… / ``audio-stop``. A
server that says ``supports_synthesize_streaming`` gets the streaming form instead
(``synthesize-start`` / ``synthesize-chunk`` / ``synthesize`` / ``synthesize-stop``, answered
sentence by sentence until ``synthesize-stopped``), so a text of several sentences starts to sound
after its first one. Each chunk is yielded as it arrives.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from typing import ClassVar

from pydantic import Field
from wyoming.tts import Synthesize, SynthesizeChunk, SynthesizeStart, SynthesizeStop, SynthesizeVoice

from magoo_core import AudioChunk, Backend, BackendError
from magoo_core.fields import SampleRate, StrictBool
from magoo_core.types import AudioFormat

from ..connection import Connection
from .service import ServerConfig, Service, first_program

SECTION = "[tts] wyoming"


class WyomingTextToSpeech(Backend):
    """Speaks with a Wyoming TTS server; the audio is PCM in the server's format."""

    name: ClassVar[str] = "wyoming"

    class Config(ServerConfig):
        voice: str = Field("", description='Voice name ("en_US-lessac-medium"); "" uses the server\'s default voice.')
        speaker: str = Field("", description='Speaker of a multi-speaker voice; "" for its default.')
        language: str = Field("", description='A language the voice must speak ("en", "de_DE"), checked against the server\'s describe; "" for any.')
        sample_rate: SampleRate | None = Field(
            22050,
            description="Hz of the server's audio, so the player can be ready before the first reply (Piper medium voices: 22050,"
            " low: 16000); unset: learned from a first short synthesis when the backend starts.",
        )
        streaming: StrictBool | None = Field(
            None, description="Use the streaming events (sentence by sentence); unset: when the server says it supports them."
        )

    @classmethod
    def output_kind(cls, config: Config) -> AudioFormat | None:
        """16-bit mono PCM at ``sample_rate``; None when it is learned at start."""
        return None if config.sample_rate is None else AudioFormat(config.sample_rate)

    @classmethod
    def doctor(cls, config: Config, section: str) -> list:
        """``magoo doctor``: the server answers ``describe`` and has the voice."""
        from .doctor import server_rows

        return server_rows(cls, config, section)

    def __init__(self, config: Config) -> None:
        super().__init__(config)
        self.config: WyomingTextToSpeech.Config = config
        self.output_format = self.output_kind(config)
        self.service = Service(config, SECTION, self.wanted(config), self.picker(config))
        self.counters = {"texts": 0, "failures": 0, "audio_bytes": 0}

    @staticmethod
    def wanted(config: Config) -> str:
        return "text-to-speech program" + (f" with voice {config.voice!r}" if config.voice else "")

    @staticmethod
    def picker(config: Config):
        return lambda info: first_program(info.tts, config.voice, config.language)

    async def __aenter__(self) -> WyomingTextToSpeech:
        await self.service.describe()
        if self.output_format is None:
            async for chunk in self.synthesize("Hi."):
                self.output_format = chunk.format
                break
            if self.output_format is None:
                raise BackendError(f"{self.service.address} sent no audio for a test sentence; set sample_rate in the profile")
        return self

    def stats(self) -> Mapping[str, float]:
        return dict(self.counters)

    @property
    def streams(self) -> bool:
        """Whether texts are sent with the streaming events."""
        if self.config.streaming is not None:
            return self.config.streaming
        return bool(getattr(self.service.program, "supports_synthesize_streaming", False))

    async def synthesize(self, text: str) -> AsyncIterator[AudioChunk]:
        """Yield the speech of ``text`` chunk by chunk as the server sends it. Closing the iterator
        early (barge-in) closes the connection, which ends the synthesis on the server.

        :raises BackendError: refused, closed early, silent for ``timeout`` s, malformed audio.
        """
        text = text.strip()
        if not text:
            return
        self.counters["texts"] += 1
        try:
            async with await self.service.connect() as connection:
                await connection.send(*self._request(text))
                async for chunk in self._audio(connection):
                    self.counters["audio_bytes"] += len(chunk.pcm)
                    yield chunk
        except BackendError:
            self.counters["failures"] += 1
            raise

    def _request(self, text: str) -> list:
        cfg = self.config
        voice = SynthesizeVoice(name=cfg.voice or None, speaker=cfg.speaker or None) if cfg.voice or cfg.speaker else None
        if not self.streams:
            return [Synthesize(text=text, voice=voice).event()]
        # the plain synthesize between chunk and stop is what older servers answer (the protocol's own rule)
        return [SynthesizeStart(voice=voice).event(), SynthesizeChunk(text=text).event(),
                Synthesize(text=text, voice=voice).event(), SynthesizeStop().event()]

    async def _audio(self, connection: Connection) -> AsyncIterator[AudioChunk]:
        streaming = self.streams
        timeout = self.config.timeout
        while True:
            event = await connection.receive(timeout, "speech audio")
            if event.type == "audio-chunk":
                yield _chunk(event, connection)
            elif event.type == "audio-stop" and not streaming:
                return
            elif event.type == "synthesize-stopped":
                return


def _chunk(event, connection: Connection) -> AudioChunk:
    """An ``audio-chunk`` event as an AudioChunk; a format magoo cannot play is a BackendError."""
    data = event.data
    rate, width, channels = data.get("rate"), data.get("width"), data.get("channels")
    pcm = event.payload or b""
    if not (isinstance(rate, int) and 1000 <= rate <= 192000 and width in (1, 2, 3, 4)
            and isinstance(channels, int) and 1 <= channels <= 8 and len(pcm) % (width * channels) == 0):
        raise BackendError(
            f"{connection.address} sent an audio-chunk magoo cannot play"
            f" (rate {rate!r}, width {width!r}, channels {channels!r}, {len(pcm)} bytes)"
        )
    return AudioChunk(pcm, rate, channels, width)
