"""The stop word (``[engine.stop_word]``, pocketsphinx keyword search): how often "stop" is heard, how
often the assistant's own replies stop themselves, and what it costs.

    python bench/stop_word.py [--replies 200] [--threshold 1e-10]

All speech is espeak-ng's, at 16 kHz, fed through :class:`magoo_core.stop_word.StopWord` exactly as
the engine feeds it (``playing`` true on every chunk of 80 ms):

- **detected**: "stop" said by 8 espeak-ng voices at 3 speeds (24 clips), each padded with 0.5 s
  of silence: the share that stops (goal ≥ 90 %);
- **false stops**: ``--replies`` replies (sentences of a voice assistant, none with the word in it,
  said by the 8 voices in turn) fed as the microphone signal *with no echo cancellation*: how many
  stopped themselves; and separately 8 replies that say "stops" or "stopping" (with echo
  cancellation on, the spotter hears the cleaned signal and both counts are to be 0; bench/duplex.py
  measures that);
- **CPU**: seconds of CPU per second of audio while something plays, and its ratio to openWakeWord
  (hey_jarvis) scoring the same audio in the same run.

:func:`count_stops` is the measure itself, for a bench that feeds other signals (bench/duplex.py:
the microphone after echo cancellation).
"""

from __future__ import annotations

import argparse
import asyncio
import io
import subprocess
import sys
import time
import wave
from collections.abc import Iterable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from magoo_core.settings import StopWordSettings  # noqa: E402
from magoo_core.stop_word import StopWord  # noqa: E402
from magoo_core.types import AudioChunk  # noqa: E402

RATE = 16000
FRAME = 1280
VOICES = ["en-us", "en", "en-us+f3", "en-us+m3", "en-gb-x-rp", "en-us+f2", "en-029", "en-gb-scotland"]
SPEEDS = [140, 170, 200]
REPLIES = [
    "The weather today is sunny with a high of twenty degrees.",
    "I set a timer for five minutes.",
    "Here is the news: the stock market rose slightly today.",
    "It is ten past three in the afternoon.",
    "Your pasta timer is done.",
    "I cannot do that right now, but I can tell you a joke.",
    "The kitchen lights are on.",
    "Tomorrow it will rain in the morning and clear up by noon.",
    "There are three items on your shopping list: milk, eggs and bread.",
    "The living room is twenty one degrees.",
    "Playing your morning playlist.",
    "The next train to the city leaves at eight fifteen.",
    "I turned off the heating in the bedroom.",
    "Your meeting with Anna starts in ten minutes.",
    "A kilometre is about six tenths of a mile.",
    "The capital of Australia is Canberra.",
    "I did not catch that. Could you say it again?",
    "The front door is locked.",
    "Good morning! You have two new messages.",
    "The washing machine will be done in forty minutes.",
    "Sure, I added coffee to the list.",
    "It is going to be a cold night, around two degrees.",
    "The garage door is closed.",
    "Here is a fun fact: octopuses have three hearts.",
    "Your package was delivered this afternoon.",
]
WITH_THE_WORD = [
    "The bus stops at the corner of Main Street.",
    "Stopping by the store was a good idea, it is open until nine.",
    "The rain stops around noon.",
    "The music stops when the timer ends.",
    "I am stopping the vacuum cleaner.",
    "The train stops at every station.",
    "Non-stop flights to Lisbon leave on Mondays.",
    "The clock stopped at midnight.",
]


def say(text: str, voice: str = "en-us", speed: int = 160, pad: float = 0.5) -> np.ndarray:
    """``text`` said by espeak-ng as 16 kHz int16 samples, with ``pad`` s of silence on both sides."""
    import soxr

    wav = subprocess.run(["espeak-ng", "-v", voice, "-s", str(speed), "--stdout", text], capture_output=True, check=True).stdout
    with wave.open(io.BytesIO(wav)) as w:
        rate, data = w.getframerate(), np.frombuffer(w.readframes(w.getnframes()), dtype="<i2")
    audio = soxr.resample(data.astype(np.float32), rate, RATE)
    silence = np.zeros(round(pad * RATE), dtype=np.float32)
    return np.clip(np.concatenate([silence, audio, silence]), -32768, 32767).astype(np.int16)


