"""``[tts] openai``: speech from ``/v1/audio/speech``, streamed as it arrives.

With ``response_format = "pcm"`` (24 kHz 16-bit mono on OpenAI's API) each piece of the answer is
played as soon as it arrives, so the first sound comes before the whole sentence is synthesized;
``"mp3"`` and ``"opus"`` go to the player as encoded audio. Works with OpenAI and with
OpenAI-compatible speech servers (speaches with Kokoro or Piper voices, LocalAI, Kokoro-FastAPI)
through ``base_url``.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Mapping
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from pydantic import Field

from magoo_core import AudioChunk, Backend, BackendError
from magoo_core.fields import Number, SampleRate
from magoo_core.types import AudioFormat, EncodedAudio

from .client import EndpointConfig, Failures, bounded, call, open_client

if TYPE_CHECKING:
    from magoo_core.doctor import Check

SECTION = "[tts] openai"
#: bytes read from the response at a time: 50 ms of 24 kHz PCM; a piece is handed on as it arrives
READ_BYTES = 2400


class OpenAITextToSpeech(Backend):
    """Speaks with an OpenAI-compatible ``/v1/audio/speech`` endpoint, streaming its answer."""

    name: ClassVar[str] = "openai"

    class Config(EndpointConfig):
        model: str = Field(
            "gpt-4o-mini-tts", min_length=1, description="Speech model: gpt-4o-mini-tts, tts-1, tts-1-hd, or a local server's."
        )
        voice: str = Field(
            "alloy", min_length=1, description="Voice: alloy, ash, ballad, coral, echo, fable, nova, onyx, sage, shimmer ... or a local server's."
        )
        speed: Number(0.25, 4.0) = Field(1.0, description="Speaking speed; 1 is normal.")
        instructions: str = Field(
            "", description='How to speak ("cheerful, a little fast"); gpt-4o-mini-tts only, "" for none.'
        )
        response_format: Literal["pcm", "mp3", "opus"] = Field(
            "pcm",
            description=(
                "pcm: raw audio played as it arrives (lowest latency, any player); mp3 or opus: encoded audio"
                " for a player that decodes it (mpv)."
            ),
        )
        pcm_rate: SampleRate = Field(24000, description="Sample rate of the server's pcm (OpenAI: 24000 Hz).")

    @classmethod
    def output_kind(cls, config: Config) -> AudioFormat | str:
        """PCM at ``pcm_rate`` for ``"pcm"``, else the codec's name."""
        return AudioFormat(config.pcm_rate) if config.response_format == "pcm" else config.response_format

    @classmethod
    def doctor(cls, config: Config, section: str) -> list[Check]:
        """``magoo doctor``: the endpoint answers, takes the key and has the model (blocking, a few seconds)."""
        from .doctor import endpoint_rows

        return endpoint_rows(config, section, config.model)

    def __init__(self, config: Config) -> None:
        super().__init__(config)
        self.config: OpenAITextToSpeech.Config = config
        self.output_format = self.output_kind(config)
        self._failures = Failures(SECTION, "speech", config)
        self._client: Any = None
        self.counters = {"sentences": 0, "failures": 0, "audio_bytes": 0}

    async def __aenter__(self) -> OpenAITextToSpeech:
        self._client = open_client(self.config, self.name)
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        if self._client is not None:
            await self._client.close()
        self._client = None

    def stats(self) -> Mapping[str, float]:
        return dict(self.counters)

    async def synthesize(self, text: str) -> AsyncIterator[AudioChunk | EncodedAudio]:
        """Yield the speech of ``text`` as it arrives: ``AudioChunk``\\ s for pcm, ``EncodedAudio``
        for mp3 and opus. Closing the iterator early (barge-in) closes the request.

        :raises BackendError: the request failed or the answer broke off (one line; never the key).
        """
        if self._client is None:
            raise BackendError(f"{SECTION}: synthesize() before the backend was started")
        text = text.strip()
        if not text:
            return
        cfg = self.config
        options: dict[str, Any] = {
            "model": cfg.model, "voice": cfg.voice, "input": text, "response_format": cfg.response_format, "speed": cfg.speed,
        }
        if cfg.instructions:
            options["instructions"] = cfg.instructions
        self.counters["sentences"] += 1
        streaming = self._client.audio.speech.with_streaming_response

        async def open_response() -> Any:
            opener = streaming.create(**options)
            return opener, await bounded(opener.__aenter__(), cfg.timeout)

        try:
            opener, response = await call(open_response, self._failures, cfg.retries)
        except BackendError:
            self.counters["failures"] += 1
            raise
        try:
            async with contextlib.aclosing(self._pieces(response)) as pieces:
                async for piece in pieces:
                    yield piece
        finally:
            await opener.__aexit__(None, None, None)

    async def _pieces(self, response: Any) -> AsyncIterator[AudioChunk | EncodedAudio]:
        cfg = self.config
        pcm = cfg.response_format == "pcm"
        received = 0
        odd = b""  # a sample split between two reads
        iterator = response.iter_bytes(READ_BYTES).__aiter__()
        while True:
            try:
                async with asyncio.timeout(cfg.timeout):
                    data = await anext(iterator)
            except StopAsyncIteration:
                break
            except Exception as exc:
                self.counters["failures"] += 1
                raise self._failures.error(exc, received=f"{received} bytes" if received else "") from None
            received += len(data)
            self.counters["audio_bytes"] += len(data)
            if not pcm:
                yield EncodedAudio(data, cfg.response_format)
                continue
            data, odd = odd + data, b""
            if len(data) % 2:
                data, odd = data[:-1], data[-1:]
            if data:
                yield AudioChunk(data, cfg.pcm_rate, timestamp=time.monotonic())
        if received == 0:
            self.counters["failures"] += 1
            raise BackendError(f"{SECTION}: {self._failures.host} answered with no audio: check model and voice")
