"""How soon a streamed reply is heard: the first sentence's last token → the player's first chunk.

    python bench/stream.py [--runs 5] [--tokens-per-second 30]

Setup, in one process and its event loop: a scripted streaming responder (the reply's words as
text deltas, ``--tokens-per-second`` apart, like a language model) → magoo's sentence cutter
(:func:`magoo_core.reply_stream.sentences`) → the TTS one sentence ahead
(:class:`~magoo_core.reply_stream.SpokenSentences`) → a player that takes the first chunk and
then plays in real time (sleeps each chunk's duration). Measured per run: from the moment the
delta that completes the first sentence is handed over (the word after its end mark: a sentence
is known complete only then) to the player's first chunk. For a 1-sentence and a 10-sentence
reply, with the tone TTS (real time) and espeak-ng. Baseline in the same run: the TTS's own
first-byte time for the same first sentence, bare (``synthesize`` → first chunk).

This measures the reply path from the responder to the player; the engine's muting (``mute_pre``)
and a real player's device latency come on top and are the same for a streamed and a whole reply.

Goals (issue 18, section 3): 10-sentence / 1-sentence <= 1.05, and streamed <= bare TTS + 30 ms
(of the medians). Exit code 0 whether or not the goals are met (a measurement); 1 when a TTS
cannot start.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time

from magoo_core.reply_stream import SpokenSentences, sentences

SENTENCE = "The weather today is mild with a light breeze from the west."


def reply_text(count: int) -> str:
    """``count`` times :data:`SENTENCE`, then "Done": the first sentence is known complete only at
    the word after it."""
    return " ".join([SENTENCE] * count) + " Done"


async def _tokens(text: str, pace: float, marks: dict[str, float]):
    first_end = text.index(SENTENCE) + len(SENTENCE)
    sent = 0
    for word in text.split(" "):
        await asyncio.sleep(pace)
        token = word if sent == 0 else " " + word
        sent += len(token)
        if "complete" not in marks and sent > first_end:
            marks["complete"] = time.monotonic()
        yield token


async def _streamed(tts, count: int, pace: float) -> float:
    marks: dict[str, float] = {}
    return await first_sound(tts, _tokens(reply_text(count), pace, marks), marks)


async def first_sound(tts, deltas, marks: dict[str, float], *, play_all: bool = True) -> float:
    """Milliseconds from ``marks["complete"]`` (set by ``deltas`` when the delta that completes the
    first sentence is handed over) to the player's first chunk, through the sentence cutter and
    the TTS one sentence ahead; the player then plays in real time, to the end with ``play_all``
    (else it stops after the first chunk). bench/llm.py uses it too."""
    said = sentences(deltas, max_chars=10_000, clean=True)

    async def ready():
        return tts

    spoken = SpokenSentences(said, ready, timeout=30.0)
    try:
        first = None
        async for chunk in spoken.audio:
            if first is None:
                first = time.monotonic()
                if not play_all:
                    break
            await asyncio.sleep(getattr(chunk, "duration", 0.0))
    finally:
        await spoken.audio.aclose()
    if spoken.failure is not None:
        raise spoken.failure
    return (first - marks["complete"]) * 1000


async def _bare(tts) -> float:
    start = time.monotonic()
    pieces = tts.synthesize(SENTENCE)
    try:
        await anext(pieces)
        return (time.monotonic() - start) * 1000
    finally:
        await pieces.aclose()


async def _measure(name: str, tts, runs: int, pace: float) -> None:
    bare, one, ten = [], [], []
    for _ in range(runs):  # interleaved, so drift on a shared machine affects every row alike
        bare.append(await _bare(tts))
        one.append(await _streamed(tts, 1, pace))
        ten.append(await _streamed(tts, 10, pace))
    b, o, t = (statistics.median(x) for x in (bare, one, ten))
    print(f"{name:7} bare TTS first byte p50 {b:7.1f} ms | streamed 1 sentence p50 {o:7.1f} ms | "
          f"10 sentences p50 {t:7.1f} ms | ratio 10/1 {t / o:5.2f} (goal <= 1.05; {t - o:+.1f} ms) | "
          f"streamed - bare {o - b:+6.1f} ms (goal <= +30)")


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--tokens-per-second", type=float, default=30.0)
    args = parser.parse_args()
    pace = 1 / args.tokens_per_second

    from magoo_core.default_plugins.fakes import ToneSpeech

    await _measure("tone", ToneSpeech(ToneSpeech.Config(realtime=True, max_seconds=30.0)), args.runs, pace)
    try:
        from magoo_espeak import EspeakTextToSpeech

        espeak = EspeakTextToSpeech(EspeakTextToSpeech.Config())
        async with espeak:
            await _measure("espeak", espeak, args.runs, pace)
    except Exception as exc:  # noqa: BLE001 - report and go on: the tone row stands on its own
        print(f"espeak: cannot start: {exc}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
