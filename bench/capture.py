"""How cheap magoo's capture callback is, and whether it loses audio, on a busy machine.

    python bench/capture.py [--seconds 20] [--backend pyaudio|sounddevice|both]

Setup, once for the whole run:
  * a private PulseAudio server with a virtual microphone (``magoo_core.testing.virtual_audio``,
    which runs the repo's ``magoo_core/testing/pulse/pulse-up.sh``) in a temporary directory;
  * one busy-looping Python process per CPU, so the PortAudio callback thread has to compete
    for a core the whole time;
  * noise plus a 440 Hz tone played into the microphone (``paplay --device=micfeed``) for the
    whole run, so every buffer carries real, changing audio.

Then, one after the other under that load, each for ``--seconds`` from its first callback, at
16 kHz mono int16 with 640 frames (magoo's default 40 ms) per callback:

  * **magoo-pyaudio / magoo-sounddevice**: the plugin's real source, driven the way the engine
    drives it (``async with source``, ``async for chunk in source.stream()`` on an asyncio loop).
    The consumer computes each chunk's RMS level. ``stuck_after = 0`` so that no watchdog reopen
    can split a run. Callback cost is the source's own ``stats()`` (``callback_us_p50/p99/max``,
    timed inside ``CaptureSink.deliver`` from the top of the callback). Its ``CallbackTimer``
    keeps the last 2048 callbacks, so ``--seconds`` is capped at 80 (2000 callbacks) and the
    percentiles cover every callback of the run.
  * **thread-per-chunk**: the baseline, the capture pattern of the project magoo replaces,
    re-implemented on a raw PyAudio callback stream at the same rate, buffer size and device.
    Each callback starts ``threading.Thread(target=process, args=(in_data,))``; ``process()``
    takes a lock without blocking and, when another chunk's thread holds it, counts the chunk
    as skipped and returns; otherwise it computes the chunk's RMS level (the same work as
    magoo's consumer) and releases the lock. Its callback is timed the same way
    (``perf_counter_ns`` at the top and just before it returns) and every time is kept.
    The original did heavier work in ``process()`` (so it skipped more); with only an RMS to
    compute, skips show up only when thread start-up itself is delayed.
  * **wake-loop-per-chunk**: the usual asyncio hand-over, for comparison with magoo's polled
    queue: the callback calls ``loop.call_soon_threadsafe(process, in_data)`` on a loop running in
    another thread, which does the same RMS work. Timed the same way.

Reported per run: callbacks, callback cost median/p99/max in µs, frames delivered (reached
magoo's consumer; handled by the baseline's ``process()``) against frames expected, and frames
dropped (expected − delivered), with the causes: chunks lost after the callback (magoo's queue
overflowing; the baseline's skips) and callbacks PortAudio flagged with an input overflow.

Frames expected is the audio the run spans: the frames the callbacks received plus any gap in
the callback clock. PulseAudio hands buffers over in bursts, so a single callback may come
0–50 ms late; each callback's offset (its time minus the audio received so far / rate) stays
constant while no audio is lost and rises by n / rate when n frames are lost. The smallest
offset among the first and among the last 25 callbacks (late callbacks never lower it) gives
the gap, rounded to whole 40 ms buffers.

The goal is met when every magoo run has callback p99 ≤ 100 µs and drops nothing. The exit code
is 0 whether or not it is (this is a measurement); it is not 0 when the setup fails.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from magoo_core.audio import rms_level
from magoo_core.capture import BUFFER_SECONDS
from magoo_core.testing.virtual_audio import VirtualAudio
from magoo_core.types import AudioChunk

from common import private_audio, stop_on_sigterm

RATE = 16000
FRAMES = round(RATE * BUFFER_SECONDS)  # magoo's default buffer: 640 frames, 40 ms
TIMER_SIZE = 2048  # callbacks magoo's CallbackTimer keeps
MAX_SECONDS = 80  # 2000 callbacks: all of a run fits in the timer, with room for the ones at close
GOAL_P99_US = 100.0
OFFSET_WINDOW = 25  # callbacks at each end whose smallest clock offset anchors "expected"
FIRST_CALLBACK_TIMEOUT = 5.0
BASELINE = "thread-per-chunk"


@dataclass
class Run:
    name: str
    callbacks: int
    p50_us: float
    p99_us: float
    max_us: float
    delivered: int  # frames that reached the consumer
    expected: int  # frames the run spans
    lost_chunks: int  # after the callback: magoo's queue overflowed, the baseline skipped
    overflow_flags: int  # callbacks PortAudio flagged with paInputOverflow

    @property
    def dropped(self) -> int:
        return self.expected - self.delivered

    @property
    def meets_goal(self) -> bool:
        return self.p99_us <= GOAL_P99_US and self.dropped == 0 and self.lost_chunks == 0 and self.overflow_flags == 0


def expected_frames(times: Sequence[float], frames: Sequence[int]) -> int:
    """Frames from the first to the last callback: those received plus gaps in the callback clock.

    :param times: monotonic time of each callback, in order.
    :param frames: frames each of those callbacks carried.
    """
    received = np.cumsum(frames)
    offsets = np.asarray(times) - received / RATE
    window = max(1, min(OFFSET_WINDOW, len(offsets) // 4))
    gap_buffers = round((offsets[-window:].min() - offsets[:window].min()) * RATE / FRAMES)
    return int(received[-1]) + max(0, gap_buffers) * FRAMES  # a negative gap is lower latency, not audio


# ---- setup: server, load, microphone feed ----------------------------------------------------


@contextlib.contextmanager
def cpu_load(processes: int) -> Iterator[list[subprocess.Popen]]:
    """``processes`` Python processes spinning in a busy loop, killed on the way out."""
    busy = [
        subprocess.Popen([sys.executable, "-c", "while True: pass"], stdin=subprocess.DEVNULL)
        for _ in range(processes)
    ]
    try:
        yield busy
    finally:
        for proc in busy:
            proc.kill()
        for proc in busy:
            proc.wait()


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of ``pid`` so far (Linux)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def feed_audio(seconds: float) -> bytes:
    """``seconds`` of 16 kHz mono int16: a 440 Hz tone under white noise (never the same level twice)."""
    t = np.arange(round(seconds * RATE)) / RATE
    noise = np.random.default_rng(0).normal(0.0, 0.05, t.size)
    wave = 0.2 * np.sin(2 * np.pi * 440.0 * t) + noise
    return np.clip(np.rint(wave * 32767), -32768, 32767).astype("<i2").tobytes()


@contextlib.contextmanager
def mic_feed(audio: VirtualAudio, seconds: float) -> Iterator[subprocess.Popen]:
    """Play ``seconds`` of audio into the virtual microphone, stopped on the way out."""
    player = audio.play((feed_audio(seconds), RATE), wait=False)
    try:
        yield player
    finally:
        player.kill()
        player.wait()


# ---- magoo's sources --------------------------------------------------------------------------


def magoo_source_class(backend: str):
    if backend == "pyaudio":
        from magoo_pyaudio import PyAudioSource

        return PyAudioSource
    from magoo_sounddevice import SoundDeviceSource

    return SoundDeviceSource


async def capture_with_magoo(backend: str, seconds: float) -> Run:
    """Run magoo's ``backend`` source like the engine does for ``seconds`` after its first chunk."""
    source_class = magoo_source_class(backend)
    source = source_class(source_class.Config(sample_rate=RATE, frames_per_buffer=FRAMES, stuck_after=0))
    times: list[float] = []
    frames: list[int] = []
    async with source:
        async with contextlib.aclosing(source.stream()) as chunks:
            async for chunk in chunks:
                rms_level(chunk)  # the consumer's per-chunk work; the baseline does the same
                times.append(chunk.timestamp)
                frames.append(chunk.frames)
                if chunk.timestamp - times[0] >= seconds:
                    break
    stats = source.stats()
    if stats["reopens"]:
        raise RuntimeError(f"magoo-{backend} reopened its stream {stats['reopens']} time(s) during the run")
    return Run(
        name=f"magoo-{backend}",
        callbacks=len(times) + int(stats["overflows"]),
        p50_us=stats["callback_us_p50"],
        p99_us=stats["callback_us_p99"],
        max_us=stats["callback_us_max"],
        delivered=int(stats["frames"]),
        expected=expected_frames(times, frames),
        lost_chunks=int(stats["overflows"]),
        overflow_flags=int(stats["input_overflows"]),
    )


