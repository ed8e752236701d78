"""Does magoo leak over days? Simulated days of audio through the engine, measured as they go.

    python bench/soak.py [--hours 72] [--turn-every 180] [--chunk-ms 80] [--samples 100] [--json FILE] [--real [--preroll S]]

The test profile's fake devices, no hardware. The built-in ``scripted`` source, read as fast as
the engine takes it (``realtime = false``: in lock-step with turns), loops one period of
``--turn-every`` seconds: quiet room tone (white noise at -50 dBFS, not digital zeros), a loud
tone (the wake word), a pause, a softer tone (the command), and room tone until the utterance
ends. Every period is one turn through the scripted wake detector and STT, the echo responder,
the tone TTS and the ``wav`` player, which overwrites one file (the ``memory`` player of the test
kit keeps every reply, so it cannot soak). No actuators: the log actuator's file would grow.
``mute_pre`` and ``mute_post`` are 0: they are real sleeps, which would only add wall time.

At start and then every ``hours / samples`` of audio (at the end of the first turn after that
mark, so every sample sees the engine in the same state, between two turns) it records RSS,
Python's allocated memory blocks, Python threads, the process's threads (``/proc/self/task``),
open file descriptors, asyncio tasks, the engine's history of timelines, turns, errors and the
engine's counters. It prints them as a table, then, after a warm-up (the first 10 % of the
audio), the growth of RSS, threads and fds from the first sample after the warm-up to the last,
and a least-squares line through RSS: its slope in KB per simulated hour with the standard error,
the scatter of the samples around it, and how much the line grows over the span. A leak is a
slope that is both far from zero in standard errors and large against the scatter and the goal;
a few KB an hour under a scatter of tens of KB is noise (the allocator, bounded caches). The engine
keeps its last 1000 turn timelines, so RSS rises until turn 1000 by design; a second line through
the samples after that isolates what else grows. PASS or FAIL against the goal: no crash, every
turn ok and no errors, RSS, threads and fds growing by at most 2 % after the warm-up. Exit code 1
on FAIL.

``--real`` swaps the fakes for the offline demo's real models (examples/demo.toml's [wake],
[stt], [responder] and [tts]: openWakeWord "hey jarvis", pocketsphinx with the command grammar,
the local responder, espeak-ng), and the tones for the demo's recording "hey jarvis … what time is
it" (3.6 s) followed by 1.5 s of room tone, so the native libraries (TFLite, pocketsphinx,
the espeak-ng processes) are soaked too. Every chunk is scored by openWakeWord, so it runs at about
40x real time instead of 1000x: give it fewer hours.

Then the baseline: the same source read for the same number of chunks by a bare loop, without
the engine. The engine's wall time per chunk (while listening: the turns' answers, when no
audio is read, are left out) divided by the bare loop's is what the engine adds per chunk.

80 ms chunks (what a microphone delivers) are the default: on 2 shared x86-64 cores the 72 h
take about 5 minutes, ~1000x real time, so larger chunks are not needed.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import math
import os
import sys
import tempfile
import threading
import time
import tomllib
import traceback
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from magoo_core.audio import write_wav
from magoo_core.engine import HISTORY, Engine
from magoo_core.plugins import create_plugin_manager, hookimpl
from magoo_core.profile import BackendSpec, Profile, parse_profile
from magoo_core.types import AudioFormat, Outcome

RATE = 16000
ROOM_TONE_RMS = 0.00316  # -50 dBFS: a quiet room through a USB microphone; far below speech_level
ROOM_TONE_PIECE = 10.0  # seconds of room tone per file segment: small pieces to re-chunk
# one turn at the end of every period: wake word, pause, command, room tone until the utterance ends
WAKE_SECONDS, GAP_SECONDS, COMMAND_SECONDS, TAIL_SECONDS = 0.4, 0.3, 1.0, 1.3
TURN_SECONDS = WAKE_SECONDS + GAP_SECONDS + COMMAND_SECONDS + TAIL_SECONDS
WARM_UP = 0.10  # of the audio
GOAL = 0.02  # growth after the warm-up, at most
PAGE_KB = os.sysconf("SC_PAGE_SIZE") // 1024
DEMO = Path(__file__).resolve().parent.parent / "examples" / "demo.toml"
DEMO_CLIP = DEMO.parent / "audio" / "hey_jarvis_what_time_is_it.wav"
DEMO_CLIP_SECONDS = 3.59
REAL_TAIL_SECONDS = 1.5  # pocketsphinx's end_silence (0.6 s) ends the command in it


# ---- the profile --------------------------------------------------------------------------------


def room_tone(folder: Path, seconds: float) -> Path:
    """A WAV of ``seconds`` of white noise at :data:`ROOM_TONE_RMS` (written once per length)."""
    path = folder / f"room-{seconds:g}s.wav"
    if not path.exists():
        noise = np.random.default_rng(int(seconds * 1000)).normal(0.0, ROOM_TONE_RMS * 32768, round(seconds * RATE))
        write_wav(path, np.clip(np.rint(noise), -32768, 32767).astype("<i2").tobytes(), AudioFormat(RATE))
    return path


def quiet_room(folder: Path, seconds: float) -> list[dict[str, Any]]:
    """``seconds`` of room tone as file segments of at most :data:`ROOM_TONE_PIECE` seconds."""
    pieces = [ROOM_TONE_PIECE] * int(seconds // ROOM_TONE_PIECE)
    if (rest := round(seconds - sum(pieces), 3)) > 0:
        pieces.append(rest)
    return [{"file": str(room_tone(folder, piece))} for piece in pieces]


def one_period(folder: Path, turn_every: float) -> list[dict[str, Any]]:
    """The script's segments: room tone, then one turn's audio, ``turn_every`` seconds in all."""
    return [
        *quiet_room(folder, turn_every - TURN_SECONDS),
        {"seconds": WAKE_SECONDS, "tone": 660.0, "amplitude": 0.5},  # "hey magoo"
        {"file": str(room_tone(folder, GAP_SECONDS))},
        {"seconds": COMMAND_SECONDS, "tone": 440.0, "amplitude": 0.3},  # "what time is it"
        {"file": str(room_tone(folder, TAIL_SECONDS))},  # STT's end_silence (0.5 s) ends the utterance
    ]


def real_period(folder: Path, turn_every: float) -> list[dict[str, Any]]:
    """Room tone, then the demo's recording (wake word and command) and room tone until the utterance ends."""
    return [
        *quiet_room(folder, turn_every - DEMO_CLIP_SECONDS - REAL_TAIL_SECONDS),
        {"file": str(DEMO_CLIP)},
        {"file": str(room_tone(folder, REAL_TAIL_SECONDS))},
    ]


