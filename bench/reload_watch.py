"""What watching the profile (``[engine] watch_profile``) costs while the file does not change.

Measures this process's CPU time over an idle stretch with magoo's profile watch running
(:class:`magoo_core.reload_watch.ProfileWatch`), with watchfiles' default step (50 ms) for
comparison, and with no watch at all as the baseline, all in this run. Prints milliseconds of CPU
per idle minute and the ratio to the default step.

    python bench/reload_watch.py [--seconds 20]
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path

from magoo_core import reload_watch
from magoo_core.reload_watch import ProfileWatch


async def idle_cpu(seconds: float, step_ms: int | None) -> float:
    """CPU seconds this process spends over ``seconds`` of idling, watching with ``step_ms`` (None: not watching)."""
    with tempfile.TemporaryDirectory() as folder:
        profile = Path(folder) / "kitchen.toml"
        profile.write_text("")
        watch = ProfileWatch(profile, lambda: None)
        if step_ms is not None:
            reload_watch.STEP_MS = step_ms
            watch.start()
            await asyncio.sleep(1.0)  # the thread, inotify and anyio start up: not idle cost
        started = time.process_time()
        await asyncio.sleep(seconds)
        used = time.process_time() - started
        await watch.stop()
        return used


async def main(seconds: float) -> None:
    magoo_step = reload_watch.STEP_MS
    baseline = await idle_cpu(seconds, None)
    default = await idle_cpu(seconds, 50)
    ours = await idle_cpu(seconds, magoo_step)
    per_minute = 60.0 / seconds * 1000
    print(f"idle CPU per minute: no watch {baseline * per_minute:.1f} ms, watchfiles' default step (50 ms)"
          f" {default * per_minute:.1f} ms, magoo's step ({magoo_step} ms) {ours * per_minute:.1f} ms")
    print(f"magoo's watch costs {ours / default:.2f}x the default step's CPU while idle")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20.0, help="idle seconds measured per variant")
    asyncio.run(main(parser.parse_args().seconds))
