"""magoo-espeak: offline text-to-speech with espeak-ng, streamed from its process.

Each reply runs ``espeak-ng --stdout`` with the text on stdin. espeak-ng writes a WAV stream
while it synthesizes, with placeholder sizes in its header (it cannot know the length yet);
:class:`~magoo_core.audio.WavStreamDecoder` ignores those sizes, so every piece read from the
pipe becomes audio at once and the first sound does not wait for the last sentence.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, ClassVar

from pydantic import Field

from magoo_core import AudioChunk, AudioFormat, Backend, BackendConfig, BackendError, hookimpl
from magoo_core.fields import Count, SampleRate
from magoo_core.audio import AudioConverter, WavStreamDecoder, split

if TYPE_CHECKING:
    from magoo_core.doctor import Check

__all__ = ["ESPEAK_RATE", "EspeakTextToSpeech"]

log = logging.getLogger("magoo.espeak")

#: The rate espeak-ng synthesizes at (16-bit mono).
ESPEAK_RATE = 22050
#: Bytes read from espeak-ng's stdout at a time.
READ_SIZE = 4096
#: Longest chunk handed to the player, in seconds.
CHUNK_SECONDS = 0.1
#: Seconds the voice check at start may take.
CHECK_TIMEOUT = 10.0
INSTALL = "sudo apt install espeak-ng"


class EspeakTextToSpeech(Backend):
    """espeak-ng in a subprocess: its audio is handed on while it is still synthesizing the rest."""

    name: ClassVar[str] = "espeak"

    class Config(BackendConfig):
        voice: str = Field(
            "en-us", min_length=1,
            description="espeak-ng voice (-v): a language such as en-us, en-gb, de, optionally with a variant "
            "(en-us+f3); `espeak-ng --voices` lists them.",
        )
        speed: Count(80, 450) = Field(160, description="Speaking rate in words per minute (-s, 80-450).")
        pitch: Count(0, 99) = Field(50, description="Pitch (-p, 0-99; 50 is the voice's normal pitch).")
        amplitude: Count(0, 200) = Field(100, description="Loudness (-a, 0-200; 100 is normal).")
        gap: Count(0, 500) = Field(0, description="Extra pause between words in units of 10 ms (-g).")
        binary: str = Field("espeak-ng", min_length=1, description="The espeak-ng binary (a name on PATH or a path).")
        sample_rate: SampleRate | None = Field(
            None, description="Resample the output to this rate in Hz; unset keeps espeak-ng's 22050 Hz."
        )

    config: Config

    @classmethod
    def doctor(cls, config: Config, section: str) -> list[Check]:
        """``magoo doctor``: the espeak-ng binary is there, with its version."""
        from magoo_core.doctor import binary_version, fail, ok

        path, version = binary_version(config.binary)
        if path is not None:
            return [ok(config.binary, f"{version or config.binary} at {path}")]
        install = INSTALL if config.binary == "espeak-ng" else f"{INSTALL}, or fix binary in {section}"
        return [fail(config.binary, f"not on PATH, and {section} espeak speaks the replies", install)]

    def __init__(self, config: Config) -> None:
        super().__init__(config)
        self._binary: str | None = None
        #: The espeak-ng process of the latest reply, running or finished; None before the first.
        #: Tests and benches read it (its ``returncode`` says whether synthesis is still going).
        self.process: asyncio.subprocess.Process | None = None
        self.counters = {"replies": 0, "failures": 0, "seconds": 0.0}

    async def __aenter__(self) -> EspeakTextToSpeech:
        """Find the binary and check once that the voice exists, so a typo fails here, not at the first reply.

        :raises BackendError: espeak-ng is not installed, or has no such voice (not retryable).
        """
        binary = shutil.which(self.config.binary)
        if binary is None:
            raise BackendError(f"{self.config.binary} is not installed: {INSTALL}", retryable=False)
        self._binary = binary
        await self._check_voice()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        if self.process is not None:
            await _stop(self.process)

    def stats(self) -> dict[str, float]:
        """Replies spoken, replies that failed, seconds of audio produced."""
        return dict(self.counters)

    @property
    def output_rate(self) -> int:
        """The sample rate of the audio this backend yields."""
        return self.config.sample_rate or ESPEAK_RATE

    @classmethod
    def output_kind(cls, config: Config) -> AudioFormat:
        """What every reply with ``config`` is, known before start: mono 16-bit PCM."""
        return AudioFormat(config.sample_rate or ESPEAK_RATE)

    @property
    def output_format(self) -> AudioFormat:
        """What every reply is: mono 16-bit PCM at :attr:`output_rate` (the player gets ready for it)."""
        return self.output_kind(self.config)

    def command(self) -> list[str]:
        """The espeak-ng command line of one reply; the text goes to its stdin, as UTF-8 (``-b 1``)."""
        cfg = self.config
        return [
            self._binary or cfg.binary, "--stdout", "-b", "1", "-v", cfg.voice, "-s", str(cfg.speed),
            "-p", str(cfg.pitch), "-a", str(cfg.amplitude), "-g", str(cfg.gap),
        ]

    async def synthesize(self, text: str) -> AsyncIterator[AudioChunk]:
        """Speak ``text``: yield 16-bit mono chunks of at most 100 ms as espeak-ng writes them.

        Text that is empty or only whitespace yields nothing. Closing the generator early
        (barge-in) kills espeak-ng at once and reaps it.

        :raises BackendError: espeak-ng could not start, wrote something that is not WAV, or
            exited with an error (its last stderr lines are in the message).
        """
        if self._binary is None:
            raise BackendError("the espeak backend is not started (use it inside 'async with')", retryable=False)
        if not text.strip():
            return
        self.counters["replies"] += 1
        try:
            proc = await asyncio.create_subprocess_exec(
                *self.command(),
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                start_new_session=True,  # a Ctrl-C in the terminal is magoo's to handle
            )
        except OSError as exc:
            self.counters["failures"] += 1
            raise BackendError(f"cannot start {self._binary}: {exc.strerror or exc}") from None
        self.process = proc
        # stdin is written by its own task: a text longer than the pipe holds would otherwise
        # block while espeak-ng waits for us to read its stdout.
        feeder = asyncio.create_task(_feed(proc, text.encode("utf-8")), name="espeak-stdin")
        errors = asyncio.create_task(proc.stderr.read(), name="espeak-stderr")
        decoder = WavStreamDecoder()
        converter = AudioConverter(AudioFormat(self.config.sample_rate)) if self.config.sample_rate else None
        log.debug("speaking %d chars with %s", len(text), " ".join(self.command()[1:]))
        try:
            while data := await proc.stdout.read(READ_SIZE):
                try:
                    chunk = decoder.feed(data)
                except ValueError as exc:
                    raise BackendError(f"espeak-ng wrote unreadable audio ({exc})") from None
                if chunk is not None:
                    for piece in self._pieces(chunk, converter):
                        yield piece
            if converter is not None:
                for tail in converter.flush():
                    for piece in self._pieces(tail, None):
                        yield piece
            code = await proc.wait()
            if code != 0 or decoder.format is None:
                said = _tail(await errors)
                raise BackendError(
                    f"espeak-ng failed (exit code {code})" + (f": {said}" if said else "")
                    + ("" if code else ": it wrote no audio")
                )
        except BackendError:
            self.counters["failures"] += 1
            raise
        finally:
            await _stop(proc)
            for task in (feeder, errors):
                task.cancel()
            await asyncio.gather(feeder, errors, return_exceptions=True)

    def _pieces(self, chunk: AudioChunk, converter: AudioConverter | None) -> list[AudioChunk]:
        converted = converter.convert(chunk) if converter is not None else [chunk]
        pieces = [p for c in converted for p in split(c, max(1, int(c.sample_rate * CHUNK_SECONDS))) if p.frames]
        self.counters["seconds"] += sum(p.duration for p in pieces)
        return pieces

    async def _check_voice(self) -> None:
        """Synthesize one letter without output (``-q``); espeak-ng exits 1 for an unknown voice."""
        try:
            proc = await asyncio.create_subprocess_exec(
                self._binary, "-q", "-v", self.config.voice, "x",
                stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.PIPE, start_new_session=True,
            )
        except OSError as exc:
            raise BackendError(f"cannot start {self._binary}: {exc.strerror or exc}", retryable=False) from None
        try:
            _, stderr = await asyncio.wait_for(proc.communicate(), CHECK_TIMEOUT)
        except TimeoutError:
            await _stop(proc)
            raise BackendError(f"{self._binary} did not answer within {CHECK_TIMEOUT:g} s", retryable=False) from None
        said = _tail(stderr)
        if proc.returncode != 0:
            if "voice" in said.lower():
                raise BackendError(
                    f"espeak-ng has no voice {self.config.voice!r}: set [tts] voice to one that "
                    "`espeak-ng --voices` lists (en-us, en-gb, de, ...)",
                    retryable=False,
                )
            raise BackendError(
                f"espeak-ng does not work (exit code {proc.returncode})" + (f": {said}" if said else ""),
                retryable=False,
            )


async def _feed(proc: asyncio.subprocess.Process, data: bytes) -> None:
    """Write the text and close stdin; a process that is gone (killed on barge-in) is no error."""
    with contextlib.suppress(BrokenPipeError, ConnectionResetError):
        proc.stdin.write(data)
        await proc.stdin.drain()
        proc.stdin.close()


async def _stop(proc: asyncio.subprocess.Process) -> None:
    """Kill ``proc`` if it still runs and wait until it is reaped.

    What it wrote and nobody read is read and dropped first: asyncio stops reading a pipe whose
    buffer is full, never sees its end then, and ``wait()`` waits for that end (a reply cut off
    at shutdown hung here until the engine gave up on it).
    """
    if proc.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
    if proc.stdout is not None:
        with contextlib.suppress(Exception):
            while await proc.stdout.read(READ_SIZE):
                pass
    await proc.wait()


def _tail(stderr: bytes, lines: int = 3) -> str:
    """The last non-empty lines of what a process wrote to stderr, on one line."""
    text = stderr.decode("utf-8", "replace").strip().splitlines()
    return " | ".join(line.strip() for line in text[-lines:] if line.strip())


@hookimpl
def magoo_register_tts(register):
    register(EspeakTextToSpeech)
