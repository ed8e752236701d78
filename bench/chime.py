"""How soon the wake sound is heard: the engine decides a wake → the chime's first sound at the speaker.

    python bench/chime.py [--runs 22] [--each]

Setup, all in this one process and its event loop:
  * a private PulseAudio server (``magoo_core.testing.virtual_audio``) whose default sink
    ``speaker`` is recorded from its monitor (``parec``, 16 kHz mono int16, 10 ms latency) for
    the whole bench;
  * **magoo**: the real engine (``Engine.run``) with a live scripted microphone (a wake beep and a
    command tone per turn, 4.2 s apart), the scripted wake detector and STT, the echo responder,
    the tone TTS (a 0.5 s reply, heard well after the chime), the ``mpv`` player, and
    ``[engine.sounds] wake = true`` (magoo's 120 ms chime). The moment the engine decided the wake
    is the turn's ``detected`` (taken in the same call that asks for the chime). The first turn
    is a warm-up and not counted.
  * **baseline**: no magoo: ``mpv --no-config --no-video --audio-device=pulse wake.wav`` (the
    same file) started at a known moment, as a program that plays a chime would. ``--runs``
    times, half before and half after the magoo run, so that drift on a shared machine affects both.

"Sound" is the start of the first 10 ms of the recording whose RMS is above 300 (of int16) after
the moment (searched from 20 ms before it: the recording is placed in monotonic time by
``Recording.index_at`` to about 10 ms, so a delay may come out a few ms below 0); the 100 ms before
that must be quiet (else the bench stops: the onset would be another sound's). Reported: p50 and p95 of
moment → sound for both rows, and the ratio magoo / baseline (of the p50s).

Goal (issue 18, section 6): magoo's p95 <= 60 ms. Sound times have a resolution of 10 ms and
parec's latency (the same for both rows). The exit code is 0 whether or not the goal is met
(this is a measurement); it is 1 when the setup fails or a turn did not end OK.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import sys
import time
from pathlib import Path

import numpy as np

from common import private_audio, stop_on_sigterm

from magoo_core.engine import Engine
from magoo_core.plugins import create_plugin_manager
from magoo_core.profile import parse_profile
from magoo_core.speech import DEFAULT_SOUNDS
from magoo_core.types import Outcome

FRAME = 160  # 10 ms at the recording's 16 kHz
LOUD_RMS = 300.0
WINDOW = 3.0  # seconds after the moment in which the first sound must come
SLACK = 0.02  # seconds: the recording is placed in monotonic time to about 10 ms, so search from a bit before
GAP = 3.0  # seconds of quiet after each turn's command: the reply is said, the microphone opens
CHIME = DEFAULT_SOUNDS / "wake.wav"


class SetupError(Exception):
    """The bench could not measure (a tool is missing, nothing was heard, a turn failed)."""


def profile_data(turns: int) -> dict:
    parts: list[dict] = [{"seconds": 1.0}]
    for _ in range(turns):
        parts += [
            {"seconds": 0.4, "tone": 660.0, "amplitude": 0.5},
            {"seconds": 0.2},
            {"seconds": 0.6, "tone": 440.0, "amplitude": 0.3},
            {"seconds": GAP},
        ]
    return {
        "engine": {"sounds": {"wake": True}},
        "audio_source": {"backend": "scripted", "realtime": True, "segments": parts},
        "wake": {"backend": "scripted", "level": 0.2},
        "stt": {"backend": "scripted", "transcripts": ["what time is it"]},
        "responder": {"backend": "echo"},
        "tts": {"backend": "tone", "max_seconds": 0.5},
        "player": {"backend": "mpv"},
    }


async def run_magoo(turns: int) -> list[float]:
    """The moments the engine decided each wake, warm-up excluded."""
    plugins = create_plugin_manager()
    profile = parse_profile(profile_data(turns), plugins, base_dir=Path.cwd(), source="<bench/chime.py>", environ={})
    result = await Engine(profile, plugins, max_turns=turns).run()
    if result.fatal:
        raise SetupError(f"magoo stopped: {result.fatal}")
    bad = [t for t in result.timelines if t.outcome is not Outcome.OK]
    if bad or len(result.timelines) != turns:
        raise SetupError(f"{len(result.timelines)} turns of {turns}; not OK: {[t.summary() for t in bad]}")
    return [t.detected for t in result.timelines[1:]]


async def run_baseline(runs: int) -> list[float]:
    moments = []
    for _ in range(runs):
        started = time.monotonic()
        mpv = await asyncio.create_subprocess_exec(
            "mpv", "--no-config", "--no-video", "--no-input-terminal", "--audio-device=pulse", str(CHIME),
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
        )
        code = await asyncio.wait_for(mpv.wait(), 30)
        if code != 0:
            raise SetupError(f"mpv exited with code {code}: {(await mpv.stderr.read()).decode().strip()}")
        moments.append(started)
        await asyncio.sleep(0.5)
    return moments


async def measure(audio, runs: int) -> dict[str, list[float]]:
    before = (runs + 1) // 2
    with audio.record() as recording:
        await asyncio.to_thread(recording.wait_for_data)
        baseline = await run_baseline(before)
        magoo = await run_magoo(runs + 1)
        baseline += await run_baseline(runs - before)
        await asyncio.sleep(0.5)  # parec's latency: the last sound reaches the recording
        samples = recording.samples()
    frames = samples[: len(samples) // FRAME * FRAME].astype(np.float64).reshape(-1, FRAME)
    loudness = np.sqrt((frames * frames).mean(axis=1))

    def delays(moments: list[float], what: str) -> list[float]:
        out = []
        for i, moment in enumerate(moments):
            start = max(0, recording.index_at(moment - SLACK) // FRAME)
            end = min(len(loudness), recording.index_at(moment + WINDOW) // FRAME + 1)
            before = loudness[max(0, start - 10):start]  # the 100 ms before that
            if before.size and before.max() > LOUD_RMS:  # then the onset found would be something else's
                loud_for = 10 * int(np.argmax(before[::-1] <= LOUD_RMS) or before.size)
                raise SetupError(f"{what} #{i + 1}: the speaker was not quiet in the 100 ms before the moment (loud for {loud_for} ms)")
            loud = np.nonzero(loudness[start:end] > LOUD_RMS)[0]
            if not loud.size:
                raise SetupError(f"{what} #{i + 1}: nothing was heard within {WINDOW:g} s")
            out.append(recording.moment_of((start + int(loud[0])) * FRAME) - moment)
        return out

    return {"magoo": delays(magoo, "magoo"), "baseline": delays(baseline, "baseline")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=22, help="chimes measured per row (default 22)")
    parser.add_argument("--each", action="store_true", help="also print every measurement")
    args = parser.parse_args()
    if args.runs < 2:
        parser.error("--runs: at least 2")
    stop_on_sigterm()
    if shutil.which("mpv") is None:
        sys.exit("bench/chime.py: mpv is not installed (sudo apt install mpv)")
    try:
        with private_audio("bench/chime.py") as audio:
            rows = asyncio.run(measure(audio, args.runs))
    except SetupError as e:
        sys.exit(f"bench/chime.py: {e}")
    print(f"wake decided -> chime's first sound at the speaker, {args.runs} runs per row (ms)")
    print(f"{'row':10} {'p50':>6} {'p95':>6} {'min':>6} {'max':>6}")
    p50 = {}
    for name, values in rows.items():
        ms = np.array(values) * 1000
        p50[name] = float(np.percentile(ms, 50))
        print(f"{name:10} {p50[name]:6.0f} {np.percentile(ms, 95):6.0f} {ms.min():6.0f} {ms.max():6.0f}")
        if args.each:
            print("           " + " ".join(f"{v:.0f}" for v in ms))
    p95 = float(np.percentile(np.array(rows["magoo"]) * 1000, 95))
    print(f"ratio magoo/baseline (p50): {p50['magoo'] / p50['baseline']:.2f}")
    print(f"goal p95 <= 60 ms: {'met' if p95 <= 60 else 'NOT met'} ({p95:.0f} ms)")


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        sys.exit("bench/chime.py: interrupted; the server and the players are stopped")
