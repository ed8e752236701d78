"""Full duplex, side by side in one run: echo cancellation off, ``webrtc`` and ``speex``.

The echo path is made in-process so every method hears exactly the same microphone: each reply
(espeak-ng, 16 kHz) is "played" (pushed into the canceller's reference with its play time), and
the microphone gets it back through a synthetic room (an exponentially decaying impulse response,
RT60 0.2-0.4 s, a direct path and a delay of 60-140 ms that the canceller must measure), plus mic
noise at -60 dBFS. The microphone is stamped with its capture clock (jittered like a real one).
The canceller is the engine's own stage (:class:`magoo_core.echo_cancel.EchoCancel`), the wake
scoring the real openWakeWord ``hey_jarvis`` model.

What it prints, per method:

- **ERLE** (echo return loss enhancement) on replies: 10·log10 of the echo's energy over what is
  left of it, on the 10 ms frames where the far end plays, after the first 2 s (convergence);
  goal ≥ 25 dB. Median and 10th percentile over replies.
- **self-wakes**: ``--replies`` replies whose text contains "hey Jarvis", microphone open, scored
  by openWakeWord; goal 0 with echo cancellation on (off: counted).
- **user wake over a reply**: a recorded "hey Jarvis" mixed into the microphone in the middle of a
  reply at 0 dB speech-to-echo; detected goal ≥ 90 %.
- **CPU**: the stage's CPU time per second of audio (share of one core at 16 kHz; goal ≤ 15 %), and
  its ratio to openWakeWord's scoring cost measured on the same audio in the same run.
- **stop word**: "stop" (espeak-ng, 8 voices x 3 speeds) said over ``--stops`` replies at 0 dB
  speech-to-echo, detected goal ≥ 90 %; false stops on ``--stop-replies`` replies alone, a third of
  them saying stop-like words ("a stop at the bakery", "stops", "stopping"), goal 0; the real
  :class:`~magoo_core.stop_word.StopWord` on each method's cleaned microphone, one playing per reply,
  at the default threshold or each of ``--stop-thresholds``; a "stop" in the first ``settle_s`` s of
  playing is not counted (the stop word is deaf then while the canceller converges).

Usage::

    .venv/bin/python bench/duplex.py                    # 200 replies, 40 user wakes (~3 min)
    .venv/bin/python bench/duplex.py --replies 3 --user 2 --methods webrtc   # a smoke run
"""

from __future__ import annotations

import argparse
import json
import logging
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from magoo_core.audio import read_wav  # noqa: E402
from magoo_core.echo_cancel import EchoCancel  # noqa: E402
from magoo_core.echo_reference import ReferenceBuffer  # noqa: E402
from magoo_core.settings import EchoCancelSettings, StopWordSettings  # noqa: E402
from magoo_core.types import AudioChunk  # noqa: E402

RATE = 16000
CHUNK = 1280  # the microphone's chunk (80 ms), as the sources give it
FRAME = RATE // 100
THRESHOLD = 0.5
CONVERGED = 2.0  # seconds of stream before ERLE counts
USER_CLIPS = [
    "tests/data/wake/wyoming-openwakeword/hey_jarvis.wav",
    "tests/data/wake/pymicro-wakeword/hey_jarvis_2.wav",
    "tests/data/wake/pymicro-wakeword/hey_jarvis_3.wav",
]
OPENERS = ["Sure.", "Okay.", "Right, so", "Here is what I found.", "Good question.", "Well,"]
MIDDLES = [
    "you can always say hey Jarvis when you need me",
    "the phrase hey Jarvis wakes me up",
    "next time just say hey Jarvis and ask",
    "hey Jarvis is my name, as you know",
    "remember, hey Jarvis, then your question",
]
CLOSERS = ["The weather is mild today.", "Your timer is set.", "That is all for now.", "I turned the lights off.", ""]
PLAIN = [
    "The weather today is mild with a light breeze from the west and some sun in the afternoon.",
    "I set a timer for ten minutes, and I will tell you when it is done, so you can relax until then.",
    "The kitchen lights are off now, and the living room lamp stays on at half brightness as you asked.",
    "Here is a short summary of the news: markets were calm, and the football match ended in a draw.",
]


