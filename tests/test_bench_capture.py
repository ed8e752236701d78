"""bench/capture.py runs end to end on a private virtual microphone and prints its table.

A smoke test only: it checks that the bench works, not what it measures (no timing is asserted).
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

from magoo_core.testing.pytest_plugin import require_audio
from magoo_core.testing.virtual_audio import VirtualAudio

BENCH = Path(__file__).resolve().parent.parent / "bench" / "capture.py"
NEEDED_MODULES = ("pyaudio", "sounddevice", "magoo_pyaudio", "magoo_sounddevice")


def unavailable_reason() -> str | None:
    reason = VirtualAudio.unavailable_reason()
    if reason is not None:
        return reason
    missing = [name for name in NEEDED_MODULES if importlib.util.find_spec(name) is None]
    if missing:
        return f"bench/capture.py needs {', '.join(missing)}: run ./scripts/setup.sh"
    return None


@pytest.fixture
def audio_available() -> None:
    """Skip when the bench cannot run here; with ``MAGOO_REQUIRE_AUDIO=1`` (CI) fail instead."""
    require_audio(unavailable_reason())


def test_bench_capture_prints_a_row_per_capture_and_the_verdict(audio_available):
    done = subprocess.run(
        # --load 0: no busy-looping processes. They only make the measurement honest; here they
        # would burn two cores of CPU for the whole run while the test checks only the rows.
        [sys.executable, str(BENCH), "--seconds", "2", "--backend", "both", "--load", "0"],
        capture_output=True, text=True, timeout=100, stdin=subprocess.DEVNULL,
    )
    assert done.returncode == 0, f"stdout:\n{done.stdout}\nstderr:\n{done.stderr}"
    rows = {line.split()[0]: line.split() for line in done.stdout.splitlines() if line.strip()}
    for name in ("magoo-pyaudio", "magoo-sounddevice", "thread-per-chunk", "wake-loop-per-chunk"):
        assert name in rows, f"no row for {name}:\n{done.stdout}"
        callbacks, frames = rows[name][1], rows[name][5]
        assert int(callbacks) > 0
        delivered, expected = (int(n) for n in frames.split("/"))
        assert delivered > 0 and expected > 0
    assert "p99 thread-per-chunk / magoo-pyaudio:" in done.stdout
    assert "goal (callback p99" in done.stdout
