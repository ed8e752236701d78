"""What ``magoo meter`` costs: the same profile and audio under ``magoo run`` and under the meter.

    python bench/meter.py [--seconds 30] [--repeat 3]

The audio is the repository's "hey Jarvis, what time is it" between stretches of silence, played
by the ``wav`` source in real time (a microphone's pace: the meter's cost is per second of wall
clock, 12 frames a second), scored by openWakeWord (hey_jarvis), with the scripted STT and no
speech output, so the engine's own work is the wake scoring a Pi does all day.

Each run is a process of its own; CPU time (user + system) is read from the child's rusage. The
meter draws on a pseudo-terminal (100 × 30, in the alternate screen, as over SSH), whose output is
read and thrown away. To leave out the start-up (imports, loading the model), which is the same
for both, each is also run on a 1-second file, and the steady CPU is long minus short. Runs
alternate, ``--repeat`` of each; medians are reported.

Prints the CPU seconds of each, the meter/run ratio of the steady part (goal ≤ 1.05: a few
percent) and of the whole runs, and what the meter adds in % of one core.
"""

from __future__ import annotations

import argparse
import fcntl
import os
import pty
import resource
import statistics
import struct
import subprocess
import sys
import tempfile
import termios
import threading
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
MAGOO = Path(sys.executable).parent / "magoo"
CLIP = ROOT / "examples" / "audio" / "hey_jarvis_what_time_is_it.wav"
RATE = 16000
SHORT = 1.0


def audio(seconds: float) -> np.ndarray:
    """``seconds`` of 16 kHz audio: the wake-word clip, then silence, again and again."""
    from magoo_core.audio import read_wav

    _, pcm = read_wav(CLIP)
    clip = np.frombuffer(pcm, np.int16)
    period = np.concatenate([clip, np.zeros(RATE * 4, np.int16)])
    repeats = int(np.ceil(seconds * RATE / len(period)))
    return np.tile(period, repeats)[: int(seconds * RATE)]


def profile(folder: Path, wav: Path) -> Path:
    path = folder / f"{wav.stem}.toml"
    path.write_text(f"""[magoo]
name = "meter-bench"
log_level = "warning"

[audio_source]
backend = "wav"
path = "{wav}"
realtime = true
tail_silence = 0.0

[wake]
backend = "openwakeword"
models = [{{ name = "hey_jarvis" }}]

[stt]
backend = "scripted"
""")
    return path


def cpu_of(command: list[str], terminal: bool) -> float:
    """CPU seconds (user + system) of a child run to its end; on a pseudo-terminal if ``terminal``."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    if terminal:
        leader, follower = pty.openpty()
        fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 30, 100, 0, 0))
        drain = threading.Thread(target=_drain, args=(leader,), daemon=True)
        drain.start()
        process = subprocess.Popen(command, stdin=follower, stdout=follower, stderr=subprocess.PIPE, cwd=ROOT)
        os.close(follower)
        _, err = process.communicate()
        os.close(leader)
    else:
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=ROOT)
        _, err = process.communicate()
    if process.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed ({process.returncode}):\n{err.decode()[-2000:]}")
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def _drain(fd: int) -> None:
    try:
        while os.read(fd, 65536):
            pass
    except OSError:
        pass


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=30.0, help="seconds of audio, played in real time (default 30)")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each; the median is reported (default 3)")
    args = parser.parse_args()

    from magoo_core.audio import write_wav
    from magoo_core.types import AudioFormat

    with tempfile.TemporaryDirectory(prefix="magoo-meter-bench-") as scratch:
        folder = Path(scratch)
        long = profile(folder, write_wav(folder / "long.wav", audio(args.seconds).tobytes(), AudioFormat(RATE)))
        short = profile(folder, write_wav(folder / "short.wav", audio(SHORT).tobytes(), AudioFormat(RATE)))
        runs = {"run": ([str(MAGOO), "run", "-q", "-p"], False), "meter": ([str(MAGOO), "meter", "-p"], True)}
        cpu: dict[tuple[str, str], list[float]] = {}
        for _ in range(args.repeat):
            for name, (command, terminal) in runs.items():
                for length, path in (("long", long), ("short", short)):
                    cpu.setdefault((name, length), []).append(cpu_of([*command, str(path)], terminal))
        median = {key: statistics.median(values) for key, values in cpu.items()}
        steady = {name: median[(name, "long")] - median[(name, "short")] for name in runs}
        print(f"{args.seconds:g} s of audio in real time, openWakeWord hey_jarvis; median CPU s of {args.repeat} runs")
        print(f"{'':<14} {'whole':>8} {'start-up':>9} {'steady':>8}")
        for name in runs:
            print(f"magoo {name:<8} {median[(name, 'long')]:>8.2f} {median[(name, 'short')]:>9.2f} {steady[name]:>8.2f}")
        ratio = steady["meter"] / steady["run"]
        whole = median[("meter", "long")] / median[("run", "long")]
        added = 100 * (steady["meter"] - steady["run"]) / (args.seconds - SHORT)
        print(f"meter/run: steady {ratio:.3f}, whole runs {whole:.3f}; the meter adds {added:.2f} % of one core")
        print(f"goal steady meter/run ≤ 1.05: {'met' if ratio <= 1.05 else 'missed'}")


if __name__ == "__main__":
    main()