def real_profile(folder: Path, turn_every: float, chunk_ms: int, preroll: float | None = None) -> dict[str, Any]:
    """The soak profile with the demo's real wake word, speech-to-text, responder and voice
    (``preroll``: the demo's unless given)."""
    demo = tomllib.loads(DEMO.read_text(encoding="utf-8"))
    profile = soak_profile(folder, turn_every, chunk_ms)
    profile["audio_source"]["segments"] = real_period(folder, turn_every)
    profile["engine"] |= {key: demo["engine"][key] for key in ("preroll", "capture_timeout")}
    if preroll is not None:
        profile["engine"]["preroll"] = preroll
    return {**profile, **{role: demo[role] for role in ("wake", "stt", "responder", "tts")}}


def soak_profile(folder: Path, turn_every: float, chunk_ms: int) -> dict[str, Any]:
    return {
        "magoo": {"name": "soak"},
        "engine": {"mute_pre": 0.0, "mute_post": 0.0},
        "audio_source": {
            "backend": "scripted",
            "realtime": False,
            "loop": True,
            "chunk_ms": chunk_ms,
            "segments": one_period(folder, turn_every),
        },
        "wake": {"backend": "scripted", "level": 0.2, "model": "hey_magoo"},
        "stt": {"backend": "scripted", "transcripts": ["what time is it"]},
        "responder": {"backend": "echo", "template": "You asked: {text}"},
        "tts": {"backend": "tone"},
        "player": {"backend": "wav", "path": str(folder / "reply.wav")},  # one file, overwritten
    }


