"""The ``[[actuators]] backend = "mqtt"`` table: where the broker is and what to call things there."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated

from pydantic import AfterValidator, Field, SecretStr, model_validator

from magoo_core import BackendConfig
from magoo_core.fields import Count, Seconds, StrictBool

#: characters MQTT topics must not hold in a prefix: wildcards, the null character
_WILDCARDS = re.compile(r"[#+\x00]")


def check_prefix(prefix: str) -> str:
    """A topic prefix: no wildcard (``#``, ``+``), not starting or ending with ``/``."""
    if not prefix or _WILDCARDS.search(prefix) or prefix.startswith("/") or prefix.endswith("/") or "//" in prefix:
        raise ValueError(
            "must be topic levels joined by '/', like magoo/kitchen: no '#' or '+', no '/' at either end, no empty level"
        )
    return prefix


def check_host(host: str) -> str:
    if not host or any(char.isspace() for char in host) or "://" in host:
        raise ValueError("must be a host name or address, like homeassistant.local or 192.168.1.10 (no mqtt://, no port)")
    return host


TopicPrefix = Annotated[str, AfterValidator(check_prefix)]
Host = Annotated[str, AfterValidator(check_host)]


class MqttConfig(BackendConfig):
    """How the MQTT actuator reaches its broker and names its topics."""

    host: Host = Field(description="The MQTT broker's host name or address (Home Assistant's Mosquitto add-on: its host).")
    port: Count(1, 65535) | None = Field(None, description="The broker's port; default 1883, or 8883 with tls.")
    username: str | None = Field(None, description="User name at the broker, if it asks for one.")
    password: SecretStr | None = Field(
        None, description='Password at the broker; write password = { env = "MQTT_PASSWORD" } (never logged or published).'
    )
    tls: StrictBool = Field(False, description="Connect with TLS (the broker's certificate is checked against the system's CAs or ca_file).")
    ca_file: Path | None = Field(None, description="A CA certificate (PEM) to check the broker's certificate with, for tls.")
    topic_prefix: TopicPrefix | None = Field(
        None, description="Topics of this assistant start with this; default magoo/<the profile's [magoo] name>."
    )
    discovery: StrictBool = Field(True, description="Publish Home Assistant discovery configs, so the entities appear by themselves.")
    discovery_prefix: TopicPrefix = Field("homeassistant", description="Home Assistant's discovery prefix (its MQTT integration's setting).")
    level_interval: Seconds(0.1, 3600) = Field(1.0, description="Seconds between two input-level messages at most.")
    keepalive: Count(5, 3600) = Field(
        30, description="Seconds between pings; a broker that hears nothing for 1.5 times this publishes offline."
    )
    reconnect_max: Seconds(1, 3600) = Field(60.0, description="Longest wait in seconds between two attempts to reach the broker.")

    @model_validator(mode="after")
    def _consistent(self):
        if self.password is not None and self.username is None:
            raise ValueError("password is set but username is not: the broker needs both")
        if self.ca_file is not None and not self.tls:
            raise ValueError("ca_file is set but tls is false: set tls = true to use it")
        return self

    @property
    def broker_port(self) -> int:
        return self.port if self.port is not None else (8883 if self.tls else 1883)