async def _count(clips: Iterable[np.ndarray], settings: StopWordSettings) -> tuple[list[int], float]:
    """Stops per clip, and the CPU seconds the spotter's worker thread spent on them."""
    stops: list[int] = []
    spotter = StopWord(settings, lambda: asyncio.sleep(0))

    async def worker_clock() -> float:  # the worker's own CPU clock, read after what is queued
        return await asyncio.wrap_future(spotter._worker.submit(time.thread_time))

    started = await worker_clock()
    for clip in clips:
        before = spotter.heard
        pcm = clip.astype("<i2").tobytes()
        for offset in range(0, len(pcm), FRAME * 2):
            spotter.hear(AudioChunk(pcm[offset : offset + FRAME * 2], RATE), True)
        await worker_clock()  # spotted to the end
        await asyncio.sleep(0)  # the stop it asked for, if any, is counted
        spotter.hear(AudioChunk(bytes(FRAME * 2), RATE), False)  # the playing ends
        stops.append(spotter.heard - before)
    cpu = await worker_clock() - started
    await spotter.close()
    return stops, cpu


def count_stops(clips: Iterable[np.ndarray], settings: StopWordSettings | None = None) -> list[int]:
    """For each clip (16 kHz int16 samples, fed in order, each as one playing): how many times it
    stopped (0 or 1). ``settings`` default: the default's, but listening from the first clip."""
    return asyncio.run(_count(clips, settings or StopWordSettings(settle_s=0)))[0]


def spotting_cpu(clips: list[np.ndarray], settings: StopWordSettings) -> float:
    """CPU seconds the spotter's thread spent on ``clips``."""
    _, worker_cpu = asyncio.run(_count(clips, settings))
    return worker_cpu


def wake_cpu(audio: np.ndarray) -> float:
    """CPU seconds openWakeWord (hey_jarvis) takes to score ``audio``, frame by frame."""
    import magoo_openwakeword

    detector = magoo_openwakeword.OpenWakeWordDetector(magoo_openwakeword.OpenWakeWordDetector.Config())
    asyncio.run(detector.__aenter__())
    pcm = audio.astype("<i2").tobytes()
    started = time.process_time()
    for offset in range(0, len(pcm) - FRAME * 2 + 1, FRAME * 2):
        detector.process(AudioChunk(pcm[offset : offset + FRAME * 2], RATE))
    return time.process_time() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--replies", type=int, default=200, help="replies without the word (default 200)")
    parser.add_argument("--threshold", type=float, default=StopWordSettings().resolved(echo_cancel=False).threshold, help="[engine.stop_word] threshold (default: without echo cancellation)")
    parser.add_argument("--voices", type=int, default=len(VOICES), help="espeak-ng voices for the 'stop' clips (default 8)")
    args = parser.parse_args()
    settings = StopWordSettings(threshold=args.threshold, settle_s=0)  # the ear alone: no start-up deafness

    stops = [say("stop", voice, speed) for voice in VOICES[: args.voices] for speed in SPEEDS]
    replies = [say(REPLIES[i % len(REPLIES)], VOICES[(i // len(REPLIES)) % len(VOICES)]) for i in range(args.replies)]
    worded = [say(text, VOICES[i % len(VOICES)]) for i, text in enumerate(WITH_THE_WORD)]

    heard = count_stops(stops, settings)
    false = count_stops(replies, settings)
    false_worded = count_stops(worded, settings)
    seconds = sum(len(clip) for clip in replies) / RATE
    spot = spotting_cpu(replies, settings)
    wake = wake_cpu(np.concatenate(replies))

    print(f"stop word 'stop', pocketsphinx kws, threshold {args.threshold:g}")
    print(f"detected: {sum(1 for n in heard if n)}/{len(heard)} ({100 * sum(1 for n in heard if n) / len(heard):.0f} %)"
          f" of 'stop' by {args.voices} espeak-ng voices x {len(SPEEDS)} speeds")
    print(f"false stops (no echo cancellation): {sum(false)}/{len(false)} replies without the word")
    print(f"false stops (no echo cancellation): {sum(false_worded)}/{len(false_worded)} replies saying stops/stopping")
    print(f"cpu: {spot / seconds * 100:.1f} % of one core while playing ({seconds:.0f} s of replies);"
          f" openWakeWord hey_jarvis on the same audio {wake / seconds * 100:.1f} %; ratio {spot / wake:.2f}")


if __name__ == "__main__":
    main()
