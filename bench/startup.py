"""How fast magoo starts, as ratios to a bare Python start measured in the same run.

    python bench/startup.py [--repeat N] [--no-run]

Prints the median wall time of
  * ``python -c pass``                               (the baseline),
  * ``magoo --help``, ``magoo --version``            (the CLI alone: no plugin is imported),
  * ``magoo plugins``                                (every plugin imported, no heavy library),
  * ``magoo run --profile examples/test.toml`` until it logs that it is listening
    (profile validation, backends entered, engine running),
and each divided by the baseline; for the short commands also the median CPU time (user + system)
and its ratio, which a busy machine disturbs less than the wall time. The commands take turns,
one run each per round, so a machine that gets busier half-way slows them all alike. The goal
for ``magoo --help``: at most 10 times the baseline and at most 0.2 s. Run it on an idle machine;
the ratios, not the seconds, are what compares across machines.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MAGOO = Path(sys.executable).parent / "magoo"
HELP_GOAL_RATIO = 10.0
HELP_GOAL_SECONDS = 0.2


def timed(command: list[str], cpu: list[float] | None = None) -> float:
    """Wall seconds of ``command``; its CPU seconds are appended to ``cpu``."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=ROOT)
    elapsed = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if cpu is not None:
        cpu.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
    return elapsed


def until_listening(profile: Path) -> float:
    """Seconds from spawning ``magoo run`` to its 'listening' log line."""
    start = time.perf_counter()
    with subprocess.Popen(
        [str(MAGOO), "run", "--quiet", "--profile", str(profile)],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, cwd=ROOT,
    ) as proc:
        for line in proc.stderr:
            if "listening" in line:
                elapsed = time.perf_counter() - start
                break
        else:
            raise RuntimeError(f"magoo run exited ({proc.wait()}) without listening")
        proc.stderr.read()
        proc.wait(timeout=60)
    return elapsed


def interleaved(repeat: int, measures: dict[str, Callable[[], float]]) -> dict[str, float]:
    """The median of ``repeat`` runs of each measure, taking turns; one unmeasured round first
    (it warms the file cache)."""
    for measure in measures.values():
        measure()
    times: dict[str, list[float]] = {label: [] for label in measures}
    for _ in range(repeat):
        for label, measure in measures.items():
            times[label].append(measure())
    return {label: statistics.median(values) for label, values in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=7, help="runs per measurement (median is reported)")
    parser.add_argument("--no-run", action="store_true", help="leave out `magoo run` (the CLI alone)")
    args = parser.parse_args()

    commands = {
        "python -c pass": [sys.executable, "-c", "pass"],
        "magoo --help": [str(MAGOO), "--help"],
        "magoo --version": [str(MAGOO), "--version"],
        "magoo plugins": [str(MAGOO), "plugins"],
    }
    cpu: dict[str, list[float]] = {label: [] for label in commands}
    measures: dict[str, Callable[[], float]] = {
        label: (lambda command=command, spent=cpu[label]: timed(command, spent)) for label, command in commands.items()
    }
    if not args.no_run:
        measures["magoo run → listening"] = lambda: until_listening(ROOT / "examples" / "test.toml")
    medians = interleaved(args.repeat, measures)

    baseline = medians["python -c pass"]
    cpu_baseline = statistics.median(cpu["python -c pass"])
    print(f"{'':24s} {'wall':>8s}      {'ratio':6s}   {'cpu':>8s}      ratio")
    for label, seconds in medians.items():
        line = f"{label:24s} {seconds * 1000:8.1f} ms   {seconds / baseline:5.2f}x"
        if cpu.get(label):
            spent = statistics.median(cpu[label])
            line += f"   {spent * 1000:8.1f} ms   {spent / cpu_baseline:5.2f}x"
        print(line)
    help_time = medians["magoo --help"]
    met = help_time / baseline <= HELP_GOAL_RATIO and help_time <= HELP_GOAL_SECONDS
    print(
        f"goal for magoo --help (<= {HELP_GOAL_RATIO:g}x and <= {HELP_GOAL_SECONDS * 1000:g} ms):"
        f" {'met' if met else 'NOT met'}"
    )


if __name__ == "__main__":
    main()
