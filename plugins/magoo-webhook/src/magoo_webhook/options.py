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
#: HTTP headers whose values are all treated as secrets: masked in the profile, never logged.
Headers = dict[str, SecretStr]
