"""How fast magoo starts, as ratios to a bare Python start measured in the same run.

    python bench/startup.py [--repeat N]

Prints the median wall time of
  * ``python -c pass``                               (the baseline),
  * ``magoo --help``                                 (plugin discovery + CLI),
  * ``magoo run --profile examples/test.toml`` until it logs that it is listening
    (profile validation, backends entered, engine running),
and each of the last two divided by the baseline. Run it on an idle machine; the ratios, not the
seconds, are what compares across machines.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MAGOO = Path(sys.executable).parent / "magoo"


def timed(command: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=ROOT)
    return time.perf_counter() - start


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


def median_of(repeat: int, measure, *args) -> float:
    measure(*args)  # warm the file cache
    return statistics.median(measure(*args) for _ in range(repeat))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=7, help="runs per measurement (median is reported)")
    args = parser.parse_args()

    baseline = median_of(args.repeat, timed, [sys.executable, "-c", "pass"])
    help_time = median_of(args.repeat, timed, [str(MAGOO), "--help"])
    listening = median_of(args.repeat, until_listening, ROOT / "examples" / "test.toml")

    print(f"python -c pass            {baseline * 1000:8.1f} ms   1.00x (baseline)")
    print(f"magoo --help              {help_time * 1000:8.1f} ms   {help_time / baseline:5.2f}x")
    print(f"magoo run → listening     {listening * 1000:8.1f} ms   {listening / baseline:5.2f}x")


if __name__ == "__main__":
    main()
