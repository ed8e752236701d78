"""bench/duplex.py runs end to end on a tiny size and prints its table (a smoke test: the numbers
of a real run are in docs/duplex.md; here only that the cancellers do their job at all)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parent.parent / "bench" / "duplex.py"


# 34 s of audio per method scored by openWakeWord and run through the canceller, and 5 replies' worth
# for the stop word: ~10 s of CPU.
@pytest.mark.timeout(120)
def test_the_duplex_bench_runs_and_echo_cancellation_takes_the_echo_out():
    done = subprocess.run(
        [sys.executable, str(BENCH), "--replies", "3", "--user", "2", "--methods", "speex", "--json",
         "--stops", "2", "--stop-replies", "3", "--stop-settle", "0"],
        capture_output=True, text=True, timeout=110,
    )

    assert done.returncode == 0, done.stderr[-2000:]
    assert "stop word: 'stop' over 2 replies" in done.stdout
    results = json.loads(done.stdout.strip().splitlines()[-1])
    speex, off = results["methods"]["speex"], results["methods"]["off"]
    assert speex["erle_median_db"] > 15  # three replies are mostly convergence: a real run gives ~50 dB
    assert speex["self_wakes"] <= off["self_wakes"] and speex["user_wakes"] >= off["user_wakes"]
    assert 0 < speex["cpu_core_share"] < 0.15
    assert off["erle_median_db"] is None
    (threshold,) = results["stop_word"]["speex"]  # the default's, the only one asked
    stop_off, stop_speex = results["stop_word"]["off"][threshold], results["stop_word"]["speex"][threshold]
    assert stop_speex["counted"] == 2 and stop_speex["settling"] == 0
    # unconverged (no settling here), so only: the cleaned signal hears "stop" no worse and stops
    # itself no more than the raw one; a real run's numbers are in docs/duplex.md
    assert stop_speex["heard"] >= stop_off["heard"] and stop_speex["false"] <= stop_off["false"] <= 3
