"""What ``[wake.verify]`` buys and costs: recall, false wakes and CPU with and without a second opinion.

    python bench/verify.py [--minutes 10] [--quick]

The first detector is openWakeWord with the three wake words microWakeWord also ships (hey_jarvis,
alexa, hey_mycroft), all at once. It runs through magoo's own ``WakeWorker`` (lock-step, as for a
file) in four set-ups, each read from a profile like a user's:

  - **alone**;
  - **trigger_level 3**: openWakeWord's score must stay over its threshold for 3 frames in a row
    (the score-pattern check it already has);
  - **verify**: ``[wake.verify]`` with microWakeWord and its own cutoffs;
  - **verify 0.8**: the same with every cutoff at 0.8 (a second opinion may be less strict).

over three sets of audio, each clip with a second of silence before and after, the detector and
the verifier reset between clips:

  - **positives**: every recording of the three words in tests/data (tests/data/SOURCES.md) and the
    words spoken here by espeak-ng in 5 voices at 2 speeds;
  - **near words**: espeak-ng saying what each word's model wakes on ("hey jar", "hey jervis",
    "hey travis", "jarvis"; "a lexus", "alex", "alexis"; "hey micro", "hey microsoft", "my croft")
    in the same voices; no real recordings of near words exist in the project;
  - **background**: ``--minutes`` of espeak-ng reading the GPL-3 (Debian's common-licenses copy),
    voices changing every paragraph, then the negatives of tests/data (speech, noise,
    "computer", "snowboy", "hey jane", ...), scored as one stream: every wake there is false.

Prints, per set-up: the positives that woke their word (recordings of people and espeak-ng's
apart), false wakes on near words, false wakes per hour of
background, the verifier's CPU against the rest of the pass (thread CPU time, same run) and the extra
latency of a verified wake: audio waited after the first detection plus the verifier's CPU at
the candidate (median and max, ms). Last, the CPU of microWakeWord scoring every frame (the
alternative to scoring only around candidates) against openWakeWord's.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import statistics
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "tests" / "data"
RATE = 16000
CHUNK = 1280  # 80 ms chunks, as a microphone would be set up for openWakeWord
SEED = 0
WORDS = ("hey_jarvis", "alexa", "hey_mycroft")
VOICES = ("en", "en-us", "en+f2", "en-us+m3", "en-gb-scotland")
SPEEDS = (140, 170)
SPOKEN = {"hey_jarvis": "hey jarvis", "alexa": "alexa", "hey_mycroft": "hey my croft"}  # espeak says "mycroft" wrongly
NEAR = {
    "hey_jarvis": ("hey jar", "hey jervis", "hey travis", "jarvis"),
    "alexa": ("a lexus", "alex", "alexis"),
    "hey_mycroft": ("hey micro", "hey microsoft", "my croft"),
}
BACKGROUND = (
    "negatives/espeak_gpl3_speech_60s.wav", "negatives/white_noise_10s.wav", "negatives/pink_noise_10s.wav",
    "wake/openWakeWord/turn_on_the_office_lights_test_clip.wav", "wake/openWakeWord/negative_reference.wav",
    "wake/openWakeWord/hey_jane.wav", "wake/wyoming-openwakeword/computer.wav", "wake/wyoming-openwakeword/snowboy.wav",
    "wake/pymicro-wakeword/computer_computer.wav", "wake/pymicro-wakeword/computer_hey_peppa_pig.wav",
)
TEXT = Path("/usr/share/common-licenses/GPL-3")
FIRST = {"backend": "openwakeword", "models": list(WORDS)}
SETUPS = {
    "alone": FIRST,
    "trigger_level 3": {**FIRST, "trigger_level": 3},
    "verify": {**FIRST, "verify": {"backend": "microwakeword", "models": list(WORDS)}},
    "verify 0.8": {
        **FIRST,
        "verify": {"backend": "microwakeword", "models": [{"name": w, "probability_cutoff": 0.8} for w in WORDS]},
    },
}


# ---- the audio ----------------------------------------------------------------------------------


def clip(relative: str) -> np.ndarray:
    from magoo_core.audio import read_wav

    fmt, pcm = read_wav(DATA / relative)
    assert fmt.sample_rate == RATE and fmt.channels == 1, relative
    return np.frombuffer(pcm, dtype="<i2")


def espeak(text: str, voice: str, speed: int) -> np.ndarray:
    """``text`` spoken by espeak-ng, as 16 kHz mono samples (resampled once, by magoo_core.audio)."""
    from magoo_core.audio import AudioConverter
    from magoo_core.types import AudioChunk, AudioFormat

    wav = subprocess.run(["espeak-ng", "-v", voice, "-s", str(speed), "--stdout", text], capture_output=True, check=True).stdout
    chunk = AudioChunk(wav[44:], int.from_bytes(wav[24:28], "little"), 1, 2)
    return np.frombuffer(b"".join(c.pcm for c in AudioConverter(AudioFormat(RATE)).convert(chunk)), dtype="<i2")


def positives(quick: bool) -> dict[tuple[str, str], list[np.ndarray]]:
    """By (word, kind): the recordings of tests/data (``"recorded"``, people; its espeak folder's
    clips count as ``"espeak"``) and the word spoken here by espeak-ng."""
    found: dict[tuple[str, str], list[np.ndarray]] = {}
    voices = VOICES[:2] if quick else VOICES
    for word in WORDS:
        files = sorted(p for p in (DATA / "wake").glob("*/*.wav") if p.stem.startswith(word))
        found[word, "recorded"] = [clip(str(p.relative_to(DATA))) for p in files if p.parent.name != "espeak"]
        found[word, "espeak"] = [clip(str(p.relative_to(DATA))) for p in files if p.parent.name == "espeak"]
        found[word, "espeak"] += [espeak(SPOKEN[word], voice, speed) for voice in voices for speed in SPEEDS]
    return found


def near_words(quick: bool) -> dict[str, list[np.ndarray]]:
    voices = VOICES[:2] if quick else VOICES
    return {word: [espeak(text, v, s) for text in texts for v in voices for s in SPEEDS] for word, texts in NEAR.items()}


def background(minutes: float) -> np.ndarray:
    """``minutes`` of espeak-ng reading the GPL-3, a voice per paragraph, then the negatives of tests/data."""
    pieces, total = [], 0
    paragraphs = [p for p in TEXT.read_text().split("\n\n") if p.strip()] if TEXT.is_file() else []
    for n, paragraph in enumerate(paragraphs):
        if total >= minutes * 60 * RATE:
            break
        speech = espeak(" ".join(paragraph.split()), VOICES[n % len(VOICES)], SPEEDS[n % len(SPEEDS)])
        pieces.append(speech[: int(minutes * 60 * RATE) - total])
        total += len(pieces[-1])
    pieces += [clip(name) for name in BACKGROUND]
    return np.concatenate(pieces)


# ---- scoring through magoo's wake worker ----------------------------------------------------------


class Pass:
    """One set-up's wake worker (the profile's ``[wake]``, with its ``[wake.verify]``), fed on the loop."""

    def __init__(self, wake: dict) -> None:
        from magoo_core.settings import EngineSettings
        from magoo_core.testing import build_plugins, make_profile

        import magoo_microwakeword
        import magoo_openwakeword

        manager = build_plugins(magoo_openwakeword, magoo_microwakeword)
        self.spec = make_profile({"wake": wake}, manager).wake
        self.settings = EngineSettings()
        self.extra_ms: list[float] = []  # per verified wake: audio waited + the verifier's CPU at its candidate
        self.verifier_cpu = 0.0  # seconds
        self._check_cpu = 0.0

    def _timed(self, method, candidate: bool = False):
        def timed(*args):
            started = time.thread_time()
            try:
                return method(*args)
            finally:
                spent = time.thread_time() - started
                self.verifier_cpu += spent
                if candidate:
                    self._check_cpu = spent

        return timed

    async def __aenter__(self) -> Pass:
        from magoo_core.types import AudioChunk
        from magoo_core.wake_worker import WakeWorker

        np.random.seed(SEED)  # openWakeWord's feature buffer starts random
        self.detector = self.spec.create()
        await self.detector.__aenter__()
        slot = SimpleNamespace(instance=self.detector, restarting=False, unrecovered=0, spec=self.spec, configured=self.spec)
        self.worker = WakeWorker(slot, None, self.settings)
        self.worker.open()
        self.worker.set_live(False)
        await self.worker.listen(AudioChunk(bytes(2 * CHUNK), RATE, 1, 2))  # the verifier loads before the first chunk
        verifier = self.worker.verify
        if verifier is not None:  # its CPU, counted on the thread that scores (this one: lock-step)
            verifier.hear, verifier.check = self._timed(verifier.hear), self._timed(verifier.check, candidate=True)
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.worker.close()
        await self.detector.__aexit__(None, None, None)

    async def wakes(self, samples: np.ndarray) -> list[str]:
        """The wake words heard in ``samples`` (a turn would start at each); the worker is reset before."""
        from magoo_core.types import AudioChunk

        self.worker.reset()
        heard = []
        pcm = samples.astype("<i2").tobytes()
        for start in range(0, len(pcm) - 2 * CHUNK + 1, 2 * CHUNK):
            wake = await self.worker.listen(AudioChunk(pcm[start : start + 2 * CHUNK], RATE, 1, 2, start / 2 / RATE))
            if wake is not None:
                heard.append(wake.label)
                self.worker.woke(wake)
                self.worker.reset()  # as when its turn ends
                verifier = self.worker.verify
                if verifier is not None:
                    self.extra_ms.append((verifier.last_waited + self._check_cpu) * 1000)
        return heard


    async def woke(self, word: str, clips: list[np.ndarray]) -> int:
        """How many of ``clips`` (each with a second of silence before and after) woke ``word``."""
        silence = np.zeros(RATE, np.int16)
        return sum([word in await self.wakes(np.concatenate([silence, c, silence])) for c in clips])


async def run_setup(wake: dict, said: dict, near: dict, noise: np.ndarray) -> dict:
    async with Pass(wake) as scorer:
        started = time.thread_time()
        recall = {key: await scorer.woke(key[0], clips) for key, clips in said.items()}
        near_wakes = {w: await scorer.woke(w, clips) for w, clips in near.items()}
        false = len(await scorer.wakes(noise))
        cpu = time.thread_time() - started
    return {"recall": recall, "near": near_wakes, "false": false, "cpu": cpu, "extra": scorer.extra_ms,
            "verifier": scorer.verifier_cpu}


async def every_frame_cpu(audio: np.ndarray) -> dict[str, float]:
    """CPU seconds of each detector alone scoring every frame of ``audio``."""
    from magoo_core.audio import AudioConverter
    from magoo_core.types import AudioChunk

    import magoo_microwakeword
    import magoo_openwakeword

    out = {}
    pcm = audio.astype("<i2").tobytes()
    for name, cls in (("openwakeword", magoo_openwakeword.OpenWakeWordDetector), ("microwakeword", magoo_microwakeword.MicroWakeWordDetector)):
        detector = cls(cls.Config(models=list(WORDS)))
        await detector.__aenter__()
        converter = AudioConverter(detector.input_format, detector.frame_samples)
        started = time.thread_time()
        for start in range(0, len(pcm) - 2 * CHUNK + 1, 2 * CHUNK):
            for frame in converter.convert(AudioChunk(pcm[start : start + 2 * CHUNK], RATE, 1, 2)):
                if detector.process(frame) is not None:
                    detector.reset()
        out[name] = time.thread_time() - started
        await detector.__aexit__(None, None, None)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=10.0, help="minutes of espeak background speech (default 10)")
    parser.add_argument("--quick", action="store_true", help="2 voices instead of 5 and 1 minute of background (a smoke test)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    minutes = 1.0 if args.quick else args.minutes

    said, near, noise = positives(args.quick), near_words(args.quick), background(minutes)
    hours = len(noise) / RATE / 3600
    print(
        "positives: " + ", ".join(f"{w} {len(said[w, 'recorded'])} recorded + {len(said[w, 'espeak'])} espeak" for w in WORDS)
        + "; near words: "
        f"{', '.join(f'{w} {len(c)}' for w, c in near.items())}; background {len(noise) / RATE / 60:.1f} min"
    )
    results = {name: asyncio.run(run_setup(wake, said, near, noise)) for name, wake in SETUPS.items()}
    print(f"\n{'set-up':<16} {'woke on positives: recorded + espeak':>40} {'near-word wakes':>36} {'false/h':>8}"
          f" {'verifier CPU':>13} {'extra ms':>10}")
    print(f"{'':<16} {''.join(f'{w:>14}' for w in WORDS):>40} {''.join(f'{w:>12}' for w in WORDS):>36}")
    for name, r in results.items():
        recall = "".join(
            f"{r['recall'][w, 'recorded']:>6}/{len(said[w, 'recorded'])} +{r['recall'][w, 'espeak']:>3}/{len(said[w, 'espeak'])}"
            for w in WORDS
        )
        nearly = "".join(f"{r['near'][w]:>9}/{len(near[w]):<2}" for w in WORDS)
        extra = f"{statistics.median(r['extra']):.0f} / {max(r['extra']):.0f}" if r["extra"] else "-"
        share = f"{r['verifier'] / (r['cpu'] - r['verifier']):.3f}" if r["verifier"] else "-"
        print(f"{name:<16} {recall:>40} {nearly:>36} {r['false'] / hours:>8.1f} {share:>13} {extra:>10}")
    print("(woke on positives: clips that woke their word, of the recordings of people and of espeak-ng;"
          " near-word wakes: clips that woke the word they sound like; false/h: wakes per hour of background; verifier CPU: its thread CPU time / the rest of"
          " the pass's (the first detector and magoo's wake worker); extra ms: median / max of the audio waited"
          " after the first detection + the verifier's CPU at the candidate)")
    cost = asyncio.run(every_frame_cpu(noise))
    print(f"\nscoring every frame of the background: microWakeWord {cost['microwakeword']:.2f} s CPU,"
          f" openWakeWord {cost['openwakeword']:.2f} s: {cost['microwakeword'] / cost['openwakeword']:.3f} of the first"
          f" detector's cost, against {results['verify']['verifier'] / (results['verify']['cpu'] - results['verify']['verifier']):.3f}"
          " when it scores only around candidates")


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    main()
