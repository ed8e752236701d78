"""magoo-sounddevice: a microphone through sounddevice (PortAudio via ctypes/cffi) in callback mode.

Uses a raw (bytes, not numpy) input stream: the callback copies the driver's buffer into
``bytes`` and hands it to the engine's queue without blocking. sounddevice's
``finished_callback`` fires the moment PortAudio loses the stream (device gone, server died),
so recovery starts at once instead of at the next watchdog check. Choosing the device, the rate
negotiation, the wait at boot, the watchdog and the reopen live in
:class:`magoo_core.capture.DeviceCapture`.

sounddevice ships no PortAudio on Linux: it loads ``libportaudio2`` (``scripts/setup.sh``
installs it). Its import is deferred to the first device call.
"""

from __future__ import annotations

import time
from typing import Any, ClassVar

from magoo_core import AudioFormat, hookimpl, require
from magoo_core.capture import CaptureSink, DeviceCapture, DeviceCaptureConfig, rates_that_open
from magoo_core.portaudio_quiet import quiet_alsa_and_jack
from magoo_core.types import DeviceInfo

INSTALL = "pip install magoo-sounddevice (needs: sudo apt-get install libportaudio2)"


def _sounddevice():
    quiet_alsa_and_jack()  # PortAudio's probing would print ~100 lines of ALSA and JACK complaints
    return require("sounddevice", backend="sounddevice", install=INSTALL)


class SoundDeviceStream:
    """An opened raw input stream."""

    def __init__(self, stream: Any) -> None:
        self._stream = stream

    def start(self) -> None:
        self._stream.start()

    def is_active(self) -> bool:
        return self._stream.active

    def close(self) -> None:
        # abort() drops buffers at once; stop() would wait for data that a stalled device never sends
        self._stream.abort(ignore_errors=True)
        self._stream.close(ignore_errors=True)


class SoundDeviceSource(DeviceCapture):
    """Captures a microphone with a sounddevice callback stream; recovers when the device goes away."""

    name: ClassVar[str] = "sounddevice"
    driver: ClassVar[str] = "PortAudio (sounddevice)"

    class Config(DeviceCaptureConfig):
        pass

    @classmethod
    def list_devices(cls, probe_rates: bool = False) -> list[DeviceInfo]:
        sd = _sounddevice()
        # PortAudio fixes its device list when initialised: start a fresh session to see replugged
        # devices (only this backend's streams are open in the process, and none is open now)
        sd._terminate()
        sd._initialize()
        default_in, default_out = (int(i) for i in sd.default.device)
        devices = []
        for info in sd.query_devices():
            index = int(info["index"])
            ins, outs = int(info["max_input_channels"]), int(info["max_output_channels"])
            devices.append(
                DeviceInfo(
                    index=index,
                    name=str(info["name"]),
                    host_api=str(sd.query_hostapis(info["hostapi"])["name"]),
                    max_input_channels=ins,
                    max_output_channels=outs,
                    default_sample_rate=float(info["default_samplerate"]),
                    default_input=index == default_in,
                    default_output=index == default_out,
                    input_rates=_rates(sd.check_input_settings, index) if probe_rates and ins else (),
                    output_rates=_rates(sd.check_output_settings, index) if probe_rates and outs else (),
                )
            )
        return devices

    @classmethod
    def open_stream(
        cls, device: DeviceInfo, fmt: AudioFormat, frames_per_buffer: int, sink: CaptureSink
    ) -> SoundDeviceStream:
        sd = _sounddevice()

        def callback(indata, frames, time_info, status, deliver=sink.deliver, clock=time.perf_counter_ns):
            started = clock()  # before the copy: the copy is part of the callback's cost
            deliver(bytes(indata), status.input_overflow, started)

        stream = sd.RawInputStream(
            samplerate=fmt.sample_rate,
            blocksize=frames_per_buffer,
            device=device.index,
            channels=fmt.channels,
            dtype="int16",
            callback=callback,
            finished_callback=lambda: sink.lost(f"the stream from {device.name!r} ended (device lost or audio server gone)"),
        )
        return SoundDeviceStream(stream)


def _rates(check, index: int) -> tuple[int, ...]:
    return rates_that_open(lambda rate: check(device=index, channels=1, dtype="int16", samplerate=rate))


@hookimpl
def magoo_register_audio_sources(register):
    register(SoundDeviceSource)