# ---- sampling -----------------------------------------------------------------------------------


@dataclass
class Sample:
    """The process and the engine at one moment of the run."""

    audio_hours: float
    wall: float
    turns: int
    ok: int
    errors: int
    rss_kb: int
    blocks: int  # sys.getallocatedblocks(): Python objects alive, without the allocator's noise
    threads: int  # threading.active_count()
    tasks: int  # /proc/self/task: every thread, native ones included
    fds: int
    coroutines: int  # asyncio tasks
    timelines: int  # len(engine.timelines): bounded (HISTORY)
    counters: dict[str, float] = field(default_factory=dict)


def read_process() -> dict[str, int]:
    with open("/proc/self/statm") as statm:
        rss_pages = int(statm.read().split()[1])
    return {
        "rss_kb": rss_pages * PAGE_KB,
        "blocks": sys.getallocatedblocks(),
        "threads": threading.active_count(),
        "tasks": len(os.listdir("/proc/self/task")),
        "fds": len(os.listdir("/proc/self/fd")),
    }


class Sampler:
    """A plugin: samples the process at startup and at the end of the first turn after each mark.

    Also counts the turns that went well and the wall time of the answers (final transcript to the
    end of the reply), during which a lock-step source reads no audio.
    """

    def __init__(self, engine: Engine, every: float, turns: int) -> None:
        self.engine = engine
        self.every = every
        self.turns = turns
        self.samples: list[Sample] = []
        self.ok = 0
        self.answering = 0.0
        self._due = every
        self._start = time.perf_counter()

    @hookimpl
    def magoo_on_startup(self) -> None:
        self._start = time.perf_counter()
        self.take()

    @hookimpl
    def magoo_on_turn_end(self, timeline) -> None:
        if timeline.outcome is Outcome.OK:
            self.ok += 1
        if timeline.transcript is not None:
            self.answering += timeline.ended - timeline.transcript
        heard = self.engine.counters["audio_seconds"]
        if heard >= self._due or timeline.turn >= self.turns:
            self.take()
            while self._due <= heard:
                self._due += self.every

    def take(self) -> None:
        engine = self.engine
        status = engine.status()
        self.samples.append(Sample(
            audio_hours=engine.counters["audio_seconds"] / 3600,
            wall=time.perf_counter() - self._start,
            turns=engine.turns_done,
            ok=self.ok,
            errors=engine.errors,
            coroutines=len(asyncio.all_tasks()),
            timelines=len(engine.timelines),
            counters=dict(status.counters),
            **read_process(),
        ))


# ---- the two runs -------------------------------------------------------------------------------


@dataclass
class EngineRun:
    samples: list[Sample]
    wall: float
    frames: int
    audio_seconds: float
    answering: float
    turns: int
    ok: int
    errors: int
    warnings: int
    structures: dict[str, int]
    crash: str | None = None


class CountingHandler(logging.Handler):
    """Counts warnings and errors the run logs (a soak should log none)."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.count = 0

    def emit(self, record: logging.LogRecord) -> None:
        self.count += 1


def structure_sizes(engine: Engine) -> dict[str, int]:
    """The engine's own collections that live as long as the run: none may grow without bound."""
    plugins = engine.plugins
    return {
        "engine.timelines": len(engine.timelines),
        "engine.failures": len(engine.failures),
        "engine.wakes": len(engine.wakes),
        "engine.turns.tasks": len(engine.turns.tasks),
        "plugins.events._reported": len(plugins.events._reported),
        "plugins.events._slow": sum(len(calls) for calls in plugins.events._slow.values()),
        "plugins._info_by_plugin": len(plugins._info_by_plugin),
        "restart_budget._restarts": len(engine.restart_budget._restarts),
    }


