"""Real-audio contract suite for microphone backends built on :class:`magoo_core.capture.DeviceCapture`.

The tests run against a real PulseAudio server with a virtual microphone (the ``virtual_audio``
fixtures of :mod:`magoo_core.testing.pytest_plugin`): they play known audio into the microphone
and check what the backend's callback stream delivered — the content, not just "something
arrived" — and they inject the faults a USB microphone produces (stream killed, stall, unplug,
sound server death) and check that the same backend object recovers. Use it in a driver plugin::

    from magoo_core.testing.device_contract import DeviceCaptureContract
    from magoo_pyaudio import PyAudioSource

    class TestPyAudioOnPulseAudio(DeviceCaptureContract):
        backend_class = PyAudioSource

The tests are plain functions that run their coroutines with ``asyncio.run``; where PulseAudio
cannot start they are skipped with the reason (or fail, with ``MAGOO_REQUIRE_AUDIO=1``).
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import threading
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pytest

from ..audio import concatenate, read_wav, samples, tone
from ..capture import DeviceCapture
from ..errors import BackendError
from ..types import AudioChunk, AudioFormat
from . import run_profile
from .contracts import AudioSourceContract
from .signals import best_match, dominant_frequency
from .virtual_audio import VirtualAudio

CLIP = Path(__file__).parent / "data" / "what_time_is_it__en-us.wav"
STEP_TIMEOUT = 30.0  # any single step longer than this is a hang
REOPEN_ATTEMPTS = 5  # a reopen may land on a fallback source or a server still warming up


async def capture_while(source: DeviceCapture, action: Callable[[], Any], tail: float = 0.3) -> list[AudioChunk]:
    """Chunks from one ``source.stream()``: after the first chunk arrives, run the blocking
    ``action`` in a thread (e.g. play into the microphone) and keep capturing ``tail`` seconds
    after it returns. Errors of the stream and of the action propagate."""
    chunks: list[AudioChunk] = []
    stream = source.stream()
    try:
        chunks.append(await asyncio.wait_for(anext(stream), STEP_TIMEOUT))
        done = asyncio.ensure_future(asyncio.to_thread(action))
        loop = asyncio.get_running_loop()
        end = None
        while end is None or loop.time() < end:
            chunks.append(await asyncio.wait_for(anext(stream), STEP_TIMEOUT))
            if end is None and done.done():
                done.result()
                end = loop.time() + tail
    finally:
        await stream.aclose()
    return chunks


async def failure_of(stream: AsyncIterator[AudioChunk]) -> BackendError:
    """Read ``stream`` until it raises BackendError (the watchdog or the driver noticed a fault)."""
    try:
        async with asyncio.timeout(STEP_TIMEOUT):
            async for _ in stream:
                pass
    except BackendError as exc:
        return exc
    raise AssertionError("the stream ended without reporting the fault")


def mono(chunks: list[AudioChunk]) -> np.ndarray:
    assert all(c.channels == 1 for c in chunks), "a source must deliver mono chunks"
    return samples(concatenate(chunks, AudioFormat(chunks[0].sample_rate))).reshape(-1)


class DeviceCaptureContract(AudioSourceContract):
    """Checks a DeviceCapture backend on the virtual microphone (plus every audio source's
    contract). Set ``backend_class``; ``config`` adds keys to every backend made."""

    backend_class: ClassVar[type[DeviceCapture]]
    config: ClassVar[dict[str, Any]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        # Under pytest-xdist (--dist loadgroup) one worker runs a backend's whole contract, in order:
        # its last test kills the sound server, after which PortAudio has been seen to wedge on a fault.
        group = pytest.mark.xdist_group(f"device-contract:{cls.__module__}.{cls.__qualname__}")
        cls.pytestmark = [*cls.__dict__.get("pytestmark", []), group]

    @pytest.fixture(autouse=True)
    def _virtual_microphone(self, virtual_audio: VirtualAudio) -> VirtualAudio:
        """Every test, the inherited ones too, runs with the PulseAudio server up."""
        return virtual_audio

    def make(self, **overrides: Any) -> DeviceCapture:
        # The virtual mic idles at exact zeros between clips, so the stuck check is off unless a test wants it
        values = {"stuck_after": 0, **self.config, **overrides}
        return self.backend_class(self.backend_class.Config.model_validate(values))

    @staticmethod
    def clip() -> np.ndarray:
        _, pcm = read_wav(CLIP)
        return np.frombuffer(pcm, dtype="<i2")

    def assert_hears_clip(self, source: DeviceCapture, virtual_audio: VirtualAudio) -> list[AudioChunk]:
        """Play the clip into the mic during one ``stream()`` and check it arrived intact."""
        chunks = asyncio.run(capture_while(source, lambda: virtual_audio.play(CLIP)))
        assert best_match(mono(chunks), self.clip())[1] > 0.99
        return chunks

    # ---- content ----

    def test_delivers_what_the_microphone_hears_bit_for_bit_at_16k(self, virtual_audio: VirtualAudio) -> None:
        source = self.make(sample_rate=16000)

        async def run() -> list[AudioChunk]:
            async with source:
                return await capture_while(source, lambda: virtual_audio.play(CLIP))

        chunks = asyncio.run(run())
        assert {c.sample_rate for c in chunks} == {16000}
        assert best_match(mono(chunks), self.clip())[1] > 0.999
        stats = source.stats()
        assert stats["frames"] == sum(c.frames for c in chunks)
        assert stats["overflows"] == 0 and stats["input_overflows"] == 0
        assert 0 < stats["callback_us_p50"] <= stats["callback_us_p99"] <= stats["callback_us_max"]

    def test_auto_rate_prefers_16k_and_records_the_device(self, virtual_audio: VirtualAudio) -> None:
        source = self.make()

        async def run() -> None:
            async with source:
                assert source.format is not None and source.format.sample_rate == 16000
                assert source.device is not None and source.device.default_input

        asyncio.run(run())

    def test_a_48k_stream_keeps_the_pitch(self, virtual_audio: VirtualAudio) -> None:
        source = self.make(sample_rate=48000)
        played = samples(tone(440.0, 1.5, 16000, amplitude=0.5)).reshape(-1)

        async def run() -> list[AudioChunk]:
            async with source:
                return await capture_while(source, lambda: virtual_audio.play((played.tobytes(), 16000)))

        chunks = asyncio.run(run())
        assert {c.sample_rate for c in chunks} == {48000}
        heard = mono(chunks)
        loud = np.flatnonzero(np.abs(heard) > 1000)
        assert loud[-1] - loud[0] > 48000  # over a second of the tone arrived
        second = heard[loud[0] + 2400 : loud[0] + 2400 + 48000]  # skip the onset
        assert abs(dominant_frequency(second, 48000) - 440.0) < 5

    def test_a_stereo_stream_is_mixed_to_mono(self, virtual_audio: VirtualAudio) -> None:
        source = self.make(sample_rate=16000, channels=2)

        async def run() -> list[AudioChunk]:
            async with source:
                assert source.format is not None and source.format.channels == 2
                return await capture_while(source, lambda: virtual_audio.play(CLIP))

        chunks = asyncio.run(run())
        assert best_match(mono(chunks), self.clip())[1] > 0.99

    # ---- choosing the device ----

    def test_device_chosen_by_a_part_of_its_name_or_its_index(self, virtual_audio: VirtualAudio) -> None:
        devices = self.backend_class.list_devices()
        pulse = next(d for d in devices if d.name == "pulse")

        async def opened(device: str | int) -> str:
            source = self.make(device=device)
            async with source:
                assert source.device is not None
                return source.device.name

        assert asyncio.run(opened("PULS")) == "pulse"
        assert asyncio.run(opened(pulse.index)) == "pulse"

    def test_a_missing_device_fails_after_the_wait_with_the_device_list(self, virtual_audio: VirtualAudio) -> None:
        source = self.make(device="no such microphone", wait_for_device=0.5)

        async def run() -> None:
            async with source:
                pass

        with pytest.raises(BackendError) as failure:
            asyncio.run(run())
        assert not failure.value.retryable  # at start: the run stops and says what to fix
        for part in ("'no such microphone'", "pulse", "default", "magoo devices"):
            assert part in failure.value.message

    # ---- faults: each one is noticed, and the same object captures again ----

    def recover_after(self, fault: Callable[[VirtualAudio], Any], virtual_audio: VirtualAudio,
                      repair: Callable[[VirtualAudio], Any] | None = None, **config: Any) -> str:
        """Inject ``fault`` while streaming, expect a BackendError, ``repair``, and hear the clip again."""
        source = self.make(sample_rate=16000, stall_timeout=1.0, **config)

        async def run() -> str:
            async with source:
                stream = source.stream()
                await asyncio.wait_for(anext(stream), STEP_TIMEOUT)
                await asyncio.to_thread(fault, virtual_audio)
                error = await failure_of(stream)
                if repair is not None:
                    await asyncio.to_thread(repair, virtual_audio)
                # like the engine: call stream() again after each failure until the clip comes through
                for _ in range(REOPEN_ATTEMPTS):
                    with contextlib.suppress(BackendError):
                        chunks = await capture_while(source, lambda: virtual_audio.play(CLIP))
                        if best_match(mono(chunks), self.clip())[1] > 0.99:
                            break
                else:
                    raise AssertionError(f"the clip did not come through in {REOPEN_ATTEMPTS} reopens")
                assert source.stats()["reopens"] >= 1
                return error.message

        return asyncio.run(run())

    def test_a_killed_stream_is_reopened(self, fresh_virtual_audio: VirtualAudio) -> None:
        message = self.recover_after(lambda audio: audio.kill_capture_streams(), fresh_virtual_audio)
        assert "reopening" in message

    def test_a_stalled_device_fires_the_watchdog_and_recovers(self, fresh_virtual_audio: VirtualAudio) -> None:
        message = self.recover_after(
            lambda audio: audio.stall(True), fresh_virtual_audio, repair=lambda audio: audio.stall(False)
        )
        assert "no audio" in message

    def test_an_unplugged_mic_is_caught_as_stuck_audio_and_found_again(self, fresh_virtual_audio: VirtualAudio) -> None:
        # PulseAudio moves the stream to another source (zeros here) without any error: only the
        # stuck-level check can tell. Replugging while the source retries brings the mic back.
        def replug_soon(audio: VirtualAudio) -> None:
            threading.Timer(1.0, audio.replug).start()

        message = self.recover_after(lambda audio: audio.unplug(), fresh_virtual_audio, repair=replug_soon, stuck_after=1.0)
        assert "stuck_after" in message

    # ---- in the engine ----

    def test_the_engine_keeps_running_across_a_lost_stream(self, fresh_virtual_audio: VirtualAudio) -> None:
        audio = fresh_virtual_audio

        def user() -> None:
            """Freeze the microphone once capture is up; once it is reopened, speak a command."""
            first = wait_for(audio.my_source_outputs)
            audio.stall(True)
            wait_for(lambda: not set(audio.my_source_outputs()) & set(first))  # the frozen stream was closed
            audio.stall(False)
            wait_for(audio.my_source_outputs)
            time.sleep(0.3)
            audio.play(CLIP)

        source = {"backend": self.backend_class.name, **self.config, "sample_rate": 16000, "stuck_after": 0,
                  "stall_timeout": 1.0}
        profile = {
            "engine": {"restart_backoff": 0.1, "restart_backoff_max": 0.5, "heartbeat_interval": 0.5},
            "audio_source": source,
            "wake": {"backend": "scripted", "level": 0.05},
        }
        speaker = threading.Thread(target=user, daemon=True)
        speaker.start()
        plugin = sys.modules[self.backend_class.__module__]
        run = asyncio.run(run_profile(profile, plugins=[plugin], turns=1, timeout=60))
        speaker.join(STEP_TIMEOUT)
        names = run.names
        assert run.result.exit_code == 0, run.result.fatal
        assert names.index("error") < names.index("recovered") < names.index("wake") < names.index("turn_end")
        assert run.of("error")[0]["failure"].role == "audio_source"
        assert run.of("recovered")[0]["role"] == "audio_source"
        assert run.timelines[0].outcome.value == "ok"
        # the capture metrics reach the heartbeat
        status = run.of("heartbeat")[-1]["status"]
        stats = status.backends[f"audio_source:{self.backend_class.name}"]
        assert stats["reopens"] >= 1 and stats["frames"] > 0 and stats["sample_rate"] == 16000
        assert stats["callback_us_p99"] > 0 and status.counters["overflows"] == stats["overflows"]

    # Last in the suite: after a server death PortAudio has been seen to wedge on a later fault
    def test_the_sound_server_dying_and_coming_back(self, fresh_virtual_audio: VirtualAudio) -> None:
        def restart_soon(audio: VirtualAudio) -> None:
            threading.Timer(1.0, audio.restart_server).start()

        message = self.recover_after(
            lambda audio: audio.kill_server(), fresh_virtual_audio, repair=restart_soon, wait_for_device=20.0
        )
        assert "reopening" in message


def wait_for(probe: Callable[[], Any], timeout: float = STEP_TIMEOUT) -> Any:
    """Poll ``probe`` until it returns something truthy; blocking."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(RuntimeError):
            found = probe()
            if found:
                return found
        time.sleep(0.05)
    raise AssertionError(f"{probe} stayed false for {timeout} s")
