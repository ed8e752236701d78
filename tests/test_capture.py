"""Capture from a callback-driven device (magoo_core.capture), against a fake driver.

The fake stands in for PortAudio: it lists devices a test can add or break, opens only the
formats it is told to, and once started calls back from its own thread with noise until the
test makes it stall, die, go silent or report the stream lost. The real drivers are tested
against a real PulseAudio server in their own plugins.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from dataclasses import dataclass, field
from typing import ClassVar, Literal

import numpy as np
import pytest
from pydantic import ValidationError

from magoo_core import AudioChunk, AudioFormat, BackendError, hookimpl
from magoo_core.audio import rms_level
from magoo_core.capture import PREFERRED_RATES, CallbackTimer, CaptureSink, DeviceCapture, DeviceCaptureConfig, select_devices
from magoo_core.engine import Engine
from magoo_core.event_recorder import EventRecorder
from magoo_core.testing import build_plugins, make_profile
from magoo_core.types import DeviceInfo

BUILT_IN = DeviceInfo(0, "HDA Intel PCH: ALC3246 Analog (hw:0,0)", "ALSA", 2, 2, 48000.0)
HDMI = DeviceInfo(1, "HDA Intel PCH: HDMI 0 (hw:0,3)", "ALSA", 0, 8, 44100.0, default_output=True)
USB_MIC = DeviceInfo(2, "USB PnP Sound Device: Audio (hw:1,0)", "ALSA", 1, 0, 44100.0)
PULSE = DeviceInfo(3, "pulse", "ALSA", 32, 32, 44100.0, default_input=True, default_output=True)

Fault = Literal["stall", "die", "silent", "lost"]


# ---- the fake driver ----------------------------------------------------------------------------


class FakeStream:
    """An opened stream: once started, a thread calls the sink back every buffer, like PortAudio,
    which also says a stream is not active until ``start()`` has returned.

    Set ``fault`` to make it stall (no more callbacks), die (``is_active()`` False, no
    callbacks), go silent (exact zeros) or lose the stream (``sink.lost``).
    """

    def __init__(self, fmt: AudioFormat, frames: int, sink: CaptureSink, world: FakeDriver) -> None:
        self.format = fmt
        self.frames = frames
        self.sink = sink
        self.amplitude = world.amplitude
        self.start_delay = world.start_delay
        self.close_blocks = world.close_blocks
        self.started = False
        self.fault: Fault | None = None
        self.sent: list[np.ndarray] = []  # every buffer delivered, shaped (frames, channels)
        self.closed = threading.Event()
        self._thread = threading.Thread(target=self._run, name="fake-driver", daemon=True)

    def start(self) -> None:
        time.sleep(self.start_delay)
        self.started = True
        self._thread.start()

    def is_active(self) -> bool:
        return self.started and self.fault != "die" and not self.closed.is_set()

    def close(self) -> None:
        if self.close_blocks is not None:
            self.close_blocks.wait()
        self.closed.set()
        if self._thread.is_alive():
            self._thread.join(2)

    def _run(self) -> None:
        rng = np.random.default_rng()
        shape = (self.frames, self.format.channels)
        while not self.closed.wait(self.frames / self.format.sample_rate):
            if self.fault in ("stall", "die"):
                continue
            if self.fault == "lost":
                self.sink.lost("the fake driver lost the device")
                return
            if self.fault == "silent":
                buffer = np.zeros(shape, np.int16)
            else:
                buffer = np.clip(rng.normal(0, self.amplitude * 32767, shape), -32768, 32767).astype(np.int16)
            self.sent.append(buffer)
            self.sink.deliver(buffer.tobytes(), False, time.perf_counter_ns())


@dataclass
class FakeDriver:
    """What the fake driver sees; a test may change it while the source runs."""

    devices: list[DeviceInfo]
    rates: tuple[int, ...] | None = None  # the rates that open; None: any
    channels: tuple[int, ...] | None = None  # the channel counts that open; None: up to the device's
    list_error: Exception | None = None  # raised by list_devices (the audio server is down)
    amplitude: float = 0.1  # of the noise the streams deliver
    start_delay: float = 0.0  # seconds a stream's start() takes
    close_blocks: threading.Event | None = None  # close() waits for this (a driver thread that is stuck)
    scans: int = 0
    tried: list[AudioFormat] = field(default_factory=list)
    streams: list[FakeStream] = field(default_factory=list)


class FakeCapture(DeviceCapture):
    """A DeviceCapture over a :class:`FakeDriver`; :meth:`on` binds a fresh one per test."""

    name: ClassVar[str] = "fake"
    driver: ClassVar[str] = "the fake driver"
    world: ClassVar[FakeDriver]

    @classmethod
    def on(cls, world: FakeDriver) -> type[FakeCapture]:
        return type(cls.__name__, (cls,), {"world": world})

    @classmethod
    def list_devices(cls, probe_rates: bool = False) -> list[DeviceInfo]:
        cls.world.scans += 1
        if cls.world.list_error is not None:
            raise cls.world.list_error
        return list(cls.world.devices)

    @classmethod
    def open_stream(cls, device: DeviceInfo, fmt: AudioFormat, frames_per_buffer: int, sink: CaptureSink) -> FakeStream:
        world = cls.world
        world.tried.append(fmt)
        if world.rates is not None and fmt.sample_rate not in world.rates:
            raise OSError("[Errno -9997] Invalid sample rate")
        if fmt.channels > device.max_input_channels or (world.channels is not None and fmt.channels not in world.channels):
            raise OSError("[Errno -9998] Invalid number of channels")
        stream = FakeStream(fmt, frames_per_buffer, sink, world)
        world.streams.append(stream)
        return stream


class FakeSourcePlugin:
    """Registers one test's FakeCapture class as the audio source ``fake``."""

    def __init__(self, source: type[FakeCapture]) -> None:
        self.source = source

    @hookimpl
    def magoo_register_audio_sources(self, register):
        register(self.source)


