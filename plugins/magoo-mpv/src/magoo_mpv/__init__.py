"""magoo player ``mpv``: streams a reply into an mpv that is already running and waiting.

Low latency by design: the next mpv process is started as soon as the previous reply ended,
with flags that make it start decoding MP3 after about 2 KB instead of 8 KB, so the first sound
comes about 75–85 ms after the first bytes (``bench/speak.py``). Sound start and end are what
mpv reports over its JSON IPC (its audio clock, corrected for the output delay), not when bytes
were written, and the envelope of what is heard is reported 20–55 times a second.

At start, mpv plays 50 ms of silence on the configured output, so a missing or wrong output
stops the start (``output_check.py``). When mpv is missing, ``mpg123`` plays MP3 replies instead
(the player says so once).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
from collections.abc import AsyncIterator, Sequence
from typing import TYPE_CHECKING, ClassVar, Literal

from pydantic import Field

from magoo_core.errors import BackendError
from magoo_core.plugins import hookimpl
from magoo_core.fields import Count, Seconds, StrictBool
from magoo_core.roles import Backend, BackendConfig, PlaybackProgress
from magoo_core.types import AudioChunk, AudioFormat, EncodedAudio

from .envelope import EnvelopePacer
from .fallback import Mpg123Process
from .output_check import SILENCE, SILENCE_OPTIONS, check_output
from .process import MpvProcess, PlayerProcess
from .streams import StreamKind, payload

if TYPE_CHECKING:
    from magoo_core.doctor import Check

log = logging.getLogger("magoo.mpv")

#: start decoding after ~2 KB of MP3 instead of ~8 KB (mpv's default probe)
LOW_LATENCY_FLAGS = ("--cache=no", "--demuxer-lavf-probesize=32", "--demuxer-lavf-analyzeduration=0")


@hookimpl
def magoo_register_players(register):
    register(MpvPlayer)


class MpvPlayer(Backend):
    """Plays each reply through mpv fed on stdin (mpg123 when mpv is not installed)."""

    name: ClassVar[str] = "mpv"

    class Config(BackendConfig):
        audio_device: str = Field(
            "auto",
            description="mpv's --audio-device: 'auto', 'pulse', 'alsa/plughw:1' ... (`mpv --audio-device=help` lists them).",
        )
        volume: Count(0, 130) = Field(100, description="Playback volume in percent (above 100 amplifies).")
        extra_args: list[str] = Field(default_factory=list, description="More mpv options, e.g. ['--audio-channels=mono'].")
        mpv: str = Field("mpv", description="The mpv binary (a name on PATH or a path).")
        fallback: Literal["mpg123", "none"] = Field(
            "mpg123", description="What plays MP3 replies when mpv is not installed."
        )
        mpg123: str = Field("mpg123", description="The mpg123 binary, for the fallback.")
        envelope: StrictBool = Field(True, description="Report the level of what is heard (for a servo mouth, LEDs).")
        stall_timeout: Seconds(0.05, 600) = Field(
            5.0, description="Seconds a player may hold unplayed audio without progress before it counts as hung."
        )
        check_output: StrictBool = Field(
            True,
            description="At start, play 50 ms of silence to check the audio output opens; a failure stops the start with mpv's reason.",
        )

    config: Config

    @classmethod
    def doctor(cls, config: Config, section: str) -> list[Check]:
        """``magoo doctor``: mpv is there, and plays through ``audio_device`` (the start check, run once)."""
        from .doctor import player_rows

        return player_rows(cls(config), section)

    def __init__(self, config: Config) -> None:
        super().__init__(config)
        self._binary: str | None = None
        self._spare: PlayerProcess | None = None
        self._spare_kind: StreamKind = StreamKind("mp3")
        self._current: PlayerProcess | None = None
        self._preparing: asyncio.Task | None = None
        self._stopping = False
        self._plays = 0
        self._spawned = 0
        self._volume = config.volume  # set_volume() changes it for the next sound

    async def __aenter__(self) -> MpvPlayer:
        """Find the player, check the output opens, and start the first waiting process.

        :raises BackendError: no player is installed, or mpv cannot open the audio output
            (retryable: a device or a sound server may come back).
        """
        self._binary = self._find_binary()
        try:  # side by side: the waiting mpv does not open the output
            results = await asyncio.gather(self._check_output(), self._prepare(self._spare_kind), return_exceptions=True)
            for result in results:  # the check's error first: it saw all of mpv's output
                if isinstance(result, BaseException):
                    raise result
        except BaseException:  # also a cancelled start: no waiting mpv may outlive it
            await asyncio.shield(self.__aexit__(None, None, None))
            raise
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        if self._preparing is not None:
            self._preparing.cancel()
            await asyncio.gather(self._preparing, return_exceptions=True)
        for process in (self._current, self._spare):
            if process is not None:
                await process.kill()
        self._current = self._spare = None

    def stats(self) -> dict[str, float]:
        return {"plays": self._plays, "processes": self._spawned}

    @classmethod
    def plays(cls, config: Config, output: AudioFormat | str) -> str | None:
        """None for what mpv reads from a pipe (16-bit PCM, mp3, opus, wav, flac ...); else why not."""
        if StreamKind.expected(output) is not None:
            return None
        if isinstance(output, AudioFormat):
            return f"it streams 16-bit PCM, not {8 * output.sample_width}-bit"
        return "it streams mp3, opus, ogg, wav, flac, aac or PCM"

    async def expect(self, output: AudioFormat | str) -> None:
        """The TTS's replies are ``output``: swap the waiting mpv for one started for that kind, in
        the background, so the first reply does not pay for starting it (about 0.2 s here)."""
        kind = StreamKind.expected(output)
        if kind is None or kind == self._spare_kind:
            return
        if self._preparing is not None:
            await asyncio.gather(self._preparing, return_exceptions=True)
        spare, self._spare, self._spare_kind = self._spare, None, kind
        if spare is not None:
            await spare.kill()
        self._prepare_soon()

    async def play(self, audio: AsyncIterator[AudioChunk | EncodedAudio], progress: PlaybackProgress) -> None:
        """Play the stream; returns when the sound has really ended, or promptly after stop().

        Calls ``progress.started()`` when the player's audio clock starts and
        ``progress.played(level, duration)`` for each ~20–55 ms block as it is heard.

        :raises BackendError: the player died, hung or could not play the stream.
        """
        self._stopping = False
        iterator = aiter(audio)
        try:
            first = await anext(iterator)
        except StopAsyncIteration:
            return
        kind = StreamKind.of(first)
        process = await self._take(kind)
        if self._stopping:  # stopped before the first sound: this process waits for the next reply
            self._spare, self._spare_kind = process, kind
            return
        self._current = process
        self._plays += 1
        report = _Report(progress)
        pacer = process.pacer = EnvelopePacer(report.played) if self.config.envelope else None
        feeding = asyncio.create_task(self._feed(process, first, iterator), name="mpv-feed")
        tasks = [feeding, asyncio.create_task(report.start_when(process.started), name="mpv-start")]
        if pacer is not None:
            tasks.append(asyncio.create_task(pacer.run(), name="mpv-envelope"))
        watchdog = asyncio.create_task(self._watch(process, feeding), name="mpv-watchdog")
        try:
            await process.wait_end()
            if pacer is not None:
                pacer.flush()
            if not feeding.done():  # mpv ended before the TTS did: it stopped reading
                raise BackendError("mpv ended the reply early")
            feeding.result()
        except BackendError:
            if self._stopping:
                return
            raise
        finally:
            for task in (*tasks, watchdog):
                task.cancel()
            await asyncio.gather(*tasks, watchdog, return_exceptions=True)
            await process.kill()
            self._current = None
            self._spare_kind = kind
            self._prepare_soon()

    async def stop(self) -> None:
        """Silence the current reply at once (barge-in); ``play()`` then returns normally."""
        self._stopping = True
        if self._current is not None:
            self._current.ended.set()
            await self._current.kill()

    async def _feed(self, process: PlayerProcess, first: AudioChunk | EncodedAudio, rest: AsyncIterator) -> None:
        try:
            await process.write(payload(first))
            async for piece in rest:
                await process.write(payload(piece))
        except (BrokenPipeError, ConnectionResetError):
            return  # the process is gone; wait_end() says why
        finally:  # also when the stream itself fails: mpv plays what it got, then play() re-raises
            await process.close_input()

    async def _watch(self, process: PlayerProcess, feeding: asyncio.Task) -> None:
        """Kill a player that holds audio it does not play (a stuck output), so play() cannot hang.

        While the TTS is slow the player rightly waits for more; it is stuck only when it holds
        audio (the input is closed, or a write waits for it to take more) and its clock stands.
        """
        loop = asyncio.get_running_loop()
        timeout = self.config.stall_timeout
        last, still_since = process.position, loop.time()
        while True:
            await asyncio.sleep(min(0.25, timeout / 4))
            holding = feeding.done() or process.write_blocked_since is not None
            if not holding or process.position != last:
                last, still_since = process.position, loop.time()
            elif loop.time() - still_since > timeout:
                log.warning("%s made no progress for %.0f s; killing it", process.binary, timeout)
                process.end_error = f"no sound for {timeout:.0f} s with audio waiting (the output is stuck)"
                process.ended.set()  # before the kill, so play() reports this and not the signal
                await process.kill()
                return

    async def set_volume(self, percent: int) -> None:
        """Play from the next sound on at ``percent`` (0-130; the sound playing now keeps its own):
        the waiting process, started with the old volume, is replaced. For the control API's volume."""
        if not 0 <= percent <= 130:
            raise ValueError(f"volume {percent} is out of range: give 0 to 130 (%)")
        self._volume = percent
        if self._preparing is not None:
            await asyncio.gather(self._preparing, return_exceptions=True)
        spare, self._spare = self._spare, None
        if spare is not None:
            await spare.kill()
            self._prepare_soon()

    async def _take(self, kind: StreamKind) -> PlayerProcess:
        """The waiting process if it suits this stream, else a new one."""
        if self._preparing is not None:
            await asyncio.gather(self._preparing, return_exceptions=True)
        spare, self._spare = self._spare, None
        if spare is not None and spare.alive and self._spare_kind == kind:
            return spare
        if spare is not None:
            if not spare.alive:
                log.warning("the waiting %s had exited; starting a new one", spare.binary)
            await spare.kill()
        return await self._spawn(kind)

    async def _prepare(self, kind: StreamKind) -> None:
        self._spare = await self._spawn(kind)
        self._spare_kind = kind

    def _prepare_soon(self) -> None:
        """Start the next waiting process in the background (a failure shows at the next play)."""

        async def prepare() -> None:
            with contextlib.suppress(BackendError):
                await self._prepare(self._spare_kind)
            self._preparing = None

        if self._spare is None and self._preparing is None:
            self._preparing = asyncio.get_running_loop().create_task(prepare(), name="mpv-spare")

    async def _spawn(self, kind: StreamKind) -> PlayerProcess:
        assert self._binary is not None
        if self._binary == "mpg123":
            if kind.codec not in ("mp3", "mpeg"):
                raise BackendError(
                    f"mpg123 (used because mpv is not installed) cannot play {kind.codec}; install mpv (sudo apt install mpv)",
                    retryable=False,
                )
            process: PlayerProcess = Mpg123Process(self.config.mpg123, self.config.audio_device, self._volume)
        else:
            process = MpvProcess(self._mpv_args(kind), envelope=self.config.envelope)
        try:
            await process.spawn()
        except BaseException:  # including a cancelled start: no process may outlive its owner
            await asyncio.shield(process.kill())
            raise
        self._spawned += 1
        return process

    async def _check_output(self) -> None:
        # mpg123 is not checked: without an output it does not fail dependably (it crashes when no
        # PulseAudio server answers, and spins forever when there is no ALSA card either), and it
        # would need an MP3 to play. Its replies fail at play time, as before.
        if self.config.check_output and self._binary != "mpg123":
            await check_output(self._mpv_command(SILENCE_OPTIONS, SILENCE), self.config.audio_device)

    def _mpv_args(self, kind: StreamKind) -> list[str]:
        if kind.demuxer is not None:
            stream = [f"--demuxer-lavf-format={kind.demuxer}"]
        else:
            stream = [
                "--demuxer=rawaudio",
                "--demuxer-rawaudio-format=s16le",
                f"--demuxer-rawaudio-rate={kind.sample_rate}",
                f"--demuxer-rawaudio-channels={kind.channels}",
            ]
        return self._mpv_command([*LOW_LATENCY_FLAGS, *stream], "-")

    def _mpv_command(self, input_args: Sequence[str], source: str) -> list[str]:
        """mpv playing ``source`` with the output options every run shares, the start check's too."""
        return [
            self._binary or self.config.mpv,
            "--no-config",
            "--no-video",
            "--no-input-terminal",
            "--idle=no",
            "--msg-level=all=error",
            "--term-playing-msg=",
            f"--audio-device={self.config.audio_device}",
            f"--volume={self._volume}",
            *input_args,
            *self.config.extra_args,
            source,
        ]

    def _find_binary(self) -> str:
        mpv = shutil.which(self.config.mpv)
        if mpv is not None:
            return mpv
        if self.config.fallback == "mpg123" and shutil.which(self.config.mpg123) is not None:
            log.warning("mpv is not installed; playing MP3 replies with mpg123 (install mpv: sudo apt install mpv)")
            return "mpg123"
        raise BackendError(
            f"the mpv player needs '{self.config.mpv}', which is not installed: sudo apt install mpv", retryable=False
        )


class _Report:
    """Tells the engine about one reply's sound: the start always before any level."""

    def __init__(self, progress: PlaybackProgress) -> None:
        self._progress = progress
        self._started = False

    def started(self) -> None:
        if not self._started:
            self._started = True
            self._progress.started()

    async def start_when(self, event: asyncio.Event) -> None:
        await event.wait()
        self.started()

    def played(self, level: float, duration: float) -> None:
        self.started()
        self._progress.played(level, duration)