async def run_engine(profile: Profile, plugins, turns: int, every: float) -> EngineRun:
    engine = Engine(profile, plugins, max_turns=turns)
    sampler = Sampler(engine, every, turns)
    plugins.pm.register(sampler, name="soak-sampler")
    warnings = CountingHandler()
    logging.getLogger().addHandler(warnings)
    crash = None
    start = time.perf_counter()
    try:
        result = await engine.run()
        if result.fatal is not None:
            crash = f"the engine stopped: {result.fatal}"
    except Exception:
        crash = traceback.format_exc()
    finally:
        logging.getLogger().removeHandler(warnings)
    wall = time.perf_counter() - start
    return EngineRun(
        samples=sampler.samples,
        wall=wall,
        frames=int(engine.counters["frames"]),
        audio_seconds=engine.counters["audio_seconds"],
        answering=sampler.answering,
        turns=engine.turns_done,
        ok=sampler.ok,
        errors=engine.errors,
        warnings=warnings.count,
        structures=structure_sizes(engine),
        crash=crash,
    )


async def run_bare(spec: BackendSpec, chunks: int) -> float:
    """Wall seconds to read ``chunks`` chunks from a fresh instance of the source, with nothing else."""
    source = spec.create()
    async with source:
        read = 0
        start = time.perf_counter()
        async with contextlib.aclosing(source.stream()) as stream:
            async for _ in stream:
                read += 1
                if read >= chunks:
                    break
        return time.perf_counter() - start


# ---- analysis -----------------------------------------------------------------------------------


def after_warm_up(samples: list[Sample], hours: float) -> list[Sample]:
    return [s for s in samples if s.audio_hours >= WARM_UP * hours]


def growth(samples: list[Sample], key: str) -> float:
    first, last = getattr(samples[0], key), getattr(samples[-1], key)
    return (last - first) / first


def fit(xs: list[float], ys: list[float]) -> tuple[float, float, float]:
    """Least squares ``y = a + b x``: the slope b, its standard error, and the scatter (residual SD)."""
    x, y = np.asarray(xs, float), np.asarray(ys, float)
    if len(x) < 3:
        return math.nan, math.nan, math.nan
    sxx = float(np.sum((x - x.mean()) ** 2))
    slope = float(np.sum((x - x.mean()) * (y - y.mean()))) / sxx
    residuals = y - (y.mean() + slope * (x - x.mean()))
    scatter = float(np.sqrt(np.sum(residuals**2) / (len(x) - 2)))
    return slope, scatter / math.sqrt(sxx), scatter


# ---- the report ---------------------------------------------------------------------------------


def print_table(samples: list[Sample]) -> None:
    print(f"{'audio h':>8} {'wall s':>7} {'turns':>6} {'ok':>6} {'errors':>6} {'RSS MB':>8} {'py blocks':>10}"
          f" {'py thr':>6} {'os thr':>6} {'fds':>4} {'asyncio':>7} {'timelines':>9} {'wakes':>6}")
    for s in samples:
        print(f"{s.audio_hours:8.2f} {s.wall:7.1f} {s.turns:6d} {s.ok:6d} {s.errors:6d} {s.rss_kb / 1024:8.2f}"
              f" {s.blocks:10d} {s.threads:6d} {s.tasks:6d} {s.fds:4d} {s.coroutines:7d} {s.timelines:9d}"
              f" {int(s.counters.get('wakes', 0)):6d}")


