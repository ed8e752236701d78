"""The ``[[actuators]] backend = "web"`` section: where the page and the API listen, and who may use them.

The rule the loader enforces: a bind other than this machine's loopback needs ``token`` (from
the environment, so the profile file never holds it and every output masks it). Pure pydantic;
no aiohttp here.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field, SecretStr, ValidationInfo, field_validator
from pydantic_core import PydanticCustomError

from magoo_core.fields import Count, EnvText
from magoo_core.network_access import check_networks, is_local_only
from magoo_core.roles import BackendConfig

#: the port the page is served on unless the profile says otherwise
DEFAULT_PORT = 8765
#: shorter tokens are refused: a token is all that stands between the network and the microphone
MIN_TOKEN_LENGTH = 16
TOKEN_EXAMPLE = 'token = { env = "MAGOO_WEB_TOKEN" }'


class WebConfig(BackendConfig):
    """Where the control page and API listen, and what protects them."""

    host: str = Field(
        "127.0.0.1", min_length=1, max_length=255,
        description="Address to listen on: 127.0.0.1 (this machine only; reach it from elsewhere with an SSH "
        "tunnel), the Pi's LAN address, or 0.0.0.0 (every interface). Anything but loopback needs token.",
    )
    port: Count(0, 65535) = Field(DEFAULT_PORT, description="TCP port of the page and the API (0: one the system picks, for tests).")
    token: SecretStr | None = Field(
        None, validate_default=True,
        description=f'The secret every request must carry, from the environment: {TOKEN_EXAMPLE} (at least '
        f"{MIN_TOKEN_LENGTH} characters, e.g. `openssl rand -hex 16`). Required for a host other than 127.0.0.1; "
        "optional on loopback.",
    )
    allow: list[str] = Field(
        default_factory=list, max_length=100,
        description='Clients allowed, as addresses or networks ("192.168.1.10", "192.168.1.0/24"); others get '
        "403. Empty: anyone who can reach host (and has the token).",
    )
    levels_per_second: Count(1, 30) = Field(
        10, description="Level updates sent to each connected page or client per second (only while one is connected)."
    )

    @field_validator("host")
    @classmethod
    def _host(cls, value: str) -> str:
        if value.strip() != value or " " in value:
            raise PydanticCustomError("host", "give one address, without spaces (127.0.0.1, 192.168.1.20 or 0.0.0.0)")
        return value

    @field_validator("allow")
    @classmethod
    def _networks(cls, value: list[str]) -> list[str]:
        return check_networks(value)

    @field_validator("token", mode="before")
    @classmethod
    def _token(cls, value: Any, info: ValidationInfo) -> Any:
        host = info.data.get("host", "127.0.0.1")
        if value is None:
            if not is_local_only(host):
                raise PydanticCustomError(
                    "token_required",
                    "is required when host is not 127.0.0.1: anyone on the network could drive the assistant; "
                    f"set {TOKEN_EXAMPLE} (or listen on 127.0.0.1)",
                )
            return None
        if not isinstance(value, EnvText):
            raise PydanticCustomError(
                "token_literal", f"must come from the environment, not the profile file: {TOKEN_EXAMPLE}"
            )
        if len(value) < MIN_TOKEN_LENGTH:
            raise PydanticCustomError(
                "token_short",
                f"is shorter than {MIN_TOKEN_LENGTH} characters: make a longer one (openssl rand -hex 16)",
            )
        return value

    @property
    def protected(self) -> bool:
        """Requests need the token."""
        return self.token is not None

    @property
    def token_variable(self) -> str:
        """The environment variable the token came from ("" when unknown or none)."""
        return self.variable("token")
