"""mpg123 in place of mpv, for MP3 replies on a machine without mpv.

mpg123 has no way to report when sound comes out, so a second mpg123 decodes the same bytes to
16 kHz PCM: its first samples mark the start and their levels, paced at real time from there,
are the envelope. The start comes a little before the sound (the safe side for muting the
microphone). The player process exits after its output has drained, which is the end.
"""

from __future__ import annotations

import asyncio
import contextlib
import time

from magoo_core.audio import FULL_SCALE

from .envelope import Level
from .process import PlayerProcess

DECODE_RATE = 16000
BLOCK = 640  # 40 ms at 16 kHz: 25 levels a second


def output_args(audio_device: str) -> list[str]:
    """mpv's ``--audio-device`` spelling (``alsa/plughw:1``, ``pulse``) as mpg123 options."""
    if audio_device in ("", "auto"):
        return []
    module, _, device = audio_device.partition("/")
    return ["-o", module, *(["-a", device] if device else [])]


class Mpg123Process(PlayerProcess):
    """An mpg123 that plays, and a second one that decodes the same bytes for timing and levels."""

    binary = "mpg123"

    def __init__(self, mpg123: str, audio_device: str, volume: int) -> None:
        scale = str(round(32768 * volume / 100))
        super().__init__([mpg123, "-q", *output_args(audio_device), "-f", scale, "-"])
        self._decoder_args = [mpg123, "-q", "-s", "-m", "-r", str(DECODE_RATE), "-e", "s16", "-"]
        self._decoder: asyncio.subprocess.Process | None = None
        self._start: float | None = None
        self._decoded = 0  # samples at DECODE_RATE

    async def spawn(self) -> None:
        await super().spawn()
        self._decoder = await asyncio.create_subprocess_exec(
            *self._decoder_args,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.DEVNULL,
            start_new_session=True,
        )
        self._tasks.append(asyncio.create_task(self._decode(), name="mpg123-decode"))
        self._tasks.append(asyncio.create_task(self._exit(), name="mpg123-exit"))

    async def write(self, data: bytes) -> None:
        assert self._decoder is not None and self._decoder.stdin is not None
        self._decoder.stdin.write(data)
        await super().write(data)
        with contextlib.suppress(OSError):
            await self._decoder.stdin.drain()

    async def close_input(self) -> None:
        assert self._decoder is not None and self._decoder.stdin is not None
        with contextlib.suppress(OSError):
            self._decoder.stdin.close()
        await super().close_input()

    async def kill(self) -> None:
        if self._decoder is not None and self._decoder.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self._decoder.kill()
            await self._decoder.wait()
        await super().kill()

    async def _decode(self) -> None:
        import numpy as np  # here, not when `magoo plugins` imports the plugin

        assert self._decoder is not None and self._decoder.stdout is not None
        while data := await _read_block(self._decoder.stdout):
            if self._start is None:
                self._start = time.monotonic()
                self.started.set()
                if self.pacer is not None:
                    self.pacer.heard(0.0, at=self._start)
            block = np.frombuffer(data[: len(data) // 2 * 2], dtype="<i2").astype(np.float64)
            if self.pacer is not None and block.size:
                self.pacer.add([Level(self._decoded / DECODE_RATE, float(np.sqrt(np.mean(block * block))) / FULL_SCALE)])
            self._decoded += block.size

    @property
    def position(self) -> float | None:
        """Real time since the sound started, but never past what was decoded (an underrun)."""
        if self._start is None:
            return None
        return max(0.0, min(self._decoded / DECODE_RATE, time.monotonic() - self._start))

    async def _exit(self) -> None:
        assert self.proc is not None
        if await self.proc.wait() == 0:
            self.ended.set()


async def _read_block(stream: asyncio.StreamReader) -> bytes:
    try:
        return await stream.readexactly(BLOCK * 2)
    except asyncio.IncompleteReadError as exc:
        return exc.partial
