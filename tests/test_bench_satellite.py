"""bench/satellite.py runs end to end on a private virtual speaker and prints its rows and verdicts.

A smoke test only: it checks that the bench works, not what it measures (no timing is asserted).
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from magoo_core.testing.pytest_plugin import require_audio
from magoo_core.testing.virtual_audio import VirtualAudio

BENCH = Path(__file__).resolve().parent.parent / "bench" / "satellite.py"
ROW = re.compile(r"^(played|  player end|HA fallback|wake->chunk)\s+(-?\d+)\s+(-?\d+)\s+(-?\d+)\s+(-?\d+)$", re.M)


@pytest.fixture
def audio_available() -> None:
    """Skip when the bench cannot run here; with ``MAGOO_REQUIRE_AUDIO=1`` (CI) fail instead."""
    reason = VirtualAudio.unavailable_reason()
    if reason is None and shutil.which("mpv") is None:
        reason = "bench/satellite.py needs mpv: run ./scripts/setup.sh"
    require_audio(reason)


def test_bench_satellite_prints_its_rows_the_ratio_and_both_verdicts(audio_available):
    done = subprocess.run(
        [sys.executable, str(BENCH), "--turns", "2"], capture_output=True, text=True, timeout=150, stdin=subprocess.DEVNULL,
    )
    assert done.returncode == 0, f"stdout:\n{done.stdout}\nstderr:\n{done.stderr}"
    assert {match[0] for match in ROW.findall(done.stdout)} == {"played", "  player end", "HA fallback", "wake->chunk"}, done.stdout
    assert re.search(r"^ratio HA fallback/played \(p50\): -?\d+\.\d$", done.stdout, re.M), done.stdout
    assert re.search(r"^goal played p95 <= 100 ms: (met|NOT met) \(-?\d+ ms\)$", done.stdout, re.M), done.stdout
    assert re.search(r"^goal wake->first chunk p95 <= 1 frame: (met|NOT met) \(-?\d+\.\d\d frames of 80 ms\)$",
                     done.stdout, re.M), done.stdout
