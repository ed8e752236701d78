"""Config field types both webhook backends use."""

from __future__ import annotations

import urllib.parse
from typing import Annotated

from pydantic import AfterValidator, SecretStr


def check_url(url: str) -> str:
    """An absolute http(s) URL, or a ValueError that says how to write one."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(
            "must be an absolute http:// or https:// URL, like http://homeassistant.local:8123/api/webhook/magoo"
        )
    return url


#: An absolute http:// or https:// URL.
WebhookUrl = Annotated[str, AfterValidator(check_url)]
def check_headers(headers: dict[str, SecretStr]) -> dict[str, SecretStr]:
    """Header names and values HTTP can carry (printable ASCII), or a ValueError that names the
    header and never shows its value (it may be a secret)."""
    for name, value in headers.items():
        if not name.isascii() or not name.isprintable() or not name or ":" in name or " " in name:
            raise ValueError(f"header name {name!r} is not a valid HTTP header name (letters, digits and '-')")
        text = value.get_secret_value()
        bad = next((i for i, char in enumerate(text) if not (char.isascii() and char.isprintable())), None)
        if bad is not None:
            raise ValueError(
                f"the value of header {name} has a character HTTP headers cannot carry at character {bad + 1}"
                " (printable ASCII only)"
            )
    return headers


#: HTTP headers whose values are all treated as secrets: masked in the profile, never logged.
Headers = Annotated[dict[str, SecretStr], AfterValidator(check_headers)]
