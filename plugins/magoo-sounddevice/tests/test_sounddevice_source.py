"""magoo-sounddevice against a real PulseAudio server with a virtual microphone."""

from magoo_core.testing.device_contract import DeviceCaptureContract
from magoo_sounddevice import SoundDeviceSource


class TestSoundDeviceOnPulseAudio(DeviceCaptureContract):
    backend_class = SoundDeviceSource