def reply_texts(count: int, with_wake: bool) -> list[str]:
    """``count`` varied reply texts; each contains "hey Jarvis" when ``with_wake``."""
    if not with_wake:
        return [PLAIN[i % len(PLAIN)] for i in range(count)]
    return [
        f"{OPENERS[i % len(OPENERS)]} {MIDDLES[(i // 2) % len(MIDDLES)]}. {CLOSERS[(i // 3) % len(CLOSERS)]}".strip()
        for i in range(count)
    ]


def speak(text: str, index: int, folder: Path) -> np.ndarray:
    """espeak-ng's voice (alternating en-us / en, speed 140-185 wpm), as float 16 kHz samples."""
    import soxr

    path = folder / f"reply-{index}.wav"
    voice, speed = ("en-us", "en")[index % 2], 140 + 15 * (index % 4)
    subprocess.run(["espeak-ng", "-v", voice, "-s", str(speed), "-w", str(path), text], check=True, timeout=30)
    fmt, pcm = read_wav(path)
    samples = np.frombuffer(pcm, dtype="<i2").astype(np.float64)
    return soxr.resample(samples, fmt.sample_rate, RATE) if fmt.sample_rate != RATE else samples


def room(rng: np.random.Generator) -> tuple[np.ndarray, int]:
    """A synthetic room impulse response (RT60 0.2-0.4 s, direct path first) and a delay (samples)."""
    rt60 = rng.uniform(0.2, 0.4)
    length = int(rt60 * RATE)
    t = np.arange(length) / RATE
    response = rng.standard_normal(length) * np.exp(-6.9 * t / rt60) * 0.3
    response[: int(0.003 * RATE)] = 0
    response[0] = 1.0
    response *= 0.7 / np.sqrt(np.sum(response**2))  # the echo ~3 dB under what was played
    return response, int(rng.uniform(0.06, 0.14) * RATE)


