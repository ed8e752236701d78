"""How soon a language model's reply is heard, through ``[responder] openai`` and the real SDK.

    python bench/llm.py [--runs 5] [--tokens-per-second 30] [--quick]

Everything runs in this one process against the loopback OpenAI server
(``magoo_openai.loopback``), which streams its scripted reply at ``--tokens-per-second`` (one
delta per word, as a model's tokens come).

  1. **First sentence → first sound**, 1-sentence and 10-sentence replies, with the tone TTS (real
     time) and espeak-ng: the responder's deltas (the real SDK reading the loopback's SSE) →
     magoo's sentence cutter → the TTS one sentence ahead → a player that plays in real time;
     from the moment the responder hands over the delta that completes the first sentence to the
     player's first chunk (the measurement of bench/stream.py, with the real client in front; the
     player stops there, the rest of the reply is not played).
     Goal (issue 19): 10-sentence / 1-sentence <= 1.05 (medians): a long reply starts as soon as
     a short one.
  2. **End of speech → first sound** of a whole engine turn (the test profile's scripted wake
     word, STT and source in real time, ``[responder] openai`` on the loopback, espeak-ng or the
     tone TTS, an in-memory player), broken down by step: speech_end->transcript,
     transcript->reply (the request until the first sentence is complete), reply->first_audio.
     Baseline in the same run: the same turn with the built-in ``echo`` responder (no model).

Nothing is judged: the bench prints numbers and ratios and exits 0; 1 when a measurement could
not be made (no aiohttp, a failed turn).
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import statistics
import sys
import time
from typing import Any

from common import stop_on_sigterm
from offline import DEMO_STEPS, SetupError, demo_steps
from stream import SENTENCE, first_sound, reply_text

KEY = "sk-bench-loopback"


# ---- 1. first sentence -> first sound ---------------------------------------------------------


async def _deltas(responder: Any, marks: dict[str, float]):
    """The responder's reply for one turn; marks when the delta after the first sentence arrives."""
    from magoo_core.types import Transcript, TurnContext

    first_end = len(SENTENCE)
    got = 0
    async for delta in responder.respond(Transcript("tell me the weather"), context=TurnContext(1)):
        if not isinstance(delta, str):
            continue
        got += len(delta)
        if "complete" not in marks and got > first_end:
            marks["complete"] = time.monotonic()
        yield delta


async def _streamed(server: Any, responder: Any, tts: Any, count: int) -> float:
    server.options["script"][:] = [reply_text(count)]
    marks: dict[str, float] = {}
    return await first_sound(tts, _deltas(responder, marks), marks, play_all=False)


async def measure_first_sound(name: str, tts: Any, runs: int, rate: float) -> tuple[float, float]:
    """Medians (ms) for 1 and 10 sentences, interleaved run by run; prints one row."""
    from magoo_openai import ChatResponder
    from magoo_openai.loopback import LoopbackOpenAIServer

    script: list[str] = []
    one, ten = [], []
    async with LoopbackOpenAIServer(api_key=KEY, tokens_per_second=rate, replies=lambda body: script[0]) as server:
        server.options["script"] = script
        config = ChatResponder.Config(base_url=server.base_url, api_key=KEY, history=0, max_tokens=None)
        async with ChatResponder(config) as responder:
            for _ in range(runs):
                one.append(await _streamed(server, responder, tts, 1))
                ten.append(await _streamed(server, responder, tts, 10))
    o, t = statistics.median(one), statistics.median(ten)
    print(f"{name:7} first sentence -> first sound p50: 1 sentence {o:7.1f} ms | 10 sentences {t:7.1f} ms |"
          f" ratio 10/1 {t / o:5.2f} (goal <= 1.05; {t - o:+.1f} ms)")
    return o, t


# ---- 2. a whole turn ----------------------------------------------------------------------------


def _turn_profile(responder: dict[str, Any], tts: dict[str, Any]) -> dict[str, Any]:
    from magoo_core.testing import TEST_PROFILE

    source = {**TEST_PROFILE["audio_source"], "realtime": True}
    return {"audio_source": source, "responder": responder, "tts": tts, "player": {"backend": "memory"}}