def fake_source(world: FakeDriver, **config) -> FakeCapture:
    source = FakeCapture.on(world)
    return source(source.Config(**config))


@contextlib.asynccontextmanager
async def capturing(source: DeviceCapture):
    """The source entered and its stream open; both closed on the way out."""
    async with source, contextlib.aclosing(source.stream()) as chunks:
        yield chunks


async def read(chunks, count: int = 1) -> list[AudioChunk]:
    async with asyncio.timeout(10):
        return [await anext(chunks) for _ in range(count)]


async def failure(chunks) -> BackendError:
    """Read until the stream raises (a hang fails the test); the error it raised."""
    with pytest.raises(BackendError) as raised:
        async with asyncio.timeout(10):
            async for _ in chunks:
                pass
    return raised.value


async def start_failure(source: DeviceCapture) -> BackendError:
    with pytest.raises(BackendError) as raised:
        async with asyncio.timeout(10), source:
            pass
    return raised.value


async def until(condition, timeout: float = 10.0) -> None:
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.01)


def start_engine(world: FakeDriver, overrides: dict) -> tuple[Engine, EventRecorder, asyncio.Task]:
    """The engine running on ``world``'s microphone with the test profile's fakes; the noise never wakes it."""
    manager = build_plugins(FakeSourcePlugin(FakeCapture.on(world)))
    recorder = EventRecorder()
    manager.pm.register(recorder, name="recorder")
    profile = make_profile({"wake": {"backend": "scripted", "level": 0.9}, **overrides}, manager)
    engine = Engine(profile, manager)
    return engine, recorder, asyncio.create_task(engine.run())


def mono(chunk: AudioChunk) -> np.ndarray:
    assert chunk.channels == 1
    return np.frombuffer(chunk.pcm, np.int16)


# ---- choosing the device ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "wanted, chosen",
    [
        ("usb", [USB_MIC]),
        ("USB PnP", [USB_MIC]),
        ("hw:", [BUILT_IN, USB_MIC]),
        ("HDA Intel PCH", [BUILT_IN]),  # not its HDMI output
        ("webcam", []),
        (2, [USB_MIC]),
        (1, []),  # HDMI plays only
        (None, [PULSE]),
    ],
)
def test_select_devices_by_name_part_index_or_default(wanted, chosen):
    assert select_devices([BUILT_IN, HDMI, USB_MIC, PULSE], wanted) == chosen


