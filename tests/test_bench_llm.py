"""bench/llm.py runs end to end in quick mode and prints every figure it promises.

A smoke test only: it checks that the bench works (the real SDK against the loopback, a whole
engine turn); no timing is asserted, only that the figures and ratios are numbers.
"""

from __future__ import annotations

import math
import re
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parent.parent / "bench" / "llm.py"
NUMBER = r"(-?[\d.]+)"
FIRST_SOUND = re.compile(rf"^(tone|espeak)\s+first sentence -> first sound p50: 1 sentence\s+{NUMBER} ms \| 10 sentences\s+{NUMBER} ms \| ratio 10/1\s+{NUMBER}", re.M)
STEP = re.compile(rf"^\s*(speech_end->first_audio|speech_end->transcript|transcript->reply|reply->first_audio)\s+{NUMBER}\s+{NUMBER}\s+[-+][\d.]+$", re.M)


def test_the_llm_bench_prints_first_sound_ratios_and_the_turn_by_step():
    done = subprocess.run([sys.executable, str(BENCH), "--quick"], capture_output=True, text=True, timeout=180,
                          stdin=subprocess.DEVNULL)

    assert done.returncode == 0, f"stdout:\n{done.stdout}\nstderr:\n{done.stderr[-2000:]}"
    rows = {tts: numbers for tts, *numbers in FIRST_SOUND.findall(done.stdout)}
    assert "tone" in rows, done.stdout
    for one, ten, ratio in rows.values():
        assert all(math.isfinite(float(v)) and float(v) >= 0 for v in (one, ten, ratio)), done.stdout
    steps = {step: (model, echo) for step, model, echo in STEP.findall(done.stdout)}
    assert set(steps) == {"speech_end->first_audio", "speech_end->transcript", "transcript->reply", "reply->first_audio"}
    assert all(math.isfinite(float(v)) for pair in steps.values() for v in pair), done.stdout
