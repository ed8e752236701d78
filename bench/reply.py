"""What a huge reply costs the event loop: the reply path of magoo before and after issue 17's bound.

    python bench/reply.py [--sizes 60000,20000000] [--old-commit b792897] [--timeout 120]

Each case runs in a fresh Python process (so its peak memory is its own) on an asyncio loop with
a ticker task that sleeps 10 ms at a time and records the longest gap between two ticks: how
long the loop was blocked. The process builds the reply text, notes its resident memory, then
runs the engine's reply path on it and reports the peak resident memory above that baseline
(``ru_maxrss``) and the bytes that went to the log and the story.

  * **old**: the reply path as it was at ``--old-commit`` (its ``magoo_core/speakable.py``,
    read with ``git show``): ``log.info("turn %d: reply %r", ...)``, the story's reply line
    with the whole text, then ``speakable(text)`` on the loop.
  * **new**: this tree's path: the log and story lines through ``shown()``, then
    ``await spoken_reply(text, max_chars=4000, clean=True)`` (cut, cleaned off the loop).

Two texts of each size: ``chat``, markdown a model writes (bold, links, list items), and
``hostile``, ``"*a "`` repeated, which made the old emphasis pattern scan to the end of the line
from every asterisk. A case that does not finish within ``--timeout`` seconds is killed and shown
as such. Printed: one row per case, and the ratio old/new of the blocked time for each text.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import io
import json
import logging
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TEXTS = {
    "chat": "**Sure!** Here is [the answer](https://example.com/a?b=1) you asked for.\n- one _point_ here\n",
    "hostile": "*a ",
}


def _text(kind: str, size: int) -> str:
    piece = TEXTS[kind]
    return piece * (size // len(piece))  # one allocation: a slice would double the baseline's peak


def _rss_mb() -> float:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * resource.getpagesize() / 2**20


async def _measure(path: str, text: str, old_module: str | None) -> dict[str, float]:
    log_out = io.StringIO()
    log = logging.getLogger("bench.reply")
    log.addHandler(logging.StreamHandler(log_out))
    log.setLevel(logging.INFO)
    log.propagate = False
    story = io.StringIO()
    longest = 0.0
    done = False

    async def ticker() -> None:
        nonlocal longest
        last = time.perf_counter()
        while not done:
            await asyncio.sleep(0.01)
            now = time.perf_counter()
            longest = max(longest, now - last - 0.01)
            last = now

    task = asyncio.create_task(ticker())
    await asyncio.sleep(0.05)
    start = time.perf_counter()
    if path == "old":
        spec = importlib.util.spec_from_file_location("old_speakable", old_module)
        old = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(old)
        log.info("turn %d: reply %r", 1, text)
        story.write(f'turn 1: reply "{text}"\n')
        said = old.speakable(text)
    else:
        from magoo_core.speakable import shown, spoken_reply

        log.info("turn %d: reply %r", 1, shown(text))
        story.write(f'turn 1: reply "{shown(text)}"\n')
        said = await spoken_reply(text, max_chars=4000, clean=True, turn=1)
    seconds = time.perf_counter() - start
    await asyncio.sleep(0.05)
    done = True
    await task
    return {"seconds": seconds, "blocked": longest, "said": len(said), "logged": len(log_out.getvalue()) + len(story.getvalue())}


def _child(args: argparse.Namespace) -> None:
    sys.path.insert(0, str(ROOT))
    text = _text(args.kind, args.size)
    base = _rss_mb()
    result = asyncio.run(_measure(args.path, text, args.old_module))
    result["peak_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 - base
    print(json.dumps(result))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="60000,20000000")
    parser.add_argument("--old-commit", default="b792897")
    parser.add_argument("--timeout", type=float, default=120.0)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--path", help=argparse.SUPPRESS)
    parser.add_argument("--kind", help=argparse.SUPPRESS)
    parser.add_argument("--size", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--old-module", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _child(args)
        return
    with tempfile.TemporaryDirectory() as scratch:
        old_module = Path(scratch) / "old_speakable.py"
        source = subprocess.run(
            ["git", "show", f"{args.old_commit}:magoo_core/speakable.py"], cwd=ROOT, capture_output=True, text=True, check=True
        ).stdout
        old_module.write_text(source)
        print(f"{'size':>10} {'text':8} {'path':4} {'blocked s':>10} {'peak MB':>8} {'logged bytes':>13} {'said':>6}")
        blocked: dict[tuple[int, str, str], float] = {}
        for size in (int(s) for s in args.sizes.split(",")):
            for kind in TEXTS:
                for path in ("old", "new"):
                    command = [sys.executable, __file__, "--child", "--path", path, "--kind", kind, "--size", str(size),
                               "--old-module", str(old_module)]
                    try:
                        out = subprocess.run(command, capture_output=True, text=True, timeout=args.timeout, check=True).stdout
                    except subprocess.TimeoutExpired:
                        print(f"{size:>10} {kind:8} {path:4} {'> ' + format(args.timeout, 'g'):>10} {'killed':>8}")
                        blocked[size, kind, path] = args.timeout
                        continue
                    r = json.loads(out)
                    blocked[size, kind, path] = r["blocked"]
                    print(f"{size:>10} {kind:8} {path:4} {r['blocked']:>10.3f} {r['peak_mb']:>8.1f} {r['logged']:>13} {r['said']:>6}")
                ratio = blocked[size, kind, "old"] / max(blocked[size, kind, "new"], 1e-3)
                print(f"{'':>10} {kind:8} old/new blocked ratio {ratio:.0f}")


if __name__ == "__main__":
    main()
