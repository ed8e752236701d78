"""Echo cancellation: is it on, can its method load here, what it costs, where its reference is.

The cost is measured on the spot: the profile's method cancels two seconds of synthetic echo at
16 kHz, and its CPU time is shown as a share of one core (the bench, ``bench/duplex.py``, puts it
against the wake scoring). The delay is measured by the running canceller, which logs it
("echo delay measured: N ms"); with a fixed ``delay`` the row shows that value.
"""

from __future__ import annotations

import shutil
import time

from ..echo_backends import EchoUnavailable, make_canceller
from .context import Context
from .rows import Check, fail, ok, warn
from .running import in_daemon_thread, run_command

NAME = "echo cancellation"
MEASURE_SECONDS = 2.0
RATE = 16000


def measure_cpu(method: str, tail: float) -> float:
    """CPU seconds per second of audio for ``method`` on a synthetic echo. Blocks ~50 ms."""
    import numpy as np

    rng = np.random.default_rng(0)
    far = (rng.standard_normal(int(MEASURE_SECONDS * RATE)) * 3000).astype(np.int16)
    near = (np.convolve(far, np.exp(-np.arange(800) / 100) * 0.05)[: len(far)]).astype(np.int16)
    canceller = make_canceller(method, RATE, tail)
    try:
        began = time.process_time()
        for i in range(0, len(far) - canceller.frame + 1, canceller.frame):
            canceller.process(near[i : i + canceller.frame], far[i : i + canceller.frame])
        return (time.process_time() - began) / MEASURE_SECONDS
    finally:
        canceller.close()


async def check_echo(context: Context) -> list[Check]:
    settings = context.profile.engine.echo_cancel if context.profile is not None else None
    if settings is None or not settings.enabled:
        mute = context.profile.engine.mute if context.profile is not None else "auto"
        return [ok(NAME, f"off: the microphone is muted while magoo speaks (mute = {mute!r}); see docs/duplex.md")]
    try:
        share = await in_daemon_thread(lambda: measure_cpu(settings.method, settings.tail), 10.0)
    except EchoUnavailable as exc:
        return [fail(NAME, f"on, method {settings.method}: cannot load: {exc}", "install what it names, or set method = \"speex\"")]
    delay = "measured while running (logged: 'echo delay measured')" if settings.delay == "auto" else f"{settings.delay} ms (fixed)"
    rows = [ok(NAME, f"on, method {settings.method}; CPU {share * 100:.1f} % of one core at 16 kHz; delay {delay}")]
    rows.append(await _reference_row(settings.reference))
    return rows


async def _reference_row(source: str) -> Check:
    name = "echo reference"
    if shutil.which("parec") is None or shutil.which("pactl") is None:
        return fail(name, "parec/pactl are not installed: the speaker's sound cannot be read", "sudo apt install pulseaudio-utils")
    wanted = source
    if source == "@DEFAULT_MONITOR@":
        try:
            code, out, _ = await run_command(["pactl", "get-default-sink"], 2.0)
        except TimeoutError:
            code, out = 1, ""
        if code != 0 or not out.strip():
            return warn(name, "no sound server answers: the reference (the output's monitor) cannot be read",
                        "start PulseAudio or PipeWire; until then magoo mutes while speaking")
        wanted = f"{out.strip()}.monitor"
    try:
        code, out, _ = await run_command(["pactl", "list", "short", "sources"], 2.0)
    except TimeoutError:
        code, out = 1, ""
    names = [line.split("\t")[1] for line in out.splitlines() if "\t" in line]
    if wanted in names:
        return ok(name, f"{wanted} (what the speaker plays)")
    return fail(name, f"no source {wanted!r}; found: {', '.join(names) or 'none'}",
                "set [engine.echo_cancel] reference to the monitor of the sink magoo plays to")
