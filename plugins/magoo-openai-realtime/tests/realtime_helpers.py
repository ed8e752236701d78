"""Shared pieces for the Realtime plugin's tests: real speech audio, profile sections and a runner.

(A module with its own name: every plugin's tests have a conftest, and ``import conftest`` would
find whichever came first.)
"""

from __future__ import annotations

from typing import Any

import numpy as np

from magoo_core import AudioChunk
from magoo_core.audio import convert, read_wav, samples
from magoo_core.testing.device_contract import CLIP  # espeak-ng "what time is it", shipped with the kit
import magoo_openai_realtime
from magoo_core.testing import RunRecord, run_profile
from magoo_openai_realtime import protocol
from magoo_openai_realtime.loopback import LoopbackRealtimeServer

KEY = "sk-test-0123456789abcdefWXYZ"
REPLY = "It is **noon**. See [the clock](https://time.is/Berlin) or https://www.example.com/now for more."


def clip_24k() -> np.ndarray:
    """The espeak-ng clip "what time is it" as 24 kHz samples, the way the server must get it."""
    fmt, pcm = read_wav(CLIP)
    return samples(convert(AudioChunk(pcm, fmt.sample_rate, fmt.channels, fmt.sample_width), protocol.AUDIO_FORMAT))


#: What the test profile's scripted wake detector hears as the wake word: a loud beep.
BEEP = [{"seconds": 0.4, "tone": 660.0, "amplitude": 0.5}, {"seconds": 0.2}]


def speech(utterances: int = 1, *, gap: float = 1.5, lead: float = 0.3, realtime: bool = True, wake: bool = False) -> dict[str, Any]:
    """A scripted source: ``utterances`` times the clip, each followed by ``gap`` s of silence,
    each after a beep the scripted wake detector takes for the wake word when ``wake``."""
    segments: list[dict[str, Any]] = [{"seconds": lead}]
    for _ in range(utterances):
        segments += [*(BEEP if wake else []), {"file": str(CLIP)}, {"seconds": gap}]
    return {"backend": "scripted", "realtime": realtime, "segments": segments}


def stt(server: LoopbackRealtimeServer, **options: Any) -> dict[str, Any]:
    """An ``[stt]`` section for the real plugin, pointed at the loopback server."""
    return {
        "backend": "openai-realtime",
        "api_key": {"env": "OPENAI_API_KEY"},
        "url": server.url,
        "reconnect_backoff": 0.05,
        "reconnect_backoff_max": 0.4,
        "connect_timeout": 5.0,
        **options,
    }


ENV = {"OPENAI_API_KEY": KEY}


async def run(overrides: dict[str, Any], **kwargs: Any) -> RunRecord:
    """:func:`run_profile` with this plugin registered and the test key in the environment."""
    kwargs.setdefault("environ", ENV)
    plugins = [magoo_openai_realtime, *kwargs.pop("plugins", ())]
    return await run_profile(overrides, plugins=plugins, **kwargs)
