"""A real echo path for full-duplex tests and bench/voice_barge_in.py: the virtual speaker's sound
reaches the virtual microphone through PulseAudio's module-loopback (60 ms, full level), over a faint
hiss, while a recording plays the user. The desk profile on it: PyAudio, openWakeWord, pocketsphinx,
espeak-ng, mpv, and a reply that itself says "hey Jarvis".
"""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from magoo_core.testing.virtual_audio import VirtualAudio

from fault_helpers import TimedProbe

HEY_JARVIS = Path(__file__).parent.parent / "examples" / "audio" / "hey_jarvis_what_time_is_it.wav"
REPLY = (
    "It is twelve o'clock. Here is a long story about the weather, the garden, the birds and the trees. "
    "You can always say hey Jarvis when you need me, and I will listen. "
    "It goes on for a while, so that there is time to interrupt it, and then some more about the sky and the sea."
)


def desk(**engine) -> dict:
    """The desk profile's overrides with echo cancellation's engine settings ``engine``."""
    return {
        "engine": {"mute_pre": 0.1, "mute_post": 0.3, "preroll": 0.3, "barge_in": True, **engine},
        "audio_source": {"backend": "pyaudio", "sample_rate": 16000},
        "wake": {"backend": "openwakeword", "models": [{"name": "hey_jarvis", "threshold": 0.5}]},
        "stt": {"backend": "pocketsphinx", "commands": ["what time is it", "what day is it", "hello"]},
        "responder": {"backend": "echo", "template": REPLY},
        "tts": {"backend": "espeak", "voice": "en-us"},
        "player": {"backend": "mpv"},
    }


def pactl(*args: str) -> str:
    return subprocess.run(["pactl", *args], check=True, capture_output=True, text=True, timeout=10).stdout.strip()


@contextlib.contextmanager
def echo_path(audio: VirtualAudio, seconds: float) -> Iterator[list[subprocess.Popen]]:
    """The speaker heard by the microphone, and ``seconds`` of a faint hiss (-64 dBFS, as a real room
    and preamp give: an idle virtual microphone is exact zeros). Yields the list to put the user's
    clips in (waited for on the way out, with the hiss and the loopback)."""
    loop = pactl("load-module", "module-loopback", "source=speaker.monitor", "sink=micfeed", "latency_msec=60")
    hiss = audio.play((np.random.default_rng(7).normal(0, 20, int(seconds * 16000)).astype("<i2").tobytes(), 16000), wait=False)
    playing: list[subprocess.Popen] = []
    try:
        yield playing
    finally:
        for player in playing:
            player.wait(timeout=10)
        hiss.kill()
        hiss.wait(timeout=10)
        pactl("unload-module", loop)


async def first_reply(probe: TimedProbe, audio: VirtualAudio, playing: list[subprocess.Popen]) -> float:
    """Say "hey Jarvis, what time is it" until a reply starts (pocketsphinx may miss the command on a
    loaded machine: three tries); returns when its first sound came."""
    for _ in range(3):
        since = time.monotonic()
        playing.append(audio.play(HEY_JARVIS, wait=False))
        while time.monotonic() < since + 40:
            events = [(m, n) for m, n, _ in probe.timed if m >= since and n in ("speak_start", "turn_end")]
            if events and events[0][1] == "speak_start":
                return events[0][0]
            if events:
                break
            await asyncio.sleep(0.05)
        await asyncio.to_thread(playing[-1].wait)
    ends = [(a["timeline"].outcome, a["timeline"].error) for a in probe.of("turn_end")]
    heard = [a["transcript"].text for a in probe.of("transcript")]
    raise AssertionError(f"no reply after three commands: {ends} {heard}")
