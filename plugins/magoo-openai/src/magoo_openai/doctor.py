"""``magoo doctor`` rows for this plugin's backends: the endpoint answers, takes the key, has the model.

One ``GET {base_url}/models`` with the key (never shown: a rejected key is named by its variable),
blocking, with a short timeout: the doctor calls it in a worker thread.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from urllib.parse import urlsplit

from magoo_core.doctor.context import PLACEHOLDER
from magoo_core.doctor.rows import Check, fail, ok, warn

from .client import EndpointConfig

#: seconds the doctor's request may take
DOCTOR_TIMEOUT = 5.0


def check_endpoint(config: EndpointConfig, section: str, model: str | None = None) -> list[Check]:
    """The rows for one backend: whether it has a key it needs, and what ``GET /models`` says."""
    name = f"{section} openai endpoint"
    key = config.key
    if key == PLACEHOLDER:  # the key's own row says it is not set
        return [fail(name, f"not checked: {config.key_name} is not set", f"set {config.key_name}, then run magoo doctor again")]
    if not key and config.is_openai:
        return [fail(name, f"{config.host} needs an API key and {section} has none",
                     f'add api_key = {{ env = "OPENAI_API_KEY" }} to {section} and set the variable')]
    request = urllib.request.Request(f"{config.base_url.rstrip('/')}/models", headers={"Accept": "application/json"})
    if key:
        request.add_header("Authorization", f"Bearer {key}")
    try:
        with urllib.request.urlopen(request, timeout=DOCTOR_TIMEOUT) as response:  # noqa: S310 - http(s) only (validated)
            listed = [item.get("id") for item in json.loads(response.read()).get("data", []) if isinstance(item, dict)]
    except urllib.error.HTTPError as exc:
        if exc.code in (401, 403):
            return [fail(name, f"{config.host} rejected the API key (HTTP {exc.code})", f"check {config.key_name}")]
        if exc.code == 404:
            return [warn(name, f"{config.host} answers, but has no {urlsplit(config.base_url).path}/models list (HTTP 404)",
                         "check base_url: it usually ends in /v1")]
        return [warn(name, f"{config.host} answered HTTP {exc.code} to GET /models", "look at the server's log")]
    except (urllib.error.URLError, OSError, TimeoutError) as exc:
        reason = getattr(exc, "reason", exc)
        return [fail(name, f"cannot reach {config.base_url} ({reason})", f"start the server, or fix base_url in {section}")]
    except (ValueError, AttributeError):
        return [warn(name, f"{config.host} answered GET /models with something that is not a model list",
                     "check base_url: it must be an OpenAI-compatible API root")]
    keyed = "with the key" if key else "without a key"
    if model is None or model in listed:
        found = f"{config.host} answers {keyed}" + (f"; model {model} is there" if model else "")
        return [ok(name, found)]
    shown = ", ".join(sorted(str(m) for m in listed)[:8]) or "none"
    return [warn(name, f"{config.host} answers {keyed}, but lists no model {model} (it has: {shown})",
                 f"set model in {section} to one it has (Ollama: ollama pull {model})")]
