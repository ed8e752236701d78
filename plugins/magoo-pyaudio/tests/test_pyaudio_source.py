"""magoo-pyaudio against a real PulseAudio server with a virtual microphone."""

from magoo_core.testing.device_contract import DeviceCaptureContract
from magoo_pyaudio import PyAudioSource


class TestPyAudioOnPulseAudio(DeviceCaptureContract):
    backend_class = PyAudioSource
