"""bench/speak.py runs end to end on a private virtual speaker and prints its table and verdicts.

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

BENCH = Path(__file__).resolve().parent.parent / "bench" / "speak.py"
NEEDED_TOOLS = ("mpv", "espeak-ng", "lame")
ROW = re.compile(r"^(magoo ONE|magoo TEN|baseline)\s+(\d+)\s+(-?\d+)\s+(-?\d+)–(-?\d+)\s+(-?\d+)\s+(-?\d+)$", re.M)


def unavailable_reason() -> str | None:
    reason = VirtualAudio.unavailable_reason()
    if reason is not None:
        return reason
    missing = [tool for tool in NEEDED_TOOLS if shutil.which(tool) is None]
    if missing:
        return f"bench/speak.py needs {', '.join(missing)}: run ./scripts/setup.sh"
    return None


@pytest.fixture
def audio_available() -> None:
    """Skip when the bench cannot run here; with ``MAGOO_REQUIRE_AUDIO=1`` (CI) fail instead."""
    require_audio(unavailable_reason())


def test_bench_speak_prints_a_row_per_measurement_the_ratio_and_the_overhead(audio_available):
    done = subprocess.run(
        [sys.executable, str(BENCH), "--runs", "1"],
        capture_output=True, text=True, timeout=150, stdin=subprocess.DEVNULL,
    )
    assert done.returncode == 0, f"stdout:\n{done.stdout}\nstderr:\n{done.stderr}"
    rows = {match[0]: match[1:] for match in ROW.findall(done.stdout)}
    assert rows.keys() == {"magoo ONE", "magoo TEN", "baseline"}, done.stdout
    assert all(row[0] == "1" for row in rows.values()), done.stdout  # one run each
    assert re.search(r"^ratio ten/one: \d+\.\d\d \(goal <= 1\.1\): (met|not met)$", done.stdout, re.M), done.stdout
    assert re.search(
        r"^engine overhead over the server's first byte: -?\d+ ms \(goal <= 20 ms\): (met|not met)$", done.stdout, re.M
    ), done.stdout
