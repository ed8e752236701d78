"""magoo-pyaudio: a microphone through PyAudio (PortAudio) in callback mode.

The callback does one thing: it hands the buffer (PyAudio already passes a fresh ``bytes``) to
the engine's queue without blocking. Choosing the device, the rate negotiation, the wait at boot, the watchdog and the
reopen live in :class:`magoo_core.capture.DeviceCapture`.

PyAudio has no wheel for Linux: it builds against ``portaudio19-dev`` (``scripts/setup.sh``
installs it). Its import is deferred to the first device call.
"""

from __future__ import annotations

import time
from typing import Any, ClassVar

from magoo_core import AudioFormat, hookimpl, require
from magoo_core.capture import CaptureSink, DeviceCapture, DeviceCaptureConfig, rates_that_open
from magoo_core.portaudio_quiet import quiet_alsa_and_jack
from magoo_core.types import DeviceInfo

INSTALL = "pip install magoo-pyaudio (needs: sudo apt-get install portaudio19-dev)"


def _pyaudio():
    quiet_alsa_and_jack()  # PortAudio's probing would print ~100 lines of ALSA and JACK complaints
    return require("pyaudio", backend="pyaudio", install=INSTALL)


class PyAudioStream:
    """An opened input stream together with the PyAudio instance (PortAudio session) it lives in."""

    def __init__(self, pa: Any, stream: Any) -> None:
        self._pa = pa
        self._stream = stream

    def start(self) -> None:
        self._stream.start_stream()

    def is_active(self) -> bool:
        return self._stream.is_active()

    def close(self) -> None:
        # close() aborts; stop_stream() would wait for data that a stalled device never sends
        try:
            self._stream.close()
        finally:
            self._pa.terminate()


class PyAudioSource(DeviceCapture):
    """Captures a microphone with a PyAudio callback stream; recovers when the device goes away."""

    name: ClassVar[str] = "pyaudio"
    driver: ClassVar[str] = "PortAudio (PyAudio)"

    class Config(DeviceCaptureConfig):
        pass

    @classmethod
    def list_devices(cls, probe_rates: bool = False) -> list[DeviceInfo]:
        pyaudio = _pyaudio()
        pa = pyaudio.PyAudio()  # a fresh PortAudio session enumerates devices anew
        try:
            default_in = _default_index(pa.get_default_input_device_info)
            default_out = _default_index(pa.get_default_output_device_info)
            devices = []
            for index in range(pa.get_device_count()):
                info = pa.get_device_info_by_index(index)
                ins, outs = int(info["maxInputChannels"]), int(info["maxOutputChannels"])
                devices.append(
                    DeviceInfo(
                        index=index,
                        name=str(info["name"]),
                        host_api=str(pa.get_host_api_info_by_index(info["hostApi"])["name"]),
                        max_input_channels=ins,
                        max_output_channels=outs,
                        default_sample_rate=float(info["defaultSampleRate"]),
                        default_input=index == default_in,
                        default_output=index == default_out,
                        input_rates=_rates(pa, pyaudio, index, "input") if probe_rates and ins else (),
                        output_rates=_rates(pa, pyaudio, index, "output") if probe_rates and outs else (),
                    )
                )
            return devices
        finally:
            pa.terminate()

    @classmethod
    def open_stream(
        cls, device: DeviceInfo, fmt: AudioFormat, frames_per_buffer: int, sink: CaptureSink
    ) -> PyAudioStream:
        pyaudio = _pyaudio()

        def callback(in_data, frame_count, time_info, status, deliver=sink.deliver, clock=time.perf_counter_ns,
                     overflow=pyaudio.paInputOverflow, reply=(None, pyaudio.paContinue)):
            started = clock()
            deliver(in_data, status & overflow, started)
            return reply

        pa = pyaudio.PyAudio()
        try:
            stream = pa.open(
                format=pyaudio.paInt16,
                channels=fmt.channels,
                rate=fmt.sample_rate,
                input=True,
                input_device_index=device.index,
                frames_per_buffer=frames_per_buffer,
                stream_callback=callback,
                start=False,
            )
        except BaseException:
            pa.terminate()
            raise
        return PyAudioStream(pa, stream)


def _default_index(query) -> int | None:
    try:
        return int(query()["index"])
    except OSError:  # no default device
        return None


def _rates(pa: Any, pyaudio: Any, index: int, direction: str) -> tuple[int, ...]:
    def check(rate: int) -> bool:
        return pa.is_format_supported(
            rate, **{f"{direction}_device": index, f"{direction}_channels": 1, f"{direction}_format": pyaudio.paInt16}
        )

    return rates_that_open(check)


@hookimpl
def magoo_register_audio_sources(register):
    register(PyAudioSource)