# ---- the baseline -----------------------------------------------------------------------------


class ThreadPerChunk:
    """The replaced project's capture: a thread per callback, chunks skipped while one is busy."""

    name = BASELINE

    def __init__(self, pyaudio) -> None:
        self.pyaudio = pyaudio
        self.lock = threading.Lock()
        self.callback_ns: list[int] = []
        self.times: list[float] = []
        self.frames: list[int] = []
        self.handled_frames: list[int] = []  # list.append is atomic: the threads need no other lock
        self.skipped: list[int] = []
        self.overflow_flags = 0

    def callback(self, in_data, frame_count, time_info, status):
        started = time.perf_counter_ns()
        self.times.append(time.monotonic())
        self.frames.append(frame_count)
        if status & self.pyaudio.paInputOverflow:
            self.overflow_flags += 1
        self.hand_over(in_data)
        self.callback_ns.append(time.perf_counter_ns() - started)
        return None, self.pyaudio.paContinue

    def hand_over(self, pcm: bytes) -> None:
        threading.Thread(target=self.process, args=(pcm,)).start()

    def process(self, pcm: bytes) -> None:
        if not self.lock.acquire(blocking=False):
            self.skipped.append(len(pcm) // 2)
            return
        try:
            chunk = AudioChunk(pcm, RATE, 1, 2, 0.0)
            rms_level(chunk)
            self.handled_frames.append(chunk.frames)
        finally:
            self.lock.release()

    def capture(self, seconds: float) -> None:
        """Record from the default input for ``seconds`` after the first callback."""
        pyaudio = self.pyaudio
        threads_before = threading.active_count()
        pa = pyaudio.PyAudio()
        try:
            stream = pa.open(
                format=pyaudio.paInt16,
                channels=1,
                rate=RATE,
                input=True,
                frames_per_buffer=FRAMES,
                stream_callback=self.callback,
                start=False,
            )
            try:
                stream.start_stream()
                self._wait(seconds)
            finally:
                stream.close()  # aborts; stop_stream() could block on a stalled device
        finally:
            pa.terminate()
        deadline = time.monotonic() + 2.0
        while threading.active_count() > threads_before and time.monotonic() < deadline:
            time.sleep(0.01)  # let the last chunks' threads finish

    def _wait(self, seconds: float) -> None:
        opened = time.monotonic()
        while not self.times:
            if time.monotonic() - opened > FIRST_CALLBACK_TIMEOUT:
                raise RuntimeError(f"{self.name}: no callback {FIRST_CALLBACK_TIMEOUT:g} s after starting the stream")
            time.sleep(0.01)
        while self.times[-1] - self.times[0] < seconds:
            time.sleep(0.01)

    def result(self) -> Run:
        us = np.asarray(self.callback_ns) / 1000.0
        p50, p99 = np.percentile(us, [50, 99])
        return Run(
            name=self.name,
            callbacks=len(self.callback_ns),
            p50_us=float(p50),
            p99_us=float(p99),
            max_us=float(us.max()),
            delivered=sum(self.handled_frames),
            expected=expected_frames(self.times, self.frames),
            lost_chunks=len(self.skipped),
            overflow_flags=self.overflow_flags,
        )


class WakeLoopPerChunk(ThreadPerChunk):
    """A callback that wakes an asyncio loop for every chunk (``loop.call_soon_threadsafe``), the
    usual way to hand audio to asyncio; the loop then does the consumer's work. magoo's queue is
    polled instead, because this wake is a system call that hands the GIL to the loop's thread."""

    name = "wake-loop-per-chunk"

    def capture(self, seconds: float) -> None:
        self.loop = asyncio.new_event_loop()
        runner = threading.Thread(target=self.loop.run_forever, name="bench-loop", daemon=True)
        runner.start()
        try:
            super().capture(seconds)
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            runner.join(5)
            self.loop.close()

    def hand_over(self, pcm: bytes) -> None:
        self.loop.call_soon_threadsafe(self.process, pcm)


def capture_with_baseline(pattern: type[ThreadPerChunk], seconds: float) -> Run:
    import pyaudio  # after the server is up: PortAudio reads the environment when it starts

    baseline = pattern(pyaudio)
    baseline.capture(seconds)
    return baseline.result()


# ---- report -----------------------------------------------------------------------------------


def print_table(runs: list[Run]) -> None:
    print(f"{'capture':<18} {'callbacks':>9} {'p50 µs':>8} {'p99 µs':>8} {'max µs':>9}"
          f" {'frames delivered/expected':>26} {'dropped':>8} {'lost':>5} {'flags':>5}")
    for run in runs:
        frames = f"{run.delivered}/{run.expected}"
        print(f"{run.name:<18} {run.callbacks:>9} {run.p50_us:>8.1f} {run.p99_us:>8.1f} {run.max_us:>9.1f}"
              f" {frames:>26} {run.dropped:>8} {run.lost_chunks:>5} {run.overflow_flags:>5}")
    print("dropped: frames expected − delivered; lost: chunks lost after the callback (magoo: queue full,"
          f" {BASELINE}: skipped, lock held); flags: callbacks with PortAudio's input-overflow flag")


def print_verdict(magoo_runs: list[Run], baseline: Run) -> None:
    for run in magoo_runs:
        print(f"p99 {BASELINE} / {run.name}: {baseline.p99_us / run.p99_us:.1f}x")
    missed = [run for run in magoo_runs if not run.meets_goal]
    goal = f"goal (callback p99 ≤ {GOAL_P99_US:g} µs and 0 dropped frames)"
    if not missed:
        print(f"{goal}: met by {', '.join(run.name for run in magoo_runs)}")
    else:
        why = "; ".join(f"{run.name}: p99 {run.p99_us:.1f} µs, {run.dropped} dropped frames,"
                        f" {run.lost_chunks} lost chunks, {run.overflow_flags} overflow flags" for run in missed)
        print(f"{goal}: NOT met ({why})")


# ---- main -------------------------------------------------------------------------------------


def seconds_arg(text: str) -> float:
    value = float(text)
    if not 1 <= value <= MAX_SECONDS:
        raise argparse.ArgumentTypeError(
            f"between 1 and {MAX_SECONDS} (magoo's callback timer keeps {TIMER_SIZE} callbacks of 40 ms)"
        )
    return value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=seconds_arg, default=20.0, help="seconds per capture run (1–80)")
    parser.add_argument("--backend", choices=("pyaudio", "sounddevice", "both"), default="both",
                        help="magoo source(s) to measure against the baseline")
    parser.add_argument("--load", type=int, default=os.cpu_count() or 2,
                        help="busy processes (default: one per CPU; 0: none, for a quick smoke run)")
    args = parser.parse_args()
    backends = ("pyaudio", "sounddevice") if args.backend == "both" else (args.backend,)
    stop_on_sigterm()

    feed_seconds = (len(backends) + 2) * (args.seconds + 6) + 10  # every run, its open and close, with margin
    with private_audio("bench/capture.py") as audio, cpu_load(args.load) as busy, mic_feed(audio, feed_seconds) as player:
        start, busy_before = time.monotonic(), [cpu_seconds(p.pid) for p in busy]
        magoo_runs = [asyncio.run(capture_with_magoo(backend, args.seconds)) for backend in backends]
        baseline = capture_with_baseline(ThreadPerChunk, args.seconds)
        waking = capture_with_baseline(WakeLoopPerChunk, args.seconds)
        elapsed = time.monotonic() - start
        busy_share = [(cpu_seconds(p.pid) - before) / elapsed for p, before in zip(busy, busy_before)]
        if player.poll() is not None:
            raise RuntimeError(f"the microphone feed (paplay) stopped early with exit code {player.returncode}")

    print(f"capture under load: {args.load} busy processes on {os.cpu_count()} CPUs"
          f" ({', '.join(f'{share:.0%}' for share in busy_share)} CPU each),"
          f" {RATE} Hz mono int16, {FRAMES} frames ({BUFFER_SECONDS * 1000:.0f} ms) per callback,"
          f" {args.seconds:g} s per run, every callback timed")
    print_table([*magoo_runs, baseline, waking])
    print_verdict(magoo_runs, baseline)


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        sys.exit("bench/capture.py: interrupted; the server, the load and the feed are stopped")