def test_without_a_default_input_the_first_input_is_chosen():
    assert select_devices([HDMI, USB_MIC, BUILT_IN], None) == [USB_MIC]
    assert select_devices([HDMI], None) == []


# ---- rate and channels ---------------------------------------------------------------------------


async def test_auto_rate_opens_mono_at_16000_when_the_device_allows_it():
    world = FakeDriver([USB_MIC])
    source = fake_source(world)
    async with capturing(source) as chunks:
        (chunk,) = await read(chunks)
    assert world.tried == [AudioFormat(16000, 1)]
    assert (chunk.sample_rate, chunk.channels) == (16000, 1)
    assert source.stats()["sample_rate"] == 16000


async def test_auto_rate_falls_back_to_the_next_preferred_rate_that_opens():
    world = FakeDriver([BUILT_IN], rates=(44100,))
    source = fake_source(world)
    async with capturing(source) as chunks:
        (chunk,) = await read(chunks)
    assert list(dict.fromkeys(f.sample_rate for f in world.tried)) == [16000, 48000, 44100] == list(PREFERRED_RATES[:3])
    assert chunk.sample_rate == 44100
    assert source.stats()["sample_rate"] == 44100


async def test_a_fixed_rate_that_does_not_open_fails_saying_what_was_tried():
    world = FakeDriver([BUILT_IN], rates=(44100,))
    error = await start_failure(fake_source(world, sample_rate=22050, wait_for_device=0))
    assert {f.sample_rate for f in world.tried} == {22050}, "a fixed rate is never swapped for another"
    assert BUILT_IN.name in error.message
    assert "22050 Hz × 1 ch: [Errno -9997] Invalid sample rate" in error.message
    assert "22050 Hz × 2 ch" in error.message


async def test_a_stereo_only_device_yields_the_mean_of_both_channels():
    world = FakeDriver([BUILT_IN], channels=(2,))
    async with capturing(fake_source(world)) as chunks:
        received = await read(chunks, 3)
    for chunk, stereo in zip(received, world.streams[0].sent, strict=False):
        assert chunk.frames == len(stereo)
        assert np.abs(mono(chunk) - stereo.mean(axis=1)).max() <= 0.5, "the mean, rounded"
        assert not np.array_equal(mono(chunk), stereo[:, 0])


async def test_channel_keeps_only_that_channel():
    world = FakeDriver([BUILT_IN], channels=(2,))
    async with capturing(fake_source(world, channel=1)) as chunks:
        received = await read(chunks, 3)
    for chunk, stereo in zip(received, world.streams[0].sent, strict=False):
        assert np.array_equal(mono(chunk), stereo[:, 1])


def test_a_channel_the_opened_channels_do_not_have_is_a_config_error():
    with pytest.raises(ValidationError, match="channel 2 does not exist"):
        DeviceCaptureConfig(channels=2, channel=2)
    assert DeviceCaptureConfig(channels=2, channel=1).channel == 1


# ---- waiting for the device at start --------------------------------------------------------------


async def test_a_device_that_appears_while_waiting_is_opened():
    world = FakeDriver([BUILT_IN])
    source = fake_source(world, device="USB", wait_for_device=10)
    asyncio.get_running_loop().call_later(0.3, world.devices.append, USB_MIC)  # plugged in late at boot
    async with capturing(source) as chunks:
        await read(chunks)
    assert source.device == USB_MIC
    assert world.scans >= 2


async def test_a_device_that_never_appears_fails_the_start_naming_the_inputs_found():
    world = FakeDriver([BUILT_IN, HDMI])
    error = await start_failure(fake_source(world, device="USB", wait_for_device=0.3))
    assert error.retryable is False
    assert world.scans >= 2, "it looked again before giving up"
    assert "'USB'" in error.message and BUILT_IN.describe() in error.message
    assert HDMI.name not in error.message, "outputs are not offered as inputs"
    assert "`magoo devices`" in error.message


async def test_with_no_input_at_all_the_error_says_none_were_found():
    error = await start_failure(fake_source(FakeDriver([HDMI]), wait_for_device=0))
    assert "no input devices found" in error.message


