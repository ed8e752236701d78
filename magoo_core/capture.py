"""Capture from a sound device that never freezes: the shared base of callback-driven sources.

The original listener read its microphone with a blocking ``stream.read()`` and froze for good
after hours. Here the driver calls back from its own thread with each buffer, and
:meth:`CaptureSink.deliver` only wraps the bytes and hands them to a :class:`CaptureQueue`
(never blocking, never logging, never starting a thread); a full queue drops the oldest audio
and counts it. Everything else runs on the event loop, with the driver's blocking calls moved to
a worker thread:

- choosing the device (a part of its name, an index, or the system default);
- negotiating the sample rate (``"auto"`` tries :data:`PREFERRED_RATES` in order) and the
  channel count, then mixing to mono or keeping one channel;
- waiting for the device at start (a USB microphone that is slow to appear at boot);
- a watchdog that notices (a) no buffers for ``stall_timeout`` seconds, (b) the stream no longer
  active or lost by the driver, (c) "stuck" audio, a level exactly the same for ``stuck_after``
  seconds (digital zeros from a vanished device). Any of them closes the stream and makes
  ``stream()`` raise :class:`~magoo_core.errors.BackendError`; the engine reports the error,
  waits with capped backoff and calls ``stream()`` again, which re-enumerates the devices (so a
  replugged USB microphone is found again) and reopens. The process never exits because a
  microphone went away.

A driver plugin (``magoo-pyaudio``, ``magoo-sounddevice``) subclasses :class:`DeviceCapture` and
implements two blocking class methods, :meth:`DeviceCapture.list_devices` and
:meth:`DeviceCapture.open_stream`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from array import array
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any, ClassVar, Literal, Protocol, TypeVar

from pydantic import Field, field_validator, model_validator

from .audio import mix_to_mono, rms_level
from .capture_queue import CaptureQueue
from .errors import BackendError
from .fields import Count, SampleRate, Seconds
from .roles import Backend, BackendConfig
from .types import AudioChunk, AudioFormat, DeviceInfo

log = logging.getLogger("magoo.capture")

PREFERRED_RATES = (16000, 48000, 44100, 32000, 24000, 22050, 8000)
"""Rates ``sample_rate = "auto"`` tries, best first: 16 kHz is what wake words and most STT want."""

BUFFER_SECONDS = 0.04  # default callback period: short enough for latency, long enough for a Pi Zero
CLOSE_TIMEOUT = 2.0  # a driver's close() that takes longer is abandoned (it returns in ms normally)
MAX_WAIT_STEP = 5.0  # seconds between device scans while waiting for a device

T = TypeVar("T")


class DeviceCaptureConfig(BackendConfig):
    """Options shared by every callback-driven capture backend."""

    device: str | Count(0, 1023) | None = Field(
        None,
        description="Input device: a part of its name (case-insensitive, e.g. \"USB\") or its index from"
        " `magoo devices` (a number, unquoted); unset or \"\" means the system's default input.",
    )
    sample_rate: Literal["auto"] | SampleRate = Field(
        "auto",
        description="Hz to open the device at; \"auto\" tries 16000, 48000, 44100, 32000, 24000, 22050, 8000"
        " and keeps the first that opens.",
    )
    channels: Count(1, 32) | None = Field(
        None, description="Channels to open; empty: mono when the device allows it, else two."
    )
    channel: Count(0, 31) | None = Field(
        None, description="Keep only this channel (0-based) instead of mixing all channels to mono."
    )
    frames_per_buffer: Count(32, 65536) | None = Field(
        None, description="Frames per driver callback; empty: 40 ms worth at the chosen rate."
    )
    wait_for_device: Seconds(0, 3600) = Field(
        30.0, description="Seconds to wait at start for a matching input device to appear (USB at boot)."
    )
    stall_timeout: Seconds(0.05, 600) = Field(
        2.0, description="Reopen the device when no audio has arrived for this many seconds."
    )
    stuck_after: Seconds(0, 3600) = Field(
        10.0,
        description="Reopen the device when the level stays exactly the same (e.g. digital zeros) for this"
        " many seconds; 0 turns the check off, for sources that send digital silence on purpose.",
    )
    queue_seconds: Seconds(0.05, 60) = Field(
        2.0, description="Audio buffered between the driver and the engine; beyond it the oldest is dropped."
    )

    @field_validator("device", mode="before")
    @classmethod
    def _blank_is_default(cls, value: Any) -> Any:
        return None if isinstance(value, str) and not value.strip() else value

    @model_validator(mode="after")
    def _channel_exists(self) -> DeviceCaptureConfig:
        if self.channel is not None and self.channels is not None and self.channel >= self.channels:
            raise ValueError(
                f"channel {self.channel} does not exist when opening {self.channels} channel(s);"
                " channels are numbered from 0"
            )
        return self


class CaptureStream(Protocol):
    """An opened driver stream. ``start()`` and ``close()`` block (worker thread); ``is_active()``
    is cheap and may be called on the loop. ``close()`` must return promptly even when the
    device stalled: call the driver's close/abort, never a "stop" that drains buffers."""

    def start(self) -> None: ...

    def is_active(self) -> bool: ...

    def close(self) -> None: ...


