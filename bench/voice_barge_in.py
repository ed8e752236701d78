"""False barge-ins by voice on a real echo path, and the user's voice over a reply.

    python bench/voice_barge_in.py [--replies 20] [--user 5] [--speech 0.3]

The echo path of tests/test_voice_barge_in.py: a private PulseAudio server (its virtual speaker's
monitor reaches the virtual microphone through module-loopback, 60 ms, full level, plus a -64 dBFS
hiss); the engine runs with ``[engine] barge_in = "voice"`` and speex echo cancellation (PyAudio,
openWakeWord, pocketsphinx, espeak-ng, mpv). Real time.

  * ``--replies`` announcements of 6-12 s (espeak-ng, en-us) with nobody speaking: each one cut is
    a false barge-in. The first one after start is counted apart (the canceller converges on it).
  * ``--user`` announcements with the user's "what time is it" (a recording) played into the
    microphone 3 s in: each one cut, after the user began, is a barge-in heard.

``--speech`` is ``[engine] barge_in_speech``: seconds of speech in a row that stop a reply.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "tests")]

import magoo_espeak  # noqa: E402
import magoo_mpv  # noqa: E402
import magoo_openwakeword  # noqa: E402
import magoo_pocketsphinx  # noqa: E402
import magoo_pyaudio  # noqa: E402
from magoo_core.engine import Engine  # noqa: E402
from magoo_core.testing import build_plugins, make_profile  # noqa: E402
from magoo_core.testing.virtual_audio import VirtualAudio  # noqa: E402

from echo_path import desk  # noqa: E402
from test_voice_barge_in import command_only  # noqa: E402

SENTENCES = [
    "The weather today is mostly sunny with a light breeze from the west, and a high of twenty degrees.",
    "Your next meeting is at three in the afternoon, in the small room on the second floor.",
    "The kitchen timer for the pasta has five minutes left, and the oven is already warm.",
    "Here is the news: the city council approved the new bicycle lanes along the river.",
    "Tomorrow it will rain in the morning, so take an umbrella when you leave the house.",
    "The living room lights are now at forty percent, and the heating is set to twenty one degrees.",
    "I added milk, eggs, bread and two kinds of cheese to your shopping list.",
    "Your package was delivered to the front door at half past eleven this morning.",
]


async def bench(replies: int, users: int, speech: float) -> None:
    folder = Path(tempfile.mkdtemp(prefix="magoo-voice-"))
    audio = VirtualAudio.start(folder)
    command = command_only(folder)
    pactl = lambda *a: subprocess.run(["pactl", *a], check=True, capture_output=True, text=True).stdout.strip()  # noqa: E731
    loop = pactl("load-module", "module-loopback", "source=speaker.monitor", "sink=micfeed", "latency_msec=60")
    hiss = audio.play((np.random.default_rng(7).normal(0, 20, 3600 * 16000).astype("<i2").tobytes(), 16000), wait=False)
    overrides = desk(barge_in="voice", barge_in_speech=speech, echo_cancel={"method": "speex", "reference": "speaker.monitor"})
    overrides["responder"]["template"] = "It is twelve o'clock."
    manager = build_plugins(magoo_pyaudio, magoo_openwakeword, magoo_pocketsphinx, magoo_espeak, magoo_mpv)
    engine = Engine(make_profile(overrides, manager), manager)
    running = asyncio.create_task(engine.run())
    try:
        while engine.counters["audio_seconds"] < 1.0:
            await asyncio.sleep(0.1)
        voice = engine.wake_worker.voice
        first = await engine.speech.say(SENTENCES[0] + " " + SENTENCES[1])
        cut, seconds = 0, 0.0
        for i in range(replies):
            text = SENTENCES[i % len(SENTENCES)] + (" " + SENTENCES[(i + 3) % len(SENTENCES)] if i % 2 else "")
            started = time.monotonic()
            result = await engine.speech.say(text)
            seconds += time.monotonic() - started
            cut += result.status == "interrupted"
            await engine.turns.wait_no_turn()
        heard = 0
        for i in range(users):
            saying = asyncio.create_task(engine.speech.say(SENTENCES[i % len(SENTENCES)] + " " + SENTENCES[(i + 1) % len(SENTENCES)]))
            await asyncio.sleep(3.0)
            before = voice.count
            player = audio.play(command, wait=False)
            result = await saying
            heard += result.status == "interrupted" and voice.count > before
            await asyncio.to_thread(player.wait)
            await asyncio.sleep(1.0)
            await engine.turns.wait_no_turn()
        print(f"first announcement after start (canceller converging): {first.status}")
        print(f"false barge-ins by voice: {cut} / {replies} announcements ({seconds:.0f} s of speech, nobody talking)")
        print(f"the user's 'what time is it' over an announcement, 3 s in: {heard} / {users} cut it")
        print(f"turns: {[(t.outcome.value, t.error) for t in engine.timelines]}")
    finally:
        engine.request_stop()
        await running
        hiss.kill()
        pactl("unload-module", loop)
        audio.stop()


def main() -> None:
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    logging.getLogger("magoo.engine").setLevel(logging.INFO)  # "barge-in by voice: ... dB ..." lines
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--replies", type=int, default=20)
    parser.add_argument("--user", type=int, default=5)
    parser.add_argument("--speech", type=float, default=0.3, help="[engine] barge_in_speech (default 0.3)")
    args = parser.parse_args()
    print(f"barge_in_speech = {args.speech:g}")
    asyncio.run(bench(args.replies, args.user, args.speech))


if __name__ == "__main__":
    main()
