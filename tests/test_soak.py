"""bench/soak.py, short: 1.5 simulated hours of audio through the engine leave nothing behind.

The full soak (72 h) is a bench script; this runs the same script on 30 turns, in its own process
so the figures are the engine's alone, and checks behaviour, not speed: no crash, every turn ok,
no errors, and after the warm-up the same threads and file descriptors at the end as at the
start (exactly), RSS within a generous 10 % (a short run is noisy).
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parent.parent / "bench" / "soak.py"
HOURS, TURN_EVERY = 1.5, 180
TURNS = round(HOURS * 3600 / TURN_EVERY)


def load_bench():
    spec = importlib.util.spec_from_file_location("magoo_bench_soak", BENCH)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up while being defined
    spec.loader.exec_module(module)
    return module


@pytest.mark.timeout(300)  # the soak's own limit: CPU-bound, it takes minutes beside other workers
def test_a_short_soak_completes_every_turn_and_leaves_no_threads_or_fds_behind(tmp_path):
    report = tmp_path / "soak.json"
    done = subprocess.run(
        [sys.executable, str(BENCH), "--hours", str(HOURS), "--turn-every", str(TURN_EVERY), "--json", str(report)],
        capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL,
    )

    assert done.returncode == 0, f"stdout:\n{done.stdout}\nstderr:\n{done.stderr[-3000:]}"
    assert done.stdout.rstrip().endswith("PASS")
    run = json.loads(report.read_text())
    assert run["crash"] is None
    assert (run["turns"], run["turns_done"], run["ok"]) == (TURNS, TURNS, TURNS)
    assert (run["errors"], run["warnings"]) == (0, 0)
    samples = run["samples"]
    assert [s["turns"] for s in samples] == list(range(TURNS + 1))  # at start, then after every turn
    assert samples[-1]["counters"]["wakes"] == TURNS
    assert samples[-1]["audio_hours"] >= HOURS - 0.01

    after_warm_up = [s for s in samples if s["audio_hours"] >= 0.1 * HOURS]
    first, last = after_warm_up[0], after_warm_up[-1]
    for key in ("threads", "tasks", "fds", "coroutines"):
        assert last[key] == first[key], f"{key}: {first[key]} after the warm-up, {last[key]} at the end"
    assert last["rss_kb"] <= 1.10 * first["rss_kb"]
    assert run["structures"]["engine.failures"] == 0
    assert run["structures"]["engine.turns.tasks"] == 0


@pytest.mark.timeout(300)  # the soak's own limit: CPU-bound, it takes minutes beside other workers
def test_the_real_models_soak_too_and_every_turn_hears_the_command(tmp_path):
    """--real: openWakeWord, pocketsphinx, the local responder and espeak-ng on the demo's recording."""
    report = tmp_path / "soak.json"
    # Six turns 30 s apart (a turn's audio is ~5 s): 3 min of audio to score, not the 6 min of one
    # every 60 s; what is checked, every turn heard with the real models, is the same.
    done = subprocess.run(
        [sys.executable, str(BENCH), "--real", "--hours", "0.05", "--turn-every", "30", "--samples", "3",
         "--json", str(report)],
        capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL,
    )

    assert done.returncode == 0, f"stdout:\n{done.stdout}\nstderr:\n{done.stderr[-3000:]}"
    assert "soak (the demo's real models)" in done.stdout and done.stdout.rstrip().endswith("PASS")
    run = json.loads(report.read_text())
    assert (run["turns"], run["turns_done"], run["ok"], run["errors"]) == (6, 6, 6, 0)
    assert run["samples"][-1]["counters"]["wakes"] == 6  # the real wake word, every time


def test_the_verdict_fails_a_run_that_leaks_a_file_descriptor_per_sample(capsys):
    soak = load_bench()

    def sample(hour: int) -> object:
        return soak.Sample(
            audio_hours=hour, wall=hour, turns=hour, ok=hour, errors=0, rss_kb=60000, blocks=180000,
            threads=2, tasks=3, fds=9 + hour, coroutines=4, timelines=hour,
        )

    run = soak.EngineRun(
        samples=[sample(hour) for hour in range(11)], wall=10.0, frames=450000, audio_seconds=36000.0,
        answering=0.1, turns=10, ok=10, errors=0, warnings=0, structures={},
    )

    passed, figures = soak.verdict(run, turns=10, hours=10)

    assert not passed
    assert figures["checks"]["fds"]["passed"] is False
    assert figures["checks"]["RSS KB"]["passed"] is True
    assert "FAIL  fds" in capsys.readouterr().out