def active_rms(samples: np.ndarray) -> float:
    """RMS over the 10 ms frames within 30 dB of the loudest (speech, not the pauses around it)."""
    frames = samples[: len(samples) // FRAME * FRAME].reshape(-1, FRAME)
    energy = np.mean(frames**2, axis=1)
    return float(np.sqrt(np.mean(energy[energy > energy.max() * 1e-3])))


@dataclass
class Stream:
    """One session: what was played (far) and what the microphone heard, sample for sample."""

    far: np.ndarray
    mic: np.ndarray
    echo: np.ndarray  # the echo alone (no noise, no user): ERLE's numerator
    replies: list[tuple[int, int]] = field(default_factory=list)  # (start, end) of each reply in mic time
    users: list[tuple[int, int]] = field(default_factory=list)  # (start, end) of each user clip


def build_stream(replies: list[np.ndarray], users: list[np.ndarray] | None, rng: np.random.Generator) -> Stream:
    """Replies with 0.6-1.2 s between them, through one room; ``users[i]`` (if given) is mixed into
    reply i's middle at 0 dB speech-to-echo (RMS of the clip = RMS of the echo under it)."""
    response, delay = room(rng)
    gaps = [int(rng.uniform(0.6, 1.2) * RATE) for _ in replies]
    total = sum(len(r) for r in replies) + sum(gaps) + RATE
    far = np.zeros(total)
    spans, at = [], RATE // 2
    for reply, gap in zip(replies, gaps):
        far[at : at + len(reply)] = reply
        spans.append((at, at + len(reply)))
        at += len(reply) + gap
    echo = np.convolve(far, response)[:total]
    echo = np.concatenate([np.zeros(delay), echo])[:total]
    mic = echo + rng.standard_normal(total) * 32768 * 10 ** (-60 / 20)
    stream = Stream(far, mic, echo, [(s + delay, e + delay) for s, e in spans])
    for (start, end), clip in zip(stream.replies, users or []):
        middle = max(start, (start + end - len(clip)) // 2)
        under = echo[middle : middle + len(clip)]
        gain = active_rms(under) / (active_rms(clip) + 1e-9)
        stream.mic[middle : middle + len(clip)] += clip[: len(under)] * gain
        stream.users.append((middle, middle + len(clip)))
    return stream


def cancel(stream: Stream, method: str | None, rng: np.random.Generator) -> tuple[np.ndarray, float, dict]:
    """The microphone through the engine's stage (None: untouched); returns it, CPU seconds, status."""
    mic = np.clip(stream.mic, -32768, 32767).astype(np.int16)
    if method is None:
        return mic, 0.0, {}
    far = np.clip(stream.far, -32768, 32767).astype(np.int16)
    reference = ReferenceBuffer(RATE, seconds=20)
    stage = EchoCancel(EchoCancelSettings(method=method), reference=reference)
    start, out, cpu = 1000.0, [], 0.0
    for i in range(0, len(mic) - CHUNK + 1, CHUNK):
        while reference.end < i + CHUNK:  # the monitor delivers 10 ms at a time, up to 10 ms late
            j = reference.end
            reference.push(far[j : j + FRAME], start + (j + FRAME) / RATE + rng.uniform(0, 0.01))
        chunk = AudioChunk(mic[i : i + CHUNK].tobytes(), RATE, 1, 2, start + (i + CHUNK) / RATE + rng.uniform(0, 0.02))
        began = time.process_time()
        cleaned = stage.process(chunk)
        cpu += time.process_time() - began
        out.append(np.frombuffer(cleaned.pcm, dtype="<i2"))
    status = stage.status()
    stage.close()
    cleaned = np.concatenate(out)
    return np.concatenate([cleaned, np.zeros(len(mic) - len(cleaned), dtype=np.int16)]), cpu, status


def erle(stream: Stream, cleaned: np.ndarray) -> list[float]:
    """Per reply: ERLE in dB over the frames where the echo is loud (within 30 dB of its peak),
    after the stream's first CONVERGED seconds, outside the user's clips."""
    values = []
    for start, end in stream.replies:
        start = max(start, int(CONVERGED * RATE))
        if end - start < RATE // 2:
            continue
        echo = stream.echo[start:end].reshape(-1)[: (end - start) // FRAME * FRAME].reshape(-1, FRAME)
        left = cleaned[start:end].astype(np.float64)[: echo.size].reshape(-1, FRAME)
        energy = np.sum(echo**2, axis=1)
        loud = energy > energy.max() * 1e-3
        for u0, u1 in stream.users:
            frames = np.arange(len(energy)) * FRAME + start
            loud &= ~((frames >= u0 - RATE // 2) & (frames < u1 + RATE // 2))
        if loud.any():
            values.append(10 * np.log10(np.sum(energy[loud]) / (np.sum(left[loud] ** 2) + 1e-9)))
    return values


class Wake:
    """openWakeWord's hey_jarvis model, bare (as bench/wake.py runs it), with its CPU time."""

    def __init__(self) -> None:
        from magoo_openwakeword import _install_litert_as_tflite_runtime

        _install_litert_as_tflite_runtime()
        import pyopen_wakeword
        from openwakeword.model import Model

        folder = Path(pyopen_wakeword.__file__).parent / "models"
        self.model = Model(
            wakeword_models=[str(folder / "hey_jarvis.tflite")], inference_framework="tflite",
            melspec_model_path=str(folder / "melspectrogram.tflite"),
            embedding_model_path=str(folder / "embedding_model.tflite"),
        )
        self.cpu = 0.0
        self.seconds = 0.0

    def detections(self, samples: np.ndarray) -> list[int]:
        """Sample indexes (end of the frame) where the model fired, reset after each."""
        self.model.reset()
        found = []
        began = time.process_time()
        for start in range(0, len(samples) - CHUNK + 1, CHUNK):
            if max(self.model.predict(samples[start : start + CHUNK]).values()) >= THRESHOLD:
                found.append(start + CHUNK)
                self.model.reset()
        self.cpu += time.process_time() - began
        self.seconds += len(samples) / RATE
        return found


STOP_CLIPS = 48  # "stop" by the espeak-ng voices of bench/stop_word.py, 8 voices x 3 speeds, twice over
STOP_LIKE = [  # replies that say words close to "stop": none may stop itself
    "We made a stop at the bakery on the way home.",
    "The bus stops right in front of the house.",
    "Stopping the music now would be a pity, it is a good song.",
    "The rain stops around noon, then it gets sunny.",
    "There is a bus stop at the corner.",
    "Non-stop flights to Lisbon leave on Mondays.",
    "The clock stopped at midnight.",
    "I am stopping the vacuum cleaner.",
    "The top shelf holds the spices.",
    "The shop closes at six.",
]


@dataclass
class StopStreams:
    """What the stop word is measured on: a stream of replies with "stop" over them (one per
    reply, 0 dB speech-to-echo), and one of replies alone (plain and stop-like ones)."""

    heard: Stream
    alone: Stream


def stop_streams(clips: int, replies: int, rng: np.random.Generator, folder: Path) -> StopStreams:
    """``clips`` replies with a "stop" over each, and ``replies`` replies without one; the texts and
    voices are bench/stop_word.py's (every third reply alone is a stop-like one, :data:`STOP_LIKE`)."""
    from stop_word import REPLIES, SPEEDS, VOICES, say

    words = [say("stop", VOICES[i % len(VOICES)], SPEEDS[(i // len(VOICES)) % len(SPEEDS)], pad=0.05).astype(np.float64) for i in range(clips)]
    under = [speak(PLAIN[i % len(PLAIN)], i, folder) for i in range(clips)]
    texts = [STOP_LIKE[(i // 3) % len(STOP_LIKE)] if i % 3 == 0 else REPLIES[i % len(REPLIES)] for i in range(replies)]
    alone = [say(t, VOICES[i % len(VOICES)], pad=0.0).astype(np.float64) for i, t in enumerate(texts)]
    return StopStreams(build_stream(under, words, rng), build_stream(alone, None, rng))


def playings(stream: Stream, cleaned: np.ndarray, until_user: bool) -> list[np.ndarray]:
    """The cleaned microphone cut into what the stop word hears while each reply plays (from the
    reply's start to its end plus 0.3 s of echo tail; with ``until_user``, to 1 s after the user's
    "stop" instead, so that a word heard counts only until then)."""
    cuts = []
    for i, (start, end) in enumerate(stream.replies):
        stop = min(stream.users[i][1] + RATE, end + int(0.3 * RATE)) if until_user else end + int(0.3 * RATE)
        cuts.append(cleaned[start:stop])
    return cuts


def stop_word_numbers(methods: list[str | None], streams: StopStreams, thresholds: list[float], settle_s: float, rng: np.random.Generator) -> dict[str, dict]:
    """Per method, per threshold: "stop" over a reply detected (goal ≥ 90 %) and false stops on
    the replies alone (goal 0), the real :class:`~magoo_core.stop_word.StopWord` fed the cleaned
    microphone, one playing per reply (bench/stop_word.py's :func:`count_stops`). The "stop"s said
    in the first ``settle_s`` seconds of playing are not counted (the stop word is deaf then, by
    design: ``[engine.stop_word] settle_s``); ``settling`` says how many."""
    from stop_word import count_stops

    results: dict[str, dict] = {}
    for method in methods:
        heard_mic, _, _ = cancel(streams.heard, method, rng)
        alone_mic, _, _ = cancel(streams.alone, method, rng)
        heard_cuts = playings(streams.heard, heard_mic, until_user=True)
        alone_cuts = playings(streams.alone, alone_mic, until_user=False)
        started = np.cumsum([0] + [len(c) for c in heard_cuts[:-1]]) / RATE  # playing before each cut
        counted = [i for i, (u0, _) in enumerate(streams.heard.users) if started[i] + (u0 - streams.heard.replies[i][0]) / RATE >= settle_s]
        rows = {}
        for threshold in thresholds:
            settings = StopWordSettings(threshold=threshold, settle_s=settle_s)
            stops = count_stops(heard_cuts, settings)
            rows[f"{threshold:g}"] = {
                "heard": sum(1 for i in counted if stops[i]), "counted": len(counted),
                "settling": len(heard_cuts) - len(counted), "false": sum(count_stops(alone_cuts, settings)),
            }
        results[method or "off"] = rows
    return results


def user_wakes(stream: Stream, found: list[int]) -> int:
    """User clips with a detection between their start and 1 s after their end."""
    return sum(any(u0 <= f <= u1 + RATE for f in found) for u0, u1 in stream.users)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--replies", type=int, default=200, help="replies containing the wake word (self-wakes)")
    parser.add_argument("--user", type=int, default=40, help="replies with the user's wake word over them")
    parser.add_argument("--methods", default="webrtc,speex", help="comma-separated methods besides off")
    parser.add_argument("--stops", type=int, default=STOP_CLIPS, help="replies with the user's 'stop' over them")
    parser.add_argument("--stop-replies", type=int, default=200, help="replies alone for the false stops (a third stop-like)")
    parser.add_argument("--stop-thresholds", default="", help="comma-separated [engine.stop_word] thresholds (default: the default's)")
    parser.add_argument("--stop-settle", type=float, default=StopWordSettings().resolved(echo_cancel=True).settle_s, help="[engine.stop_word] settle_s")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--json", action="store_true", help="print the results as one JSON object too")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    methods: list[str | None] = [None, *[m for m in args.methods.split(",") if m]]
    rng = np.random.default_rng(args.seed)
    with tempfile.TemporaryDirectory(prefix="magoo-duplex-") as folder:
        wake_replies = [speak(t, i, Path(folder)) for i, t in enumerate(reply_texts(args.replies, True))]
        plain_replies = [speak(t, i, Path(folder)) for i, t in enumerate(reply_texts(args.user, False))]
        stops = stop_streams(args.stops, args.stop_replies, np.random.default_rng(args.seed + 3), Path(folder))
    clips = [np.frombuffer(read_wav(ROOT / c)[1], dtype="<i2").astype(np.float64) for c in USER_CLIPS]
    self_stream = build_stream(wake_replies, None, np.random.default_rng(args.seed + 1))
    user_stream = build_stream(plain_replies, [clips[i % len(clips)] for i in range(args.user)], np.random.default_rng(args.seed + 2))
    wake = Wake()
    results = {}
    for method in methods:
        name = method or "off"
        print(f"... {name}", file=sys.stderr, flush=True)
        cleaned, cpu, status = cancel(self_stream, method, rng)
        user_cleaned, user_cpu, _ = cancel(user_stream, method, rng)
        values = erle(self_stream, cleaned) + erle(user_stream, user_cleaned)
        seconds = (len(self_stream.mic) + len(user_stream.mic)) / RATE
        results[name] = {
            "erle_median_db": float(np.median(values)) if values and method else None,
            "erle_p10_db": float(np.percentile(values, 10)) if values and method else None,
            "self_wakes": len(wake.detections(cleaned)),
            "user_wakes": user_wakes(user_stream, wake.detections(user_cleaned)),
            "cpu_core_share": (cpu + user_cpu) / seconds if method else 0.0,
            "delay_ms": status.get("delay_ms"),
        }
    alone = np.clip(user_stream.mic - user_stream.echo, -32768, 32767).astype(np.int16)
    ceiling = user_wakes(user_stream, wake.detections(alone))
    wake_share = wake.cpu / wake.seconds
    print(f"replies {args.replies} (with 'hey Jarvis'), user wakes over replies {args.user}, "
          f"{(len(self_stream.mic) + len(user_stream.mic)) / RATE:.0f} s of audio per method")
    print(f"{'method':8} {'ERLE med':>9} {'ERLE p10':>9} {'self-wakes':>11} {'user wakes':>11} {'CPU':>7} {'CPU/wake':>9}")
    for name, r in results.items():
        med = f"{r['erle_median_db']:.1f}" if r["erle_median_db"] is not None else "-"
        p10 = f"{r['erle_p10_db']:.1f}" if r["erle_p10_db"] is not None else "-"
        print(f"{name:8} {med:>9} {p10:>9} {r['self_wakes']:>7}/{args.replies:<3} "
              f"{r['user_wakes']:>7}/{args.user:<3} {r['cpu_core_share'] * 100:6.2f}% {r['cpu_core_share'] / wake_share:8.2f}x")
    print(f"the user's wake words with no reply under them: {ceiling}/{args.user} (the model's own ceiling)")
    print(f"wake scoring (openWakeWord hey_jarvis): {wake_share * 100:.2f}% of one core")
    thresholds = [float(t) for t in args.stop_thresholds.split(",") if t] or [StopWordSettings().resolved(echo_cancel=True).threshold]
    stop = stop_word_numbers(methods, stops, thresholds, args.stop_settle, rng)
    print(f"stop word: 'stop' over {args.stops} replies (0 dB speech-to-echo; those in the first {args.stop_settle:g} s "
          f"of playing are not listened for), false stops on {args.stop_replies} replies alone")
    print(f"{'method':8} {'threshold':>10} {'stop heard':>15} {'false stops':>12}")
    for name, rows in stop.items():
        for threshold, r in rows.items():
            share = f"{100 * r['heard'] / r['counted']:3.0f}%" if r["counted"] else "   -"
            print(f"{name:8} {threshold:>10} {r['heard']:>6}/{r['counted']:<3} {share} {r['false']:>7}/{args.stop_replies:<3}")
    if args.json:
        print(json.dumps({"methods": results, "wake_core_share": wake_share, "user_alone": ceiling, "stop_word": stop}))


if __name__ == "__main__":
    main()