def trend(samples: list[Sample], what: str) -> dict[str, float]:
    """Print and return the least-squares slopes of RSS and of Python's blocks over ``samples``."""
    hours = [s.audio_hours for s in samples]
    slope, error, scatter = fit(hours, [s.rss_kb for s in samples])
    blocks, blocks_error, _ = fit(hours, [s.blocks for s in samples])
    span = hours[-1] - hours[0]
    line = slope * span / samples[0].rss_kb
    sigmas = slope / error if error > 0 else 0.0 if slope == 0 else math.inf
    print(f"  {what} ({len(samples)} samples, {hours[0]:.2f}-{hours[-1]:.2f} h): RSS {slope:+.1f} ± {error:.1f} KB"
          f" per simulated hour ({sigmas:+.1f} standard errors from 0), scatter ±{scatter:.0f} KB,"
          f" the line grows {line:+.2%} over {span:.1f} h; Python blocks {blocks:+.1f} ± {blocks_error:.1f} per hour")
    return {"rss_kb_per_hour": slope, "rss_stderr": error, "rss_scatter_kb": scatter, "rss_line_growth": line,
            "blocks_per_hour": blocks, "blocks_stderr": blocks_error}


def verdict(run: EngineRun, turns: int, hours: float) -> tuple[bool, dict[str, Any]]:
    """Print the growth figures and the checks against the goal; True when all pass."""
    measured = after_warm_up(run.samples, hours)
    figures: dict[str, Any] = {}
    checks: list[tuple[str, bool, str]] = [
        ("no crash", run.crash is None, "none" if run.crash is None else run.crash.strip().splitlines()[-1]),
        ("every turn ok", run.turns == turns and run.ok == turns, f"{run.ok} of {turns} ok ({run.turns} done)"),
        ("no errors", run.errors == 0, f"{run.errors} errors, {run.warnings} warnings logged"),
    ]
    if len(measured) < 2:
        checks.append(("samples", False, f"{len(measured)} after the warm-up: too few to measure growth"))
    else:
        print(f"after the warm-up (the first {WARM_UP:.0%} of the audio), least squares:")
        if len(measured) >= 3:
            figures["after_warm_up"] = trend(measured, "all")
        full = [s for s in measured if s.timelines == HISTORY]
        if len(full) >= 3:  # the history of timelines no longer grows: what is left would be a leak
            figures["history_full"] = trend(full, f"once engine.timelines holds its {HISTORY}")
        watched = (("rss_kb", "RSS KB"), ("threads", "Python threads"), ("tasks", "OS threads"), ("fds", "fds"))
        for key, label in watched:
            first, last = getattr(measured[0], key), getattr(measured[-1], key)
            change = growth(measured, key)
            figures[key] = {"first": first, "last": last, "growth": change}
            checks.append((label, change <= GOAL, f"{change:+.2%} ({first} → {last})"))
    print(f"goal: no crash, RSS/threads/fds growth ≤ {GOAL:.0%} after warm-up (and every turn ok, no errors)")
    for label, passed, shown in checks:
        print(f"  {'pass' if passed else 'FAIL':<4}  {label:<15} {shown}")
    figures["checks"] = {label: {"passed": passed, "shown": shown} for label, passed, shown in checks}
    return all(passed for _, passed, _ in checks), figures