async def _turn(overrides: dict[str, Any]) -> dict[str, float]:
    import magoo_espeak
    import magoo_openai
    from magoo_core import Outcome
    from magoo_core.testing import run_profile

    record = await run_profile(overrides, plugins=[magoo_openai, magoo_espeak], environ={"BENCH_KEY": KEY})
    (timeline,) = record.timelines
    if timeline.outcome is not Outcome.OK:
        raise SetupError(f"the turn ended {timeline.outcome.value}: {timeline.error}")
    return demo_steps(timeline)


async def measure_turn(tts: dict[str, Any], runs: int, rate: float) -> dict[str, list[dict[str, float]]]:
    """Each run: the turn with the model, then with the echo responder (the baseline)."""
    from magoo_openai.loopback import LoopbackOpenAIServer

    found: dict[str, list[dict[str, float]]] = {"openai": [], "echo": []}
    async with LoopbackOpenAIServer(api_key=KEY, tokens_per_second=rate, replies=[reply_text(3)]) as server:
        model = {"backend": "openai", "base_url": server.base_url, "api_key": {"env": "BENCH_KEY"}, "history": 0}
        for _ in range(runs):
            found["openai"].append(await _turn(_turn_profile(model, tts)))
            found["echo"].append(await _turn(_turn_profile({"backend": "echo", "template": reply_text(3)}, tts)))
    return found


def print_turn(name: str, found: dict[str, list[dict[str, float]]], rate: float) -> None:
    runs = len(found["openai"])
    print(f"a whole turn, {name} TTS, {runs} run(s) of each; the model's reply at {rate:g} tokens/s from the loopback")
    print(f"{'step':<26} {'openai ms':>10} {'echo ms':>9} {'difference':>11}")
    for step in DEMO_STEPS:
        model, echo = (statistics.median(r[step] for r in found[key]) for key in ("openai", "echo"))
        indent = "" if step == DEMO_STEPS[0] else "  "
        print(f"{indent + step:<26} {model:>10.1f} {echo:>9.1f} {model - echo:>+11.1f}")
    from magoo_openai.loopback.chat import tokens

    needed = len(tokens(SENTENCE)) + 1  # a sentence is known complete at the word after it
    print("speech_end is when the scripted STT's end_silence (0.5 s) ran out, so the transcript follows at once;"
          " transcript->reply is the request until the model's first sentence is complete:")
    print(f"  {needed} tokens at {rate:g} tokens/s = {needed / rate * 1000:.0f} ms of it is the model's own pace")


# ---- main ---------------------------------------------------------------------------------------


async def measure(args: argparse.Namespace) -> int:
    from magoo_core.default_plugins.fakes import ToneSpeech

    runs = 1 if args.quick else args.runs
    rate = args.tokens_per_second
    await measure_first_sound("tone", ToneSpeech(ToneSpeech.Config(realtime=True, max_seconds=30.0)), runs, rate)
    espeak_ok = shutil.which("espeak-ng") is not None
    if espeak_ok:
        from magoo_espeak import EspeakTextToSpeech

        async with EspeakTextToSpeech(EspeakTextToSpeech.Config()) as espeak:
            await measure_first_sound("espeak", espeak, runs, rate)
    else:
        print("espeak: espeak-ng is not installed (./scripts/setup.sh); only the tone TTS was measured")
    print()
    tts = {"backend": "espeak"} if espeak_ok else {"backend": "tone", "realtime": True}
    print_turn(tts["backend"], await measure_turn(tts, runs, rate), rate)
    return 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5, help="runs of every measurement (default 5)")
    parser.add_argument("--tokens-per-second", type=float, default=30.0, help="the loopback model's pace (default 30)")
    parser.add_argument("--quick", action="store_true", help="one run of each (what tests/test_bench_llm.py uses)")
    args = parser.parse_args()
    stop_on_sigterm()
    try:
        import aiohttp  # noqa: F401 - the loopback server's
    except ImportError:
        sys.exit("bench/llm.py: the loopback server needs aiohttp: uv sync --all-packages (the dev group has it)")
    try:
        sys.exit(asyncio.run(measure(args)))
    except SetupError as e:
        sys.exit(f"bench/llm.py: {e}")


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        sys.exit("bench/llm.py: interrupted")
