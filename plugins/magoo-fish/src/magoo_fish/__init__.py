"""magoo-fish: text-to-speech from Fish Audio, streamed, sentence by sentence.

A reply is cut at sentence ends (see :mod:`.sentences`): the first sentence goes out alone so
the first sound comes early, the rest in larger requests fetched one ahead while the previous
one plays (see :mod:`.pipeline`). Each request goes through the legacy Fish SDK, which streams
(see :mod:`.client`); its audio is handed on chunk by chunk as it arrives.

Importing this module imports neither httpx nor the SDK; the backend does when it starts.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TYPE_CHECKING, ClassVar, Literal

from pydantic import Field, SecretStr, model_validator

from magoo_core import AudioChunk, AudioFormat, Backend, BackendConfig, BackendError, EncodedAudio, hookimpl, require
from magoo_core.fields import Choice, Count, Number, Ratio, SampleRate, Seconds, StrictBool
from magoo_core.audio import WavStreamDecoder

from .sentences import plan_requests

if TYPE_CHECKING:
    from .client import FishClient
    from .pipeline import Fetch

__all__ = ["FishTextToSpeech"]

log = logging.getLogger("magoo.fish")

DEFAULT_URL = "https://api.fish.audio"
#: Rates the server accepts in sample_rate: MP3 only 32 and 44.1 kHz, Opus only 48 kHz.
SAMPLE_RATES = (8000, 16000, 24000, 32000, 44100, 48000)
MP3_RATES = (32000, 44100)
DEFAULT_RATE = 44100
OPUS_RATE = 48000


class FishTextToSpeech(Backend):
    """Fish Audio TTS over HTTP: audio is handed on while the server is still synthesizing it."""

    name: ClassVar[str] = "fish"

    class Config(BackendConfig):
        api_key: SecretStr = Field(description='Fish Audio API key; write api_key = { env = "FISH_API_KEY" } (never logged).')
        voice_id: str | None = Field(
            None, description="Voice model id (reference_id) from fish.audio; unset uses the model's default voice."
        )
        model: str = Field("s2-pro", description="TTS model, sent as the model header (s1, s2-pro, ...).")
        format: Literal["mp3", "wav", "pcm", "opus"] = Field(
            "mp3",
            description="Audio format: mp3 and opus go to the player encoded (mpv plays them); wav and pcm "
            "become PCM chunks any player takes.",
        )
        sample_rate: SampleRate | None = Field(
            None,
            description="Output rate in Hz: wav/pcm 8000-48000 (default 44100), mp3 32000 or 44100 "
            "(default 44100); opus is always 48000.",
        )
        mp3_bitrate: Choice(64, 128, 192) = Field(128, description="MP3 bit rate in kbit/s.")
        opus_bitrate: Choice(-1000, 24, 32, 48, 64) = Field(32, description="Opus bit rate in kbit/s; -1000 lets the encoder choose.")
        latency: Literal["normal", "balanced"] = Field(
            "balanced", description="balanced starts sooner at a little cost in quality; normal is the best quality."
        )
        chunk_length: Count(100, 300) = Field(200, description="Characters the server synthesizes at a time (100-300).")
        normalize: StrictBool = Field(True, description="Let the server normalize text (numbers, dates) before speaking it.")
        speed: Number(0.5, 2.0) = Field(1.0, description="Speaking speed, 0.5-2.0 (sent as prosody when not 1.0).")
        volume: Number(-20.0, 20.0) = Field(0.0, description="Volume change in dB, -20..20 (sent as prosody when not 0).")
        temperature: Ratio() = Field(0.7, description="Sampling temperature 0-1; lower is steadier.")
        top_p: Ratio() = Field(0.7, description="Nucleus sampling 0-1.")
        base_url: str = Field(DEFAULT_URL, description="Fish Audio API address; override for the loopback server.")
        first_byte_timeout: Seconds(0.01, 300) = Field(10.0, description="Seconds a request may take to send its first audio.")
        read_timeout: Seconds(0.01, 300) = Field(10.0, description="Seconds between two pieces of audio before the stream counts as stalled.")
        retries: Count(0, 10) = Field(
            2,
            description="Retries of a request after 429, 5xx, a timeout or a connection error, while none of its "
            "audio was played.",
        )
        max_chars: Count(20, 5000) = Field(
            250,
            description="Longest request in characters; the first request is the first sentence alone, the rest "
            "are grouped up to this.",
        )

        @model_validator(mode="after")
        def _rate_fits_format(self):
            rate = self.sample_rate
            if rate is None:
                return self
            allowed = {"mp3": MP3_RATES, "opus": (OPUS_RATE,)}.get(self.format, SAMPLE_RATES)
            if rate not in allowed:
                raise ValueError(
                    f"sample_rate {rate} does not work with format {self.format!r}; use one of "
                    f"{', '.join(map(str, allowed))} or leave it unset"
                )
            return self

    def __init__(self, config: Config) -> None:
        super().__init__(config)
        self.config: FishTextToSpeech.Config = config
        self.client: FishClient | None = None
        #: How a retry waits; tests replace it to record delays without waiting.
        self.sleep: Callable[[float], Awaitable[object]] = asyncio.sleep
        #: Every retry delay used, in order.
        self.retry_delays: list[float] = []
        self.counters = {"requests": 0, "failures": 0, "bytes": 0}

    async def __aenter__(self) -> FishTextToSpeech:
        """Open the SDK session (its httpx client); nothing is sent until the first reply."""
        require("fish_audio_sdk", backend=self.name, install="uv pip install magoo-fish")
        from .client import FishClient

        client = FishClient(self.config)
        await client.open()
        self.client = client
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        if self.client is not None:
            client, self.client = self.client, None
            await client.close()

    def stats(self) -> dict[str, float]:
        """Requests sent (not counting retries), retries, replies that failed, audio bytes received."""
        return {**self.counters, "retries": len(self.retry_delays)}

    @property
    def output_rate(self) -> int:
        """The sample rate of the audio this backend yields."""
        return _rate(self.config)

    @classmethod
    def output_kind(cls, config: Config) -> AudioFormat | str:
        """What every reply with ``config`` is, known before start: the codec of the encoded audio
        (mp3, opus), or the PCM layout that wav and pcm are decoded to. ``magoo check`` asks the
        player whether it plays this."""
        return config.format if config.format in ("mp3", "opus") else AudioFormat(_rate(config))

    @property
    def output_format(self) -> AudioFormat | str:
        """What every reply is (:meth:`output_kind` of the config); the player gets ready for it."""
        return self.output_kind(self.config)

    async def synthesize(self, text: str) -> AsyncIterator[AudioChunk | EncodedAudio]:
        """Speak ``text``: yield each piece of audio as soon as it arrives.

        mp3 and opus come as :class:`EncodedAudio` (opus: Ogg Opus at 48 kHz), wav and pcm as
        16-bit mono :class:`AudioChunk`. Closing the generator early (barge-in) cancels every
        request in flight and closes its connection.

        :raises BackendError: a request failed for good; the audio before it was already yielded.
        """
        from .pipeline import Fetch

        if self.client is None:
            raise BackendError("the fish backend is not started (use it inside 'async with')", retryable=False)
        texts = plan_requests(text, self.config.max_chars)
        log.debug("speaking %d chars in %d request(s)", len(text), len(texts))
        fetches: list[Fetch] = []

        def fetch(index: int) -> Fetch:
            if index == len(fetches):
                self.counters["requests"] += 1
                fetches.append(Fetch(self.client, texts[index], retries=self.config.retries, sleep=self.sleep,
                                     delays=self.retry_delays))
            return fetches[index]

        try:
            for index in range(len(texts)):
                current = fetch(index)
                decode = self._decoder()
                while (data := await current.get()) is not None:
                    if index + 1 < len(texts):
                        fetch(index + 1)  # this one is streaming: the next one goes out now
                    self.counters["bytes"] += len(data)
                    if (piece := decode(data)) is not None:
                        yield piece
        except BackendError:
            self.counters["failures"] += 1
            raise
        finally:
            await asyncio.gather(*(f.cancel() for f in fetches))

    def _decoder(self) -> Callable[[bytes], AudioChunk | EncodedAudio | None]:
        """A converter from one request's bytes to what the player gets (a new one per request:
        each request's WAV has its own header, and its PCM its own byte alignment)."""
        fmt, rate = self.config.format, self.output_rate
        if fmt in ("mp3", "opus"):
            return lambda data: EncodedAudio(data, fmt, rate)
        if fmt == "pcm":
            carry = bytearray()

            def pcm(data: bytes) -> AudioChunk | None:
                carry.extend(data)
                usable = len(carry) - len(carry) % 2
                if not usable:
                    return None
                chunk = AudioChunk(bytes(carry[:usable]), rate)
                del carry[:usable]
                return chunk

            return pcm
        wav = WavStreamDecoder()

        def decode_wav(data: bytes) -> AudioChunk | None:
            try:
                return wav.feed(data)
            except ValueError as exc:
                raise BackendError(f"Fish Audio sent unreadable WAV audio ({exc}); try format = \"pcm\"") from None

        return decode_wav


@hookimpl
def magoo_register_tts(register):
    register(FishTextToSpeech)


def _rate(config: FishTextToSpeech.Config) -> int:
    """Hz of the audio a config yields: opus is always 48 kHz; the others, ``sample_rate`` or Fish's default."""
    return OPUS_RATE if config.format == "opus" else config.sample_rate or DEFAULT_RATE