def print_speed(run: EngineRun, bare: float, adds: str = "the engine adds") -> None:
    """The engine's speed, its cost per chunk and what it adds to a bare read of the same chunks."""
    if not run.frames:
        return
    counters = run.samples[-1].counters
    print("the engine's counters at the end: " + ", ".join(f"{name} {value:.0f}" for name, value in counters.items()))
    listening = (run.wall - run.answering) / run.frames
    print(f"engine: {run.audio_seconds / 3600:.2f} h of audio in {run.wall:.1f} s, {run.audio_seconds / run.wall:.0f}x"
          f" real time; {run.frames} chunks, {run.wall / run.frames * 1e6:.1f} µs per chunk in all,"
          f" {listening * 1e6:.1f} µs while listening; {run.answering / max(run.turns, 1) * 1000:.1f} ms per answer"
          " (transcript to the end of the reply, no audio read)")
    per_chunk = bare / run.frames
    print(f"bare: the same {run.frames} chunks from the same source without the engine in {bare:.1f} s,"
          f" {per_chunk * 1e6:.1f} µs per chunk")
    print(f"engine / bare per chunk while listening: {listening / per_chunk:.2f}x"
          f" ({adds} {(listening - per_chunk) * 1e6:.1f} µs per chunk)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--hours", type=float, default=72.0, help="hours of audio to simulate (default 72)")
    parser.add_argument("--turn-every", type=float, default=180.0, metavar="SECONDS",
                        help="seconds of audio per turn: room tone, then the wake word and a command (default 180)")
    parser.add_argument("--chunk-ms", type=int, default=80,
                        help="milliseconds of audio per chunk, 10..1000 (default 80)")
    parser.add_argument("--samples", type=int, default=100, help="measurements over the run (default 100)")
    parser.add_argument("--json", type=Path, metavar="FILE", help="also write the samples and figures to FILE as JSON")
    parser.add_argument("--real", action="store_true",
                        help="the offline demo's real models and recording instead of the fakes (about 40x real time)")
    parser.add_argument("--preroll", type=float, metavar="SECONDS",
                        help="with --real: the engine's preroll instead of the demo's (a longer one reaches into the wake word)")
    args = parser.parse_args()
    turn_audio = DEMO_CLIP_SECONDS + REAL_TAIL_SECONDS if args.real else TURN_SECONDS
    if args.turn_every < turn_audio + 2:
        parser.error(f"--turn-every must be at least {turn_audio + 2:g} s: a turn's own audio takes {turn_audio:g} s")
    if not 10 <= args.chunk_ms <= 1000:
        parser.error("--chunk-ms must be between 10 and 1000")
    turns = round(args.hours * 3600 / args.turn_every)
    if turns < 1 or args.samples < 2:
        parser.error("--hours must hold at least one turn, and --samples must be at least 2")
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")

    began = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="magoo-soak-") as scratch:
        folder = Path(scratch)
        plugins = create_plugin_manager(entry_points=args.real)
        made = (real_profile(folder, args.turn_every, args.chunk_ms, args.preroll) if args.real
                else soak_profile(folder, args.turn_every, args.chunk_ms))
        profile = parse_profile(made, plugins, base_dir=folder,
                                source="<soak profile>", environ={})
        hours = turns * args.turn_every / 3600
        models = "the demo's real models" if args.real else "the fakes"
        print(f"soak ({models}): {hours:g} h of audio in {args.chunk_ms} ms chunks, a turn every {args.turn_every:g} s"
              f" ({turns} turns), sampled every {hours * 60 / args.samples:.1f} min of audio", flush=True)
        run = asyncio.run(run_engine(profile, plugins, turns, hours * 3600 / args.samples))
        print_table(run.samples)
        passed, figures = verdict(run, turns, hours)
        print("the engine's collections at the end: "
              + ", ".join(f"{name} {size}" for name, size in run.structures.items()))
        bare = asyncio.run(run_bare(profile.audio_source, run.frames)) if run.frames else math.nan
        print_speed(run, bare, "the engine and openWakeWord's scoring add" if args.real else "the engine adds")
        print(f"the bench took {time.perf_counter() - began:.0f} s in all")
        print("PASS" if passed else "FAIL")
        if args.json is not None:
            args.json.write_text(json.dumps({
                "hours": hours, "turns": turns, "chunk_ms": args.chunk_ms, "turn_every": args.turn_every,
                "passed": passed, "crash": run.crash, "ok": run.ok, "turns_done": run.turns, "errors": run.errors,
                "warnings": run.warnings, "wall": run.wall, "frames": run.frames, "bare_wall": bare,
                "structures": run.structures, "figures": figures,
                "samples": [asdict(s) for s in run.samples],
            }, indent=1))
    sys.exit(0 if passed else 1)


if __name__ == "__main__":
    main()
