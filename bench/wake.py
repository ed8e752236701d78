"""What magoo costs on top of openWakeWord: the same audio through a bare loop and through ``magoo run``.

    python bench/wake.py [--minutes 10]

Builds ``--minutes`` of 16 kHz audio from the repository's test clips: ordinary speech (espeak
reading the GPL), white and pink noise and the openWakeWord tutorial clips, with a wake word
(hey_jarvis, alexa, hey_mycroft, okay_nabu) every ~75 s, each followed by 13 s of silence.

Then, each in its own process so both pay the same interpreter start and the ~2 s
``import openwakeword``, with CPU time (user + system) read from the child's rusage:

  (a) **bare**: a loop that calls openWakeWord's ``Model.predict`` on every 1280-sample frame,
      counts a detection when a model reaches 0.5 and then resets the model (what magoo does);
  (b) **magoo**: ``magoo run`` on a profile with the ``wav`` file source (``realtime = false``:
      as fast as possible), the ``openwakeword`` backend and the scripted STT, which hears no
      speech in the silence after each wake word.

for 1 model (hey_jarvis) and for 5 (alexa, hey_jarvis, hey_mycroft, hey_rhasspy, okay_nabu).
Each is run ``--repeat`` times, alternating, and the median CPU time is reported (a shared
machine varies by ±15 % from run to run). Prints CPU seconds, magoo/bare (goal ≤ 1.05), the
detections of each (must be equal, and the same in every run) and the 5-model/1-model ratio for
magoo (goal ≤ 1.3).
"""

from __future__ import annotations

import argparse
import json
import re
import resource
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "tests" / "data"
MAGOO = Path(sys.executable).parent / "magoo"
RATE = 16000
FRAME = 1280
THRESHOLD = 0.5
ONE_MODEL = ["hey_jarvis"]
FIVE_MODELS = ["alexa", "hey_jarvis", "hey_mycroft", "hey_rhasspy", "okay_nabu"]
FILLERS = [
    "negatives/espeak_gpl3_speech_60s.wav",
    "negatives/white_noise_10s.wav",
    "wake/openWakeWord/turn_on_the_office_lights_test_clip.wav",
    "negatives/pink_noise_10s.wav",
    "wake/openWakeWord/negative_reference.wav",
]
WAKE_WORDS = [
    "wake/wyoming-openwakeword/hey_jarvis.wav",
    "wake/openWakeWord/alexa_test.wav",
    "wake/openWakeWord/hey_mycroft_test.wav",
    "wake/wyoming-openwakeword/okay_nabu.wav",
    "wake/pymicro-wakeword/hey_jarvis_2.wav",
]


def clip(relative: str) -> np.ndarray:
    from magoo_core.audio import read_wav

    fmt, pcm = read_wav(DATA / relative)
    assert fmt.sample_rate == RATE and fmt.channels == 1, relative
    return np.frombuffer(pcm, dtype="<i2")


def build_audio(minutes: float, filler_seconds: float | None = None) -> np.ndarray:
    """Fillers and wake words in turn; every wake word has a second before and 13 s of silence after.

    ``filler_seconds`` cuts each filler to at most that long (the smoke test's short run), so the
    wake words come sooner; ``None`` keeps them whole.
    """
    cut = None if filler_seconds is None else int(filler_seconds * RATE)
    pieces, total, n = [], 0, 0
    while total < minutes * 60 * RATE:
        for part in (clip(FILLERS[n % len(FILLERS)])[:cut], np.zeros(RATE, np.int16), clip(WAKE_WORDS[n % len(WAKE_WORDS)]),
                     np.zeros(13 * RATE, np.int16)):
            pieces.append(part)
            total += len(part)
        n += 1
    return np.concatenate(pieces)[: int(minutes * 60 * RATE)]


# ---- (a) the bare loop, run in a child process --------------------------------------------------


def bare_loop(wav: Path, models: list[str]) -> None:
    """Print the number of detections as JSON. Child process."""
    from magoo_core.audio import read_wav
    from magoo_openwakeword import _install_litert_as_tflite_runtime

    _install_litert_as_tflite_runtime()
    import pyopen_wakeword
    from openwakeword.model import Model

    folder = Path(pyopen_wakeword.__file__).parent / "models"
    model = Model(
        wakeword_models=[str(folder / f"{name}.tflite") for name in models],
        inference_framework="tflite",
        melspec_model_path=str(folder / "melspectrogram.tflite"),
        embedding_model_path=str(folder / "embedding_model.tflite"),
    )
    _, pcm = read_wav(wav)
    samples = np.frombuffer(pcm, dtype="<i2")
    detections = 0
    for start in range(0, len(samples) - FRAME + 1, FRAME):
        scores = model.predict(samples[start : start + FRAME])
        if max(scores.values()) >= THRESHOLD:
            detections += 1
            model.reset()
    print(json.dumps({"detections": detections}))


