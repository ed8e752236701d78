"""magoo-wyoming: magoo as a Home Assistant satellite over the Wyoming protocol, and Wyoming
servers (whisper, piper, openWakeWord) as magoo's backends, found with zeroconf."""

from __future__ import annotations

from magoo_core import hookimpl


# ---- Wyoming servers as backends (clients/): [stt] [tts] [wake] [responder] wyoming ----------
# The wyoming package is imported when these register (it is pure Python with no dependencies);
# zeroconf only when uri = "auto" browses.


@hookimpl
def magoo_register_tts(register):
    from .clients.tts import WyomingTextToSpeech

    register(WyomingTextToSpeech)


@hookimpl
def magoo_register_stt(register):
    from .clients.stt import WyomingSpeechToText

    register(WyomingSpeechToText)


@hookimpl
def magoo_register_wake_detectors(register):
    from .clients.wake import WyomingWakeDetector

    register(WyomingWakeDetector)


@hookimpl
def magoo_register_responders(register):
    from .clients.responder import WyomingResponder

    register(WyomingResponder)


# ---- the Home Assistant satellite (satellite/) ------------------------------------------------


@hookimpl
def magoo_register_services(register):
    from .satellite import HomeAssistantSatellite

    register(HomeAssistantSatellite)
