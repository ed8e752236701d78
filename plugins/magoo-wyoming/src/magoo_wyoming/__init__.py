"""magoo-wyoming: magoo as a Home Assistant satellite over the Wyoming protocol, and Wyoming
servers (whisper, piper, openWakeWord) as magoo's backends, found with zeroconf."""

from __future__ import annotations
