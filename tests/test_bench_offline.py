"""bench/offline.py runs end to end in quick mode and prints every figure it promises.

A smoke test only: it checks that the bench works and that grammar mode hears the demo's command
exactly; no timing is asserted, only that the ratios are numbers.
"""

from __future__ import annotations

import math
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parent.parent / "bench" / "offline.py"
VALUE = r"(-?[\d.]+|-?inf|nan)"
NUMBER = rf"\s+{VALUE}"
POCKETSPHINX_ROW = re.compile(rf'^(grammar|full){NUMBER * 5}\s+"(.*?)" -> "(.*?)"', re.M)
ESPEAK_ROW = re.compile(rf'^\s*{VALUE}{NUMBER * 4}\s+"(.*)"$', re.M)
DEMO_ROW = re.compile(rf"^speech_end->first_audio{NUMBER}\s", re.M)


def positive_finite(*texts: str) -> bool:
    return all(math.isfinite(float(text)) and float(text) > 0 for text in texts)


@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="the bench needs espeak-ng: run ./scripts/setup.sh")
def test_the_offline_bench_prints_real_time_factors_ratios_and_the_demo_turn(virtual_audio):
    # With this process's private PulseAudio server in the environment the demo's mpv has a speaker;
    # without one its [player.backup] would record into examples/out/, in the repository.
    done = subprocess.run(
        [sys.executable, str(BENCH), "--quick"],
        capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL,
    )

    assert done.returncode == 0, f"stdout:\n{done.stdout}\nstderr:\n{done.stderr[-2000:]}"
    rows = {mode: rest for mode, *rest in POCKETSPHINX_ROW.findall(done.stdout)}
    assert rows.keys() == {"grammar", "full"}, done.stdout
    for audio, magoo, bare, ratio, wer, clip, _ in rows.values():
        assert positive_finite(audio, magoo, bare, ratio), done.stdout
        assert clip == "what time is it" and float(wer) >= 0
    *_, wer, _, heard = rows["grammar"]
    assert (heard, wer) == ("what time is it", "0.00"), done.stdout
    ((audio, first_chunk, magoo, bare, ratio, phrase),) = ESPEAK_ROW.findall(done.stdout)
    assert positive_finite(audio, first_chunk, magoo, bare, ratio), done.stdout
    assert phrase.startswith("It is "), done.stdout  # the local responder's time
    (speech_end_to_first_audio,) = DEMO_ROW.findall(done.stdout)
    assert positive_finite(speech_end_to_first_audio), done.stdout
    assert re.search(r"^  reply played by mpv: 1 run\(s\)$", done.stdout, re.M), done.stdout  # not into examples/out/


@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="the bench needs espeak-ng: run ./scripts/setup.sh")
def test_the_offline_bench_plays_the_demo_through_mpv_told_and_not_told():
    done = subprocess.run(
        [sys.executable, str(BENCH), "--speaker", "--quick", "--fast"],
        capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL,
    )

    assert done.returncode == 0, f"stdout:\n{done.stdout}\nstderr:\n{done.stderr[-2000:]}"
    assert "demo turn through mpv, 1 run(s) of each" in done.stdout, done.stdout  # a speaker: mpv, not the backup
    told = re.findall(rf"reply->first_audio, player (told|not told)\s+{VALUE} ms", done.stdout)
    assert [name for name, _ in told] == ["told", "not told"] and positive_finite(*(ms for _, ms in told)), done.stdout
    (ratio,) = re.findall(rf"told / not told: {VALUE}", done.stdout)
    assert positive_finite(ratio), done.stdout
