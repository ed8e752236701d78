"""bench/duplex.py runs end to end on a tiny size and prints its table (a smoke test: the numbers
of a real run are in docs/duplex.md; here only that the cancellers do their job at all)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parent.parent / "bench" / "duplex.py"


# 34 s of audio per method scored by openWakeWord and run through the canceller: ~7 s of CPU.
@pytest.mark.timeout(120)
def test_the_duplex_bench_runs_and_echo_cancellation_takes_the_echo_out():
    done = subprocess.run(
        [sys.executable, str(BENCH), "--replies", "3", "--user", "2", "--methods", "speex", "--json"],
        capture_output=True, text=True, timeout=110,
    )

    assert done.returncode == 0, done.stderr[-2000:]
    assert "stop word, speex:" in done.stdout
    results = json.loads(done.stdout.strip().splitlines()[-1])
    speex, off = results["methods"]["speex"], results["methods"]["off"]
    assert speex["erle_median_db"] > 15  # three replies are mostly convergence: a real run gives ~50 dB
    assert speex["self_wakes"] <= off["self_wakes"] and speex["user_wakes"] >= off["user_wakes"]
    assert 0 < speex["cpu_core_share"] < 0.15
    assert off["erle_median_db"] is None
