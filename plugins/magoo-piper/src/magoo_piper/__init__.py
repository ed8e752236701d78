"""magoo-piper: a local neural voice, Piper (``piper-tts``), streamed sentence by sentence.

The voice model is loaded once, when the backend starts, from a file or an installed voice
package (:mod:`magoo_piper.voices`); nothing is downloaded. Each reply is synthesized in the
backend's own thread, one sentence at a time: the first sentence's audio is handed on while the
next ones are synthesized. ``piper`` (and onnxruntime) are imported when the backend starts,
never when this module is imported.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import logging
import threading
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import Field, ValidationInfo, field_validator

from magoo_core import AudioChunk, AudioFormat, Backend, BackendConfig, BackendError, hookimpl, require
from magoo_core.audio import AudioConverter, split
from magoo_core.fields import Count, Number, SampleRate, Seconds

from .voices import DEFAULT_VOICE, DEFAULT_VOICES_DIR, Voice, find_voice, is_path

if TYPE_CHECKING:
    from magoo_core.doctor import Check

__all__ = ["PiperTextToSpeech", "Voice", "find_voice"]

log = logging.getLogger("magoo.piper")

INSTALL = "uv pip install magoo-piper  (or: pip install 'piper-tts>=1.3,<2')"
#: longest chunk handed to the player, in seconds
CHUNK_SECONDS = 0.1
#: the rate of Piper's medium and high voices, assumed before a voice is found
PIPER_RATE = 22050
#: what the backend says to itself at start, so that the first reply is as fast as the others
WARM_UP = "Hello there, I am ready."


class PiperTextToSpeech(Backend):
    """Piper in the backend's thread: one sentence's audio is yielded while the next is synthesized."""

    name: ClassVar[str] = "piper"

    class Config(BackendConfig):
        voice: str = Field(
            DEFAULT_VOICE,
            min_length=1,
            description="A voice by name (looked up in installed *-piper-voice packages, then in voices_dir) or the"
            " path of its .onnx file (its .onnx.json beside it; relative paths start at the profile's folder).",
        )
        voices_dir: Path = Field(
            DEFAULT_VOICES_DIR, description="A folder of downloaded voices (NAME.onnx and NAME.onnx.json), searched for a voice by name."
        )
        speaker: Count(0, 10000) | None = Field(
            None, description="The speaker of a voice with several (its number, 0 first); unset: the voice's default."
        )
        length_scale: Number(0.1, 10, lo_open=True) | None = Field(
            None, description="How long each sound lasts: above 1 slower, below 1 faster; unset: the voice's own (usually 1)."
        )
        noise_scale: Number(0, 2) | None = Field(
            None, description="Variation in the voice (0: flat, the same every time); unset: the voice's own (usually 0.667)."
        )
        sentence_silence: Seconds(0, 5) = Field(0.0, description="Seconds of silence added after each sentence but the last.")
        sample_rate: SampleRate | None = Field(
            None, description="Resample the output to this rate in Hz; unset keeps the voice's own (22050 Hz for most)."
        )

        @field_validator("voice", mode="after")
        @classmethod
        def _voice_path_from_profile(cls, value: str, info: ValidationInfo) -> str:
            base = (info.context or {}).get("base_dir")
            if base is None or not is_path(value) or Path(value).expanduser().is_absolute():
                return value
            return str((Path(base) / value).resolve())

        @field_validator("voices_dir", mode="before")
        @classmethod
        def _home(cls, value: object) -> object:
            return Path(value).expanduser() if isinstance(value, (str, Path)) else value

    config: Config

    @classmethod
    def doctor(cls, config: Config, section: str) -> list[Check]:
        """``magoo doctor``: the voice is found (where, its rate and license note); piper-tts imports."""
        from .doctor import voice_rows

        return voice_rows(config, section)

    @classmethod
    def voice_of(cls, config: Config) -> Voice:
        """The files ``config`` names. Blocking (file system).

        :raises BackendError: the voice is not found (where it looked, how to install one)."""
        return find_voice(config.voice, config.voices_dir)

    @classmethod
    def output_kind(cls, config: Config) -> AudioFormat:
        """What every reply with ``config`` is, known before start: mono 16-bit PCM at ``sample_rate``,
        else at the rate in the voice's .onnx.json (22050 Hz when the voice is not found)."""
        if config.sample_rate:
            return AudioFormat(config.sample_rate)
        try:
            voice = cls.voice_of(config)
            return AudioFormat(int(json.loads(voice.config.read_text(encoding="utf-8"))["audio"]["sample_rate"]))
        except (BackendError, OSError, ValueError, KeyError, TypeError):
            return AudioFormat(PIPER_RATE)

    def __init__(self, config: Config) -> None:
        super().__init__(config)
        self._voice: Any = None
        self._synthesis: Any = None
        self._rate = 0
        self._worker: concurrent.futures.ThreadPoolExecutor | None = None
        #: the voice's files once started; tests and the bench read it
        self.voice: Voice | None = None
        self.counters = {"replies": 0, "sentences": 0, "failures": 0, "seconds": 0.0, "cancelled": 0}

    async def __aenter__(self) -> PiperTextToSpeech:
        """Find the voice, load it once and run it once (about 1 s for a medium voice on x86).

        :raises BackendError: piper-tts is not installed, or the voice is not found or does not load.
        """
        piper = require("piper", backend=self.name, install=INSTALL)
        # one thread owns the onnxruntime session: replies are synthesized one after another
        self._worker = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="magoo-piper")
        try:
            self.voice = await self._call(type(self).voice_of, self.config)
            self._voice = await self._call(self._load, piper)
        except BaseException:
            self._worker.shutdown(wait=False)
            self._worker = None
            raise
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        if self._worker is not None:
            await asyncio.to_thread(self._worker.shutdown, True)
        self._worker = self._voice = None

    def _load(self, piper: Any) -> Any:
        cfg, files = self.config, self.voice
        try:
            voice = piper.PiperVoice.load(files.model, config_path=files.config)
        except Exception as exc:  # onnxruntime's and json's errors: say which file, not a traceback
            raise BackendError(f"piper: the voice {files.model} does not load ({type(exc).__name__}: {exc})", retryable=False) from None
        speakers = voice.config.num_speakers
        if cfg.speaker is not None and cfg.speaker >= speakers:
            raise BackendError(
                f"piper: the voice {files.model.stem} has {speakers} speaker(s) (0..{speakers - 1}); fix [tts] speaker",
                retryable=False,
            )
        self._synthesis = piper.SynthesisConfig(
            speaker_id=cfg.speaker, length_scale=cfg.length_scale, noise_scale=cfg.noise_scale
        )
        self._rate = voice.config.sample_rate
        # onnxruntime's first run of a model takes several times longer than the next ones (it
        # allocates and plans): pay it here, not in the first reply
        for _ in voice.synthesize(WARM_UP, self._synthesis):
            pass
        return voice

    async def _call(self, function: Any, *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self._worker, function, *args)

    def stats(self) -> dict[str, float]:
        """Replies, sentences synthesized, failures, seconds of audio produced, replies cut off."""
        return dict(self.counters)

    @property
    def output_format(self) -> AudioFormat:
        """What every reply is: mono 16-bit PCM at ``sample_rate`` or the voice's rate (the player gets ready for it)."""
        return AudioFormat(self.config.sample_rate or self._rate or PIPER_RATE)

    async def synthesize(self, text: str) -> AsyncIterator[AudioChunk]:
        """Speak ``text``: yield 16-bit mono chunks of at most 100 ms, each sentence as soon as it is synthesized.

        Text that is empty or only whitespace yields nothing. Closing the generator early
        (barge-in) stops the synthesis after the sentence being synthesized (onnxruntime cannot
        be interrupted inside one); the close itself does not wait for it.

        :raises BackendError: Piper failed on this text (not retryable: the same text fails again).
        """
        if self._voice is None:
            raise BackendError("the piper backend is not started (use it inside 'async with')", retryable=False)
        if not text.strip():
            return
        self.counters["replies"] += 1
        loop = asyncio.get_running_loop()
        sentences: asyncio.Queue[bytes | BaseException | None] = asyncio.Queue()
        stop = threading.Event()
        converter = AudioConverter(AudioFormat(self.config.sample_rate)) if self.config.sample_rate else None
        job = loop.run_in_executor(self._worker, self._synthesize, text, stop, loop, sentences)
        finished = False
        try:
            while (item := await sentences.get()) is not None:
                if isinstance(item, BaseException):
                    self.counters["failures"] += 1
                    raise BackendError(f"piper could not speak {_short(text)!r} ({type(item).__name__}: {item})", retryable=False)
                for piece in self._pieces(AudioChunk(item, self._rate, timestamp=loop.time()), converter):
                    yield piece
            if converter is not None:
                for tail in converter.flush():
                    for piece in self._pieces(tail, None):
                        yield piece
            finished = True
        finally:
            stop.set()
            if not finished:
                self.counters["cancelled"] += 1
            job.add_done_callback(_retrieve)

    def _synthesize(self, text: str, stop: threading.Event, loop: asyncio.AbstractEventLoop, out: asyncio.Queue) -> None:
        """The worker thread: each sentence's PCM (with ``sentence_silence`` before all but the first)
        into ``out``, then None; an exception instead of audio when Piper fails. Stops at ``stop``."""
        silence = b"\0\0" * round(self._rate * self.config.sentence_silence)

        def put(item: bytes | BaseException | None) -> None:
            try:
                loop.call_soon_threadsafe(out.put_nowait, item)
            except RuntimeError:  # the loop is closed: nobody is listening any more
                stop.set()

        try:
            for index, chunk in enumerate(self._voice.synthesize(text, self._synthesis)):
                if stop.is_set():
                    return
                self.counters["sentences"] += 1
                put((silence if index else b"") + chunk.audio_int16_bytes)
        except Exception as exc:
            put(exc)
            return
        put(None)

    def _pieces(self, chunk: AudioChunk, converter: AudioConverter | None) -> list[AudioChunk]:
        converted = converter.convert(chunk) if converter is not None else [chunk]
        pieces = [p for c in converted for p in split(c, max(1, int(c.sample_rate * CHUNK_SECONDS))) if p.frames]
        self.counters["seconds"] += sum(p.duration for p in pieces)
        return pieces


def _short(text: str, length: int = 40) -> str:
    return text if len(text) <= length else text[: length - 1] + "…"


def _retrieve(job: asyncio.Future) -> None:
    """Read a finished synthesis job's outcome, so that a cut-off reply's error is not logged as unretrieved."""
    if not job.cancelled():
        job.exception()


@hookimpl
def magoo_register_tts(register):
    register(PiperTextToSpeech)
