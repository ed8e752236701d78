"""``magoo doctor``'s row for Piper: the voice is found, with its rate, and piper-tts is installed."""

from __future__ import annotations

import importlib.util
import json
from typing import TYPE_CHECKING

from magoo_core import BackendError
from magoo_core.doctor import fail, ok

if TYPE_CHECKING:
    from magoo_core.doctor import Check

    from . import PiperTextToSpeech


def voice_rows(config: PiperTextToSpeech.Config, section: str) -> list[Check]:
    """One row: FAIL naming where the voice was looked for (or the missing module), else OK with
    the voice's files, where it came from, its rate and speakers. Reads files; loads no model."""
    from . import INSTALL, PiperTextToSpeech

    name = f"{section} piper voice"
    if importlib.util.find_spec("piper") is None:
        return [fail(name, "the Python module piper (piper-tts) is not installed", INSTALL)]
    try:
        voice = PiperTextToSpeech.voice_of(config)
    except BackendError as exc:
        found, _, fix = exc.message.removeprefix("piper: ").partition(". ")
        return [fail(name, found, fix)]
    try:
        described = json.loads(voice.config.read_text(encoding="utf-8"))
        rate, speakers = described["audio"]["sample_rate"], described.get("num_speakers", 1)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        return [fail(name, f"{voice.config} is not a Piper voice config ({exc})", "reinstall or re-download the voice")]
    source = "" if voice.source == "path" else f" (from {voice.source})"
    return [ok(name, f"{voice.model}{source}; {rate} Hz, {speakers} speaker(s)")]
