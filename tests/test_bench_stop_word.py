"""bench/stop_word.py runs end to end on a few clips and prints its table (a smoke test: the
numbers on three clips mean nothing; the full run's are in docs/duplex.md)."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parent.parent / "bench" / "stop_word.py"


@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="needs espeak-ng (./scripts/setup.sh)")
def test_the_stop_word_bench_runs_and_prints_its_table():
    done = subprocess.run(
        [sys.executable, str(BENCH), "--replies", "3", "--voices", "1"], capture_output=True, text=True, timeout=110
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert re.search(r"^detected: \d/3 ", done.stdout, re.M), done.stdout
    assert re.search(r"^false stops \(no echo cancellation\): \d/3 replies without the word$", done.stdout, re.M)
    assert re.search(r"^cpu: [\d.]+ % of one core .* ratio [\d.]+$", done.stdout, re.M)


def test_count_stops_is_the_measure_other_benches_call():
    sys.path.insert(0, str(BENCH.parent))
    try:
        import stop_word
    finally:
        sys.path.remove(str(BENCH.parent))
    if shutil.which("espeak-ng") is None:
        pytest.skip("needs espeak-ng")
    assert stop_word.count_stops([stop_word.say("stop"), stop_word.say("It is ten past three.")]) == [1, 0]