async def test_an_audio_server_that_is_not_up_yet_counts_as_no_device_while_waiting():
    world = FakeDriver([USB_MIC], list_error=OSError("Connection refused"))
    source = fake_source(world, wait_for_device=10)
    asyncio.get_running_loop().call_later(0.3, setattr, world, "list_error", None)
    async with capturing(source) as chunks:
        await read(chunks)
    assert world.scans >= 2 and source.device == USB_MIC


async def test_an_audio_server_that_stays_down_is_named_in_the_error():
    world = FakeDriver([USB_MIC], list_error=OSError("Connection refused"))
    error = await start_failure(fake_source(world, wait_for_device=0))
    assert "could not list devices (Connection refused)" in error.message


# ---- the watchdog ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "fault, config, says",
    [
        ("stall", {"stall_timeout": 0.3}, "no audio from 'USB PnP Sound Device: Audio (hw:1,0)' for 0.3 s"),
        ("die", {}, "stopped"),
        ("lost", {}, "the fake driver lost the device; reopening"),
        ("silent", {"stuck_after": 0.2}, "Set stuck_after = 0"),
    ],
)
async def test_a_failing_stream_raises_and_the_next_stream_call_reopens_the_device(fault, config, says):
    # stall_timeout is far beyond the test's 10 s timeouts unless the case is the stall itself
    world = FakeDriver([USB_MIC])
    source = fake_source(world, **{"stall_timeout": 60, **config})
    async with source:
        async with contextlib.aclosing(source.stream()) as chunks:
            await read(chunks)
            world.streams[0].fault = fault
            error = await failure(chunks)
        assert says in error.message and error.retryable
        assert world.streams[0].closed.is_set(), "the failed stream is closed"

        scans = world.scans
        async with contextlib.aclosing(source.stream()) as chunks:
            (chunk,) = await read(chunks)
        assert world.scans == scans + 1, "the devices are listed anew (a replugged mic has a new index)"
        assert len(world.streams) == 2 and world.streams[1].sent
        assert rms_level(chunk) > 0
        assert source.stats()["reopens"] == 1


async def test_a_stream_that_is_slow_to_start_is_not_taken_for_a_stopped_one():
    world = FakeDriver([USB_MIC], start_delay=0.5)  # a busy sound server; the watchdog looks every 0.1 s
    async with capturing(fake_source(world, stall_timeout=0.4)) as chunks:
        received = await read(chunks, 3)
    assert len(received) == 3


async def test_stuck_after_zero_accepts_digital_silence():
    world = FakeDriver([USB_MIC])
    async with capturing(fake_source(world, stuck_after=0, stall_timeout=60)) as chunks:
        world.streams[0].fault = "silent"
        silence = 0.0
        while silence < 0.6:  # three times the stuck_after that fails in the test above
            (chunk,) = await read(chunks)
            if not any(chunk.pcm):
                silence += chunk.duration


# ---- counters ------------------------------------------------------------------------------------


async def test_a_consumer_that_stops_reading_loses_the_oldest_audio_and_never_holds_up_the_driver():
    world = FakeDriver([USB_MIC])
    source = fake_source(world, frames_per_buffer=160, queue_seconds=0.1)  # 10 buffers of 10 ms
    async with capturing(source) as chunks:
        await read(chunks)
        # nothing reads now; a deliver() that waited for room would stop the driver at 10 buffers
        await until(lambda: source.stats()["overflows"] >= 50)
        (chunk,) = await read(chunks)
        sent = [buffer.tobytes() for buffer in list(world.streams[0].sent)]
    assert sent.index(chunk.pcm) > 50, "what was dropped is the oldest audio"


async def test_stats_count_the_frames_yielded_and_time_the_callbacks():
    world = FakeDriver([BUILT_IN], channels=(2,))
    source = fake_source(world)
    assert not any(key.startswith("callback_us") for key in source.stats())
    async with capturing(source) as chunks:
        received = await read(chunks, 5)
        stats = source.stats()
    assert stats["frames"] == sum(chunk.frames for chunk in received) == 5 * 640, "frames, not samples"
    assert 0 < stats["callback_us_p50"] <= stats["callback_us_p99"] <= stats["callback_us_max"]


