"""The ``[services.NAME] backend = "homeassistant"`` section: where the satellite listens, who may
connect, how it names itself to Home Assistant."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from magoo_core.fields import Count, Seconds, StrictBool
from magoo_core.network_access import check_networks, is_local_only
from magoo_core.roles import BackendConfig

#: the port wyoming-satellite made the convention for satellites (Home Assistant's "add satellite" form)
DEFAULT_PORT = 10700


class SatelliteConfig(BackendConfig):
    """How magoo offers itself to Home Assistant as a Wyoming satellite."""

    host: str = Field(
        ..., min_length=1, max_length=255,
        description="Address to listen on, given explicitly: 127.0.0.1 (this machine only), the Pi's LAN "
        "address, or 0.0.0.0 (every interface: then set allow). No default, so the microphone is never "
        "open to the network by accident.",
    )
    port: Count(0, 65535) = Field(DEFAULT_PORT, description="TCP port Home Assistant connects to (0: one the system picks, for tests).")
    allow: list[str] = Field(
        default_factory=list, max_length=100,
        description="Peers allowed to connect: addresses or networks (\"192.168.1.10\", \"10.0.0.0/24\"); "
        "others are closed at once. Empty: anyone who can reach host.",
    )
    name: str = Field("magoo", min_length=1, max_length=63, description="The satellite's name in Home Assistant and on zeroconf.")
    area: str | None = Field(None, max_length=100, description="The area Home Assistant suggests for it (\"Kitchen\").")
    wake_words: list[str] = Field(
        default_factory=list, max_length=20,
        description="The local wake words, as Home Assistant shows them (\"hey jarvis\"); told in describe.",
    )
    wake: Literal["local", "remote"] = Field(
        "local",
        description="Who hears the wake word: \"local\" (magoo's [wake] backend; nothing leaves the Pi before it) or "
        "\"remote\" (the microphone streams to Home Assistant while magoo listens and Home Assistant's wake word "
        "engine detects it; [wake] then names this service, with a [wake.backup] for when Home Assistant is away).",
    )
    zeroconf: StrictBool = Field(True, description="Advertise _wyoming._tcp.local. so Home Assistant discovers it.")
    advertise_address: str | None = Field(
        None, description="Address put in the zeroconf record; unset: host, or the LAN address when host is 0.0.0.0."
    )
    zeroconf_interfaces: list[str] = Field(
        default_factory=list, max_length=20,
        description="Addresses of the interfaces to advertise on (\"192.168.1.20\"); empty: every interface.",
    )
    silence_timeout: Seconds(0.2, 120) = Field(
        6.0, description="Home Assistant pings every 2 s: this long without a word from it and the link counts as lost."
    )
    max_frame_bytes: Count(1024, 16 * 1024 * 1024) = Field(
        1024 * 1024, description="Largest event (header, data and payload) accepted; a larger one closes the link."
    )

    @field_validator("allow")
    @classmethod
    def _networks(cls, value: list[str]) -> list[str]:
        return check_networks(value)

    @field_validator("host")
    @classmethod
    def _host(cls, value: str) -> str:
        if value.strip() != value or " " in value:
            raise ValueError("give one address, without spaces (127.0.0.1, 192.168.1.20 or 0.0.0.0)")
        return value


