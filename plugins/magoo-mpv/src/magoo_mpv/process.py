"""One player process: spawned ahead of time, fed one reply on stdin, watched until sound ends.

:class:`PlayerProcess` is the shared machinery (spawn, stdin, exit, stderr tail, kill);
:class:`MpvProcess` adds mpv's JSON IPC (``playback-restart``, ``time-pos``, ``end-file``) and
the level pipe. All methods run on the event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import tempfile
from collections import deque
from collections.abc import Sequence
from pathlib import Path

from magoo_core.errors import BackendError

from .envelope import EnvelopePacer, LevelParser

log = logging.getLogger("magoo.mpv")

_STDERR_LINES = 5

#: what to do about an audio output mpv cannot open, at start (output_check.py) and while playing
OUTPUT_FIX = "check [player] audio_device (`mpv --audio-device=help` lists them) and that a sound server or a speaker is there"


def exit_wording(returncode: int | None) -> str:
    """How a process ended: ``exited with code 2``, ``was killed by SIGKILL``."""
    if returncode is not None and returncode < 0:
        return f"was killed by {signal.Signals(-returncode).name}"
    return f"exited with code {returncode}"


class PlayerProcess:
    """A player binary reading one stream from stdin.

    Subclasses set :attr:`started` when sound begins and :attr:`ended` when it has ended, and
    may feed :attr:`pacer`. A process that exits before ``ended`` raises :class:`BackendError`
    from :meth:`wait_end`.
    """

    binary = "player"

    def __init__(self, args: Sequence[str], *, pass_fds: Sequence[int] = (), env: dict[str, str] | None = None) -> None:
        self.args = list(args)
        self._pass_fds = tuple(pass_fds)
        self._env = env
        self.proc: asyncio.subprocess.Process | None = None
        self.started = asyncio.Event()
        self.ended = asyncio.Event()
        self.end_error: str | None = None
        self.pacer: EnvelopePacer | None = None
        self.killed = False
        self._position: float | None = None
        #: loop time since which a write has been waiting for the player to take more, or None
        self.write_blocked_since: float | None = None
        self._stderr: deque[str] = deque(maxlen=_STDERR_LINES)
        self._tasks: list[asyncio.Task] = []

    async def spawn(self) -> None:
        """Start the process; it waits on stdin without opening the audio device.

        :raises BackendError: the binary cannot be started.
        """
        try:
            self.proc = await asyncio.create_subprocess_exec(
                *self.args,
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.PIPE,
                pass_fds=self._pass_fds,
                env=self._env,
                start_new_session=True,  # a Ctrl-C in the terminal is magoo's to handle, not the player's
            )
        except OSError as exc:
            raise BackendError(f"cannot start {self.args[0]}: {exc.strerror or exc}", retryable=False) from None
        self._tasks.append(asyncio.create_task(self._read_stderr(), name=f"{self.binary}-stderr"))

    @property
    def position(self) -> float | None:
        """The stream position being heard (seconds), as last reported; None before the start."""
        return self._position

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.returncode is None

    async def write(self, data: bytes) -> None:
        """Send audio bytes; blocks while the pipe is full (the player is behind)."""
        assert self.proc is not None and self.proc.stdin is not None
        self.proc.stdin.write(data)
        self.write_blocked_since = asyncio.get_running_loop().time()
        try:
            await self.proc.stdin.drain()
        finally:
            self.write_blocked_since = None

    async def close_input(self) -> None:
        """End of the reply: the player plays what it has, then ends."""
        assert self.proc is not None and self.proc.stdin is not None
        with contextlib.suppress(OSError):
            self.proc.stdin.close()
            await self.proc.stdin.wait_closed()

    async def wait_end(self) -> None:
        """Wait until the sound has ended.

        :raises BackendError: the process died, or it reported a playback error.
        """
        assert self.proc is not None
        exited = asyncio.create_task(self.proc.wait())
        ended = asyncio.create_task(self.ended.wait())
        try:
            await asyncio.wait({exited, ended}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            exited.cancel()
            ended.cancel()
        if not self.ended.is_set():
            with contextlib.suppress(TimeoutError):  # the last stderr lines explain the death
                await asyncio.wait_for(asyncio.shield(self._tasks[0]), 0.5)
            raise BackendError(self._death_message())
        if self.end_error is not None:
            raise BackendError(f"{self.binary} could not play the reply: {self.end_error}{self._stderr_tail()}")

    async def kill(self) -> None:
        """Silence at once and reap the process; safe to call at any time, more than once."""
        if self.alive:
            self.killed = True
            with contextlib.suppress(ProcessLookupError):
                self.proc.kill()
        if self.proc is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.proc.wait(), 5.0)
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self.cleanup()

    def cleanup(self) -> None:
        """Release files and descriptors (the process is gone)."""

    def _death_message(self) -> str:
        code = self.proc.returncode if self.proc is not None else None
        return f"{self.binary} {exit_wording(code)} while playing{self._stderr_tail()}"

    def _stderr_tail(self) -> str:
        return f" ({' | '.join(self._stderr)})" if self._stderr else ""

    async def _read_stderr(self) -> None:
        assert self.proc is not None and self.proc.stderr is not None
        async for raw in self.proc.stderr:
            line = raw.decode("utf-8", "replace").strip()
            if line:
                self._stderr.append(line)
                log.debug("%s: %s", self.binary, line)


class MpvProcess(PlayerProcess):
    """mpv reading one stream from stdin, reporting over JSON IPC and a level pipe.

    Sound start is mpv's ``playback-restart`` (its audio clock is running); the heard position
    is ``time-pos``, which mpv corrects for the output delay; the end is ``end-file``, which mpv
    sends after the output has drained.
    """

    binary = "mpv"

    def __init__(self, args: Sequence[str], *, envelope: bool, env: dict[str, str] | None = None) -> None:
        self._dir = Path(tempfile.mkdtemp(prefix="magoo-mpv-"))
        self.socket_path = self._dir / "ipc"
        self._levels_read: int | None = None
        levels_write: int | None = None
        extra = [f"--input-ipc-server={self.socket_path}"]
        if envelope:
            from .envelope import level_filter

            self._levels_read, levels_write = os.pipe()
            extra.append(f"--af-append={level_filter(f'/dev/fd/{levels_write}')}")
        # the stream argument "-" stays last
        super().__init__([*args[:-1], *extra, args[-1]], pass_fds=() if levels_write is None else (levels_write,), env=env)
        self._levels_write = levels_write
        self._writer: asyncio.StreamWriter | None = None

    async def spawn(self) -> None:
        try:
            await super().spawn()
        finally:
            if self._levels_write is not None:
                os.close(self._levels_write)  # mpv holds its own copy
                self._levels_write = None
        try:
            reader, self._writer = await self._connect()
        except BackendError:
            await self.kill()
            raise
        self._tasks.append(asyncio.create_task(self._read_events(reader), name="mpv-ipc"))
        if self._levels_read is not None:
            self._tasks.append(asyncio.create_task(self._read_levels(self._levels_read), name="mpv-levels"))
            self._levels_read = None
        await self._command("observe_property", 1, "time-pos")

    async def _connect(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        for _ in range(200):
            if not self.alive:
                await asyncio.sleep(0.1)  # let stderr arrive for the message
                raise BackendError(self._death_message().replace(" while playing", " at start"), retryable=False)
            try:
                return await asyncio.open_unix_connection(str(self.socket_path))
            except (FileNotFoundError, ConnectionRefusedError):
                await asyncio.sleep(0.025)
        raise BackendError("mpv started but did not open its control socket within 5 s")

    async def _command(self, *command: object) -> None:
        assert self._writer is not None
        self._writer.write(json.dumps({"command": list(command)}).encode() + b"\n")
        with contextlib.suppress(OSError):
            await self._writer.drain()

    async def _read_events(self, reader: asyncio.StreamReader) -> None:
        async for line in reader:
            try:
                message = json.loads(line)
            except ValueError:
                continue
            self._on_message(message)

    def _on_message(self, message: dict) -> None:
        event = message.get("event")
        if event == "playback-restart":
            self.started.set()
        elif event == "property-change" and message.get("name") == "time-pos":
            position = message.get("data")
            if isinstance(position, (int, float)):
                self.started.set()
                self._position = float(position)
                if self.pacer is not None:
                    self.pacer.heard(float(position))
        elif event == "end-file":
            if message.get("reason") == "error":
                self.end_error = message.get("file_error") or "playback error"
                if "audio output" in self.end_error:
                    self.end_error += f"; {OUTPUT_FIX}"
            self.ended.set()

    async def _read_levels(self, fd: int) -> None:
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader()
        transport, _ = await loop.connect_read_pipe(
            lambda: asyncio.StreamReaderProtocol(reader), os.fdopen(fd, "rb", buffering=0)
        )
        parser = LevelParser()
        try:
            while data := await reader.read(4096):
                levels = parser.feed(data)
                if levels and self.pacer is not None:
                    self.pacer.add(levels)
        finally:
            transport.close()

    def cleanup(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None
        if self._levels_read is not None:
            os.close(self._levels_read)
            self._levels_read = None
        with contextlib.suppress(OSError):
            self.socket_path.unlink(missing_ok=True)
            self._dir.rmdir()