class CallbackTimer:
    """How long the driver callback took, for the last ``size`` callbacks; written by one thread.

    :meth:`record` is two stores into a preallocated array: cheap enough for every callback.
    """

    def __init__(self, size: int = 2048) -> None:
        self._ns = array("q", bytes(8 * size))
        self._size = size
        self._count = 0

    def record(self, nanoseconds: int) -> None:
        self._ns[self._count % self._size] = nanoseconds
        self._count += 1

    def summary(self) -> dict[str, float]:
        """Median, 99th percentile and maximum in microseconds (empty before the first callback)."""
        filled = min(self._count, self._size)
        if filled == 0:
            return {}
        import numpy as np  # here: the capture plugins import this module, and `magoo plugins` needs no numpy

        us = np.frombuffer(self._ns, dtype=np.int64)[:filled] / 1000.0
        p50, p99 = np.percentile(us, [50, 99])
        return {"callback_us_p50": float(p50), "callback_us_p99": float(p99), "callback_us_max": float(us.max())}


class CaptureSink:
    """Where one opened stream's callback hands its buffers; one per open, so a late callback of
    a closed stream can never mix into the next one.

    :meth:`deliver` and :meth:`lost` are called on the driver's thread and never block or log.
    """

    __slots__ = ("queue", "format", "input_overflows", "timer", "closing")

    def __init__(self, queue: CaptureQueue, fmt: AudioFormat, timer: CallbackTimer) -> None:
        self.queue = queue
        self.format = fmt
        self.timer = timer
        self.input_overflows = 0
        self.closing = False

    def deliver(self, pcm: bytes, input_overflow: bool, started_ns: int) -> None:
        """Hand over one buffer of interleaved int16 ``pcm`` (already a copy the driver won't reuse).

        :param input_overflow: the driver flagged lost input before this buffer.
        :param started_ns: ``time.perf_counter_ns()`` at the top of the callback, for the timer.
        """
        fmt = self.format
        self.queue.put(AudioChunk(pcm, fmt.sample_rate, fmt.channels, 2, time.monotonic()))
        if input_overflow:
            self.input_overflows += 1
        self.timer.record(time.perf_counter_ns() - started_ns)

    def lost(self, reason: str) -> None:
        """The driver says the stream ended by itself (device gone, server died). Any thread."""
        if not self.closing:
            self.queue.close(BackendError(f"{reason}; reopening"))


def select_devices(devices: list[DeviceInfo], wanted: str | int | None) -> list[DeviceInfo]:
    """Input devices matching ``wanted``: an index, a case-insensitive part of the name, or None
    for the default input (the first input when the driver names no default)."""
    inputs = [d for d in devices if d.max_input_channels > 0]
    if wanted is None:
        return [d for d in inputs if d.default_input] or inputs[:1]
    if isinstance(wanted, int):
        return [d for d in inputs if d.index == wanted]
    return [d for d in inputs if wanted.casefold() in d.name.casefold()]


def rates_that_open(check: Callable[[int], object]) -> tuple[int, ...]:
    """The rates of :data:`PREFERRED_RATES`, lowest first, for which ``check(rate)`` neither
    raises nor returns a falsy value: how drivers fill ``DeviceInfo.input_rates``."""
    rates = []
    for rate in sorted(PREFERRED_RATES):
        try:
            if check(rate) is False:
                continue
        except Exception:  # drivers raise their own error types for "does not open"
            continue
        rates.append(rate)
    return tuple(rates)