def test_the_callback_timer_summarises_the_latest_callbacks():
    timer = CallbackTimer(size=4)
    assert timer.summary() == {}
    for microseconds in (900, 1, 2, 3, 4):  # 900 falls out of a window of four
        timer.record(microseconds * 1000)
    summary = timer.summary()
    assert summary["callback_us_p50"] == 2.5
    assert summary["callback_us_p50"] <= summary["callback_us_p99"] <= summary["callback_us_max"] == 4.0


# ---- in the engine --------------------------------------------------------------------------------


async def test_the_engine_reopens_a_stalled_microphone_and_announces_the_recovery():
    world = FakeDriver([USB_MIC])
    engine, recorder, run = start_engine(world, {
        "audio_source": {"backend": "fake", "device": "USB", "stall_timeout": 0.3},
        "engine": {"restart_backoff": 0.01, "restart_backoff_max": 0.05},
    })
    await until(lambda: engine.counters["frames"] >= 5)
    world.streams[0].fault = "stall"
    await until(lambda: any(name == "recovered" for name, _ in recorder.events))
    frames = engine.counters["frames"]
    await until(lambda: engine.counters["frames"] >= frames + 5)
    engine.request_stop()
    result = await asyncio.wait_for(run, 30)

    assert result.exit_code == 0 and result.fatal is None
    (failure,) = result.failures
    assert (failure.role, failure.backend) == ("audio_source", "fake")
    assert "no audio from 'USB PnP Sound Device" in failure.message
    events = [(name, kwargs) for name, kwargs in recorder.events if name in ("error", "recovered")]
    assert [name for name, _ in events] == ["error", "recovered"]
    recovered = events[1][1]
    assert (recovered["role"], recovered["backend"], recovered["failures"]) == ("audio_source", "fake", 1)
    assert len(world.streams) == 2 and all(stream.closed.is_set() for stream in world.streams)
    assert engine.source.last_instance.stats()["reopens"] == 1


async def test_a_microphone_gone_through_several_restarts_is_captured_again_by_one_instance():
    world = FakeDriver([USB_MIC])
    engine, recorder, run = start_engine(world, {
        "audio_source": {"backend": "fake", "stall_timeout": 0.3, "wait_for_device": 0.1},
        "engine": {"max_failures": 2, "restart_backoff": 0.05, "restart_backoff_max": 0.1},
    })
    await until(lambda: engine.counters["frames"] >= 5)
    world.devices.clear()  # unplugged: the stream stalls and the device is no longer listed
    world.streams[0].fault = "stall"
    await until(lambda: engine.source.restarts >= 3)  # restarts that failed: no device to open
    world.devices.append(USB_MIC)
    await until(lambda: any(name == "recovered" for name, _ in recorder.events))
    await until(lambda: not engine.source.restarting)
    frames = engine.counters["frames"]
    await until(lambda: engine.counters["frames"] >= frames + 5)
    assert sum(not stream.closed.is_set() for stream in world.streams) == 1, "the device is open once"
    assert engine.status().backends["audio_source:fake"]["frames"] > 0, "the slot holds the instance being read"
    engine.request_stop()
    result = await asyncio.wait_for(run, 30)

    assert result.exit_code == 0
    assert all(failure.role == "audio_source" for failure in result.failures)
    assert all(stream.closed.is_set() for stream in world.streams)


async def test_a_stream_that_will_not_close_stops_the_engine_for_a_process_restart():
    stuck = threading.Event()
    world = FakeDriver([USB_MIC], close_blocks=stuck)
    engine, recorder, run = start_engine(world, {
        "audio_source": {"backend": "fake", "stall_timeout": 0.3},
        "engine": {"restart_backoff": 0.01, "restart_backoff_max": 0.05},
    })
    await until(lambda: engine.counters["frames"] >= 5)
    world.streams[0].fault = "stall"
    try:
        result = await asyncio.wait_for(run, 30)
    finally:
        stuck.set()  # let the abandoned close() thread end

    assert result.exit_code == 1
    assert "the fake driver is stuck: a stream did not close within 2 s" in result.fatal
    assert "restart of magoo" in result.fatal
    assert len(world.streams) == 1, "no reopen is tried while the driver is stuck"


def test_a_blank_device_means_the_default_input():
    assert DeviceCaptureConfig(device="  ").device is None
    assert DeviceCaptureConfig(device=2).device == 2