# ---- (b) magoo run -----------------------------------------------------------------------------


def magoo_profile(folder: Path, wav: Path, models: list[str]) -> Path:
    entries = ", ".join(f'{{ name = "{name}" }}' for name in models)
    profile = folder / f"wake-{len(models)}.toml"
    profile.write_text(
        f"""[magoo]
name = "wake-bench"
log_level = "warning"

[audio_source]
backend = "wav"
path = "{wav}"
realtime = false
tail_silence = 0.0
chunk_ms = 80             # one openWakeWord frame per chunk, as a microphone would be set up

[wake]
backend = "openwakeword"
models = [{entries}]

[stt]
backend = "scripted"
"""
    )
    return profile


def cpu_of(command: list[str]) -> tuple[float, str]:
    """CPU seconds (user + system) of a child process run to its end, and its stdout."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    done = subprocess.run(command, capture_output=True, text=True, cwd=ROOT)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed ({done.returncode}):\n{done.stderr[-2000:]}")
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime), done.stdout


def run_pair(folder: Path, wav: Path, models: list[str], repeat: int) -> dict[str, float]:
    """Median CPU seconds of ``repeat`` bare and magoo runs, alternating, and their detections."""
    bare, magoo, found = [], [], {"bare_detections": set(), "magoo_detections": set()}
    for _ in range(repeat):
        cpu, out = cpu_of([sys.executable, __file__, "--bare", str(wav), *models])
        bare.append(cpu)
        found["bare_detections"].add(json.loads(out.strip().splitlines()[-1])["detections"])
        cpu, out = cpu_of([str(MAGOO), "run", "--profile", str(magoo_profile(folder, wav, models))])
        magoo.append(cpu)
        found["magoo_detections"].add(len(re.findall(r"wake word '", out)))
    detections = {key: "/".join(map(str, sorted(values))) for key, values in found.items()}
    return {"bare": statistics.median(bare), "magoo": statistics.median(magoo), **detections}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=10.0, help="minutes of audio (default 10)")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each; the median is reported (default 3)")
    parser.add_argument("--filler-seconds", type=float, help="cut each filler to at most this long (default: whole)")
    parser.add_argument("--bare", nargs="+", metavar=("WAV", "MODEL"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.bare:
        bare_loop(Path(args.bare[0]), args.bare[1:])
        return

    from magoo_core.audio import write_wav
    from magoo_core.types import AudioFormat

    with tempfile.TemporaryDirectory(prefix="magoo-wake-bench-") as scratch:
        folder = Path(scratch)
        wav = write_wav(folder / "bench.wav", build_audio(args.minutes, args.filler_seconds).tobytes(), AudioFormat(RATE))
        print(f"{args.minutes:g} min of audio, {len(WAKE_WORDS)} different wake word clips every ~75 s;"
              f" median CPU s per process of {args.repeat} runs")
        print(f"{'models':<8} {'bare':>8} {'magoo':>8} {'ratio':>7}  detections bare/magoo")
        results = {}
        for models in (ONE_MODEL, FIVE_MODELS):
            r = results[len(models)] = run_pair(folder, wav, models, args.repeat)
            print(
                f"{len(models):<8} {r['bare']:>8.2f} {r['magoo']:>8.2f} {r['magoo'] / r['bare']:>7.3f}"
                f"  {r['bare_detections']}/{r['magoo_detections']}"
            )
        scaling = results[5]["magoo"] / results[1]["magoo"]
        print(f"magoo 5 models / 1 model: {scaling:.3f} (goal ≤ 1.3)")
        worst = max(r["magoo"] / r["bare"] for r in results.values())
        equal = all(r["bare_detections"] == r["magoo_detections"] for r in results.values())
        print(f"goal magoo/bare ≤ 1.05: {'met' if worst <= 1.05 else 'missed'} (worst {worst:.3f});"
              f" detections equal: {'yes' if equal else 'NO'}")


if __name__ == "__main__":
    main()