class DeviceCapture(Backend):
    """An audio source that captures from a sound device through a callback-driven driver.

    Subclasses set ``name`` and ``driver`` (for messages) and implement :meth:`list_devices`
    and :meth:`open_stream`. ``stream()`` yields mono chunks at the negotiated rate; the engine
    converts them once for each consumer (16 kHz for wake words, 24 kHz for OpenAI ...).
    """

    Config: ClassVar[type[BackendConfig]] = DeviceCaptureConfig
    driver: ClassVar[str] = "the audio driver"
    _wedged: ClassVar[bool] = False  # a stream of this driver would not close: the process needs a restart
    live = True
    finite = False

    @property
    def healthy(self) -> bool:
        """The stream's level has changed since it was opened, so it is not a dead device or the
        sound server's silent fallback a still unplugged USB microphone reopens onto (see
        :class:`~magoo_core.roles.AudioSource`); always True with ``stuck_after = 0``."""
        return self._levels_seen >= 2 or not self.config.stuck_after

    # ---- what a driver plugin implements (blocking; called from a worker thread) ----

    @classmethod
    def list_devices(cls, probe_rates: bool = False) -> list[DeviceInfo]:
        """Every device the driver sees now, freshly enumerated (so a replugged device shows up).

        With ``probe_rates`` fill ``input_rates``/``output_rates`` with the rates of
        :data:`PREFERRED_RATES` that open. Raises OSError or BackendError when the driver or
        the audio system is not available.
        """
        raise NotImplementedError

    @classmethod
    def open_stream(
        cls, device: DeviceInfo, fmt: AudioFormat, frames_per_buffer: int, sink: CaptureSink
    ) -> CaptureStream:
        """Open (not start) an int16 input stream whose callback calls ``sink.deliver``.

        Raises any exception when the device does not open with this format; the caller then
        tries the next rate or channel count.
        """
        raise NotImplementedError

    # ---- the backend ----

    def __init__(self, config: DeviceCaptureConfig) -> None:
        super().__init__(config)
        self.config: DeviceCaptureConfig = config
        self.device: DeviceInfo | None = None
        self.format: AudioFormat | None = None
        self._stream: CaptureStream | None = None
        self._sink: CaptureSink | None = None
        self._timer = CallbackTimer()
        self._driver_lock = asyncio.Lock()
        self._frames = 0
        self._reopens = 0
        self._dropped_before = 0
        self._input_overflows_before = 0
        self._level = -1.0
        self._level_since = 0.0
        self._levels_seen = 0  # level changes since the stream started; 2 make it healthy

    async def __aenter__(self) -> DeviceCapture:
        await self._open(retryable=False)
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self._close()

    async def stream(self) -> AsyncIterator[AudioChunk]:
        """Mono chunks at the negotiated rate until cancelled; raises BackendError on a fault."""
        if self._wedged:
            raise BackendError(
                f"{self.driver} is stuck: a stream did not close within {CLOSE_TIMEOUT:g} s. Only a restart"
                " of magoo frees it (under systemd this happens by itself)",
                retryable=False,
            )
        if self._stream is None:  # the engine calls again after a failure: find the device anew
            self._reopens += 1
            await self._open(retryable=True)
        stream, sink = self._stream, self._sink
        assert stream is not None and sink is not None
        self._level, self._level_since, self._levels_seen = -1.0, time.monotonic(), 0
        watchdog = None
        try:
            await self._driver(stream.start)
            # watched only once started: until start() returns, a driver reports the stream inactive
            watchdog = asyncio.get_running_loop().create_task(self._watch(stream, sink), name=f"magoo-{self.name}-watchdog")
            async for chunk in sink.queue:
                self._check_stuck(chunk)
                self._frames += chunk.frames
                yield mix_to_mono(chunk, self.config.channel) if chunk.channels > 1 else chunk
        finally:
            if watchdog is not None:
                watchdog.cancel()
            await self._close()

    def stats(self) -> Mapping[str, float]:
        sink = self._sink
        dropped = self._dropped_before + (sink.queue.dropped if sink else 0)
        input_overflows = self._input_overflows_before + (sink.input_overflows if sink else 0)
        return {
            "frames": self._frames,
            "overflows": dropped,
            "input_overflows": input_overflows,
            "reopens": self._reopens,
            "sample_rate": self.format.sample_rate if self.format else 0,
            **self._timer.summary(),
        }

    # ---- opening ----

    async def _open(self, retryable: bool) -> None:
        """Find the device and open it, waiting up to ``wait_for_device`` seconds for it."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.config.wait_for_device
        step, waited_logged = 0.5, False
        while True:
            devices, problem = await self._scan()
            for device in select_devices(devices, self.config.device):
                try:
                    await self._driver(self._negotiate, device)
                    return
                except BackendError as exc:
                    problem = exc.message
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise BackendError(self._not_found(devices, problem), retryable=retryable)
            if not waited_logged:
                log.info("%s: %s; waiting up to %.0f s", self.name, self._not_found(devices, problem), remaining)
                waited_logged = True
            await asyncio.sleep(min(step, remaining))
            step = min(step * 2, MAX_WAIT_STEP)

    async def _scan(self) -> tuple[list[DeviceInfo], str | None]:
        try:
            return await self._driver(self.list_devices), None
        except Exception as exc:  # the audio system is not up yet: same as "no device" while waiting
            return [], f"{self.driver} could not list devices ({exc})"

    def _negotiate(self, device: DeviceInfo) -> None:
        """Open ``device`` at the first rate and channel count that work. Worker thread."""
        rates = PREFERRED_RATES if self.config.sample_rate == "auto" else (self.config.sample_rate,)
        tried = []
        for rate in rates:
            for channels in self._channel_options(device):
                fmt = AudioFormat(rate, channels, 2)
                frames = self.config.frames_per_buffer or max(32, round(rate * BUFFER_SECONDS))
                queue_size = max(2, round(self.config.queue_seconds * rate / frames))
                poll = min(0.01, frames / rate / 4)  # latency added by the queue: a quarter of a buffer at most
                sink = CaptureSink(CaptureQueue(queue_size, poll), fmt, self._timer)
                try:
                    stream = self.open_stream(device, fmt, frames, sink)
                except Exception as exc:
                    tried.append(f"{rate} Hz × {channels} ch: {exc}")
                    continue
                self._stream, self._sink, self.device, self.format = stream, sink, device, fmt
                log.info(
                    "%s: capturing from %s at %d Hz, %d channel%s, %d frames per buffer",
                    self.name, device.describe(), rate, channels, "s" if channels > 1 else "", frames,
                )
                return
        raise BackendError(f"{device.describe()} did not open: {'; '.join(tried)}")

    def _channel_options(self, device: DeviceInfo) -> list[int]:
        if self.config.channels is not None:
            return [self.config.channels]
        least = 1 if self.config.channel is None else self.config.channel + 1
        return sorted({max(least, 1), max(least, min(2, device.max_input_channels))})

    def _not_found(self, devices: list[DeviceInfo], problem: str | None) -> str:
        wanted = self.config.device
        what = "the default input device" if wanted is None else f"an input device matching {wanted!r}"
        inputs = [d for d in devices if d.max_input_channels > 0]
        if problem:
            found = problem
        elif inputs:
            found = "inputs found: " + "; ".join(d.describe() for d in inputs)
        else:
            found = "no input devices found: is the microphone plugged in? (`arecord -l` lists ALSA's)"
        hint = " Set [audio_source] device to a part of a name or an index; `magoo devices` lists them."
        return f"could not open {what} — {found}.{hint if inputs else ''}"

    # ---- running ----

    async def _watch(self, stream: CaptureStream, sink: CaptureSink) -> None:
        """Close the queue with an error when the stream stalls or stops. Loop task."""
        stall = self.config.stall_timeout
        interval = min(0.5, stall / 4)
        loop = asyncio.get_running_loop()
        pushed, since = sink.queue.pushed, loop.time()
        device = self.device.name if self.device else "the device"
        while True:
            await asyncio.sleep(interval)
            if sink.queue.pushed != pushed:
                pushed, since = sink.queue.pushed, loop.time()
            elif loop.time() - since >= stall:
                sink.queue.close(BackendError(f"no audio from {device!r} for {stall:g} s (stalled or unplugged); reopening"))
                return
            if not stream.is_active():
                sink.queue.close(BackendError(f"the stream from {device!r} stopped (device lost or audio server gone); reopening"))
                return

    def _check_stuck(self, chunk: AudioChunk) -> None:
        if not self.config.stuck_after:
            return
        level = rms_level(chunk)
        if level != self._level:
            self._level, self._level_since = level, chunk.timestamp
            self._levels_seen += 1
        elif chunk.timestamp - self._level_since >= self.config.stuck_after:
            device = self.device.name if self.device else "the device"
            raise BackendError(
                f"the level from {device!r} has been exactly {level:.6f} for {self.config.stuck_after:g} s"
                " (a dead or muted device, or it was unplugged and the sound server moved the stream to a"
                " silent source); reopening. Set stuck_after = 0 if this source sends digital silence on purpose"
            )

    async def _close(self) -> None:
        stream, sink = self._stream, self._sink
        self._stream = self._sink = None
        if sink is not None:
            sink.closing = True
            sink.queue.close()
            self._dropped_before += sink.queue.dropped
            self._input_overflows_before += sink.input_overflows
        if stream is None:
            return
        try:
            await asyncio.wait_for(self._driver(stream.close), CLOSE_TIMEOUT)
        except TimeoutError:
            # The driver's thread is stuck (seen with PortAudio's ALSA thread spinning after the
            # sound server died and came back): nothing in this process can free it, and it may
            # burn a core. Only a new process helps, so the next stream() says so and the engine
            # stops with exit code 1 for the service manager to restart magoo.
            type(self)._wedged = True  # for every instance: a restarted backend must not try again
            log.error("%s: closing the stream took over %g s; the audio driver is stuck", self.name, CLOSE_TIMEOUT)
        except Exception as exc:
            log.debug("%s: close failed: %s", self.name, exc)

    async def _driver(self, call: Callable[..., T], *args: Any) -> T:
        """Run a blocking driver call in a worker thread, one at a time."""
        async with self._driver_lock:
            return await asyncio.to_thread(call, *args)
