"""espeak-ng speaking a whole turn of the engine, into a WAV file."""

from __future__ import annotations

import numpy as np

import magoo_espeak
from magoo_core.audio import read_wav
from magoo_core.testing import run_profile


async def test_a_turn_is_spoken_into_the_reply_wav(tmp_path):
    path = tmp_path / "reply.wav"
    record = await run_profile(
        {"tts": {"backend": "espeak"}, "player": {"backend": "wav", "path": str(path)}}, plugins=[magoo_espeak]
    )
    assert record.failures == []
    reply = record.replies[0]
    fmt, pcm = read_wav(path)
    audio = np.frombuffer(pcm, dtype="<i2")
    seconds = len(audio) / fmt.sample_rate
    assert fmt.sample_rate == magoo_espeak.ESPEAK_RATE
    # espeak-ng speaks about 2.5 words a second at 160 wpm, pauses included
    words = len(reply.split())
    assert 0.15 * words < seconds < 1.0 * words + 1.0, f"{seconds:.1f} s for {reply!r}"
    assert np.abs(audio).max() > 3000
    assert np.mean(np.abs(audio) > 500) > 0.2  # mostly sound, not a click and silence
