"""magoo-wyoming: magoo as a Home Assistant satellite over the Wyoming protocol, and Wyoming
servers (whisper, piper, openWakeWord) as magoo's backends, found with zeroconf."""

from __future__ import annotations

from magoo_core.plugins import hookimpl

# ---- the Home Assistant satellite (magoo_wyoming/satellite/) -------------------------------------


@hookimpl
def magoo_register_services(register):
    from .satellite import HomeAssistantSatellite

    register(HomeAssistantSatellite)
