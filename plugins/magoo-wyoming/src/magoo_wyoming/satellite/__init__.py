"""magoo as a Home Assistant satellite over Wyoming (``[services.NAME] backend = "homeassistant"``).

Modules, one job each: :mod:`.config` (the profile section), :mod:`.frames` (bounded reading),
:mod:`.peers` (the allow-list), :mod:`.throttle` (log lines a peer causes), :mod:`.link` (one
connection), :mod:`.session` (Home Assistant's flow across connections), :mod:`.pipeline` and
:mod:`.audio` (one turn, sound coming in), :mod:`.remote_wake` (Home Assistant hearing the wake
word), :mod:`.outside` (announcements, and
timers handed to magoo's own), :mod:`.server` (the listener), :mod:`.advertise` (zeroconf), :mod:`.service` (the magoo
service class), :mod:`.loopback` (a Home Assistant stand-in for tests and benches).
"""

from .config import SatelliteConfig
from .service import HomeAssistantSatellite

__all__ = ["HomeAssistantSatellite", "SatelliteConfig"]
