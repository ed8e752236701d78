"""How fast the offline stack is: pocketsphinx, espeak-ng and Piper through magoo against the bare
tools, how end of speech treats commands that pause, the demo's turn from the end of speech to the
first sound (with espeak-ng and with Piper), and the CPU and memory of each demo.

    .venv/bin/python bench/offline.py [--runs 3] [--fast] [--quick]

Everything runs in this one process, one measurement after another; each magoo figure has a
baseline measured in the same run, ``--runs`` runs of each (default 3), magoo and baseline in
turn, and the median is reported.

  1. **pocketsphinx**, in grammar mode (the command list of examples/demo.toml's [stt]) and with
     the full language model packaged with pocketsphinx. The clips: the command of the demo's
     recording (magoo_core/testing/data/what_time_is_it__en-us.wav) and the espeak-ng phrases
     the pocketsphinx plugin's tests use, synthesised now (``pocketsphinx_helpers.espeak_clip``:
     espeak-ng into a temporary folder, converted to 16 kHz), each with 0.3 s of silence before
     and 1.5 s after.
       * magoo: a started ``pocketsphinx`` backend is fed 80 ms chunks as an async stream, as fast
         as it takes them, like the engine feeds it; timed from the first chunk to the final
         transcript. It stops reading when it has the final (``end_silence`` after the speech).
       * bare: a ``pocketsphinx.Decoder`` with the same model or grammar, fed the same chunks
         (those magoo read) with start_utt, process_raw per chunk, end_utt, hyp.
     Real-time factor (RTF) = processing seconds / seconds of audio; magoo/bare is their ratio.
     Also the transcript of each and magoo's word error rate (WER) against the clip's text.
  2. **espeak-ng**, for replies of the local responder (the time, a joke, what it can do), with
     the voice and speed of the demo's [tts]:
       * magoo: the ``espeak`` backend's ``synthesize``; time to its first chunk, and RTF = time
         to its last chunk / seconds of audio;
       * bare: ``espeak-ng -v VOICE -s SPEED -w FILE TEXT``, from start to exit / seconds of audio.
  2b. **Piper**, the same replies through examples/demo-piper.toml's [tts] and the bare piper
     library; **commands that pause** through end-of-speech settings (both in bench/offline_voice.py,
     whose docstring says how).
  3. **the demo turn**: ``--runs`` engine runs of examples/demo.toml itself (loaded with
     ``load_profile`` and the installed plugins), one turn each. From each turn's timeline:
     speech_end->first_audio and its parts speech_end->transcript, transcript->reply and
     reply->first_audio (medians, and min–max). The source plays in real time as the profile
     says (about 6 s of audio per run); ``--fast`` delivers it as fast as possible
     (``realtime = false``). The reply plays through mpv where there is a sound output, else
     through the profile's [player.backup] wav recorder (into examples/out/); the report says which.
     Then the same for examples/demo-piper.toml.
  4. **CPU and memory** of ``magoo run`` of each demo, in its own process (bench/offline_voice.py).

``--speaker`` plays the demo's replies into a private PulseAudio server (so mpv plays them, as on
a machine with a speaker) and measures only the demo turn, ``--runs`` times told and ``--runs``
times not told, alternating: "told" is the engine telling mpv before the first reply that
espeak-ng yields 22.05 kHz PCM, so an mpv for that is already waiting (``Engine
._player_expects_tts_output``); "not told" skips that call, and the first reply starts an mpv.
It prints reply->first_audio for both and their ratio.

``--quick`` measures one clip, one phrase, one paused command in one voice and one demo run, and
skips the Piper demo and CPU and memory (what tests/test_bench_offline.py uses). Nothing is judged: the bench prints numbers and ratios and exits 0; it exits 1 when a
measurement could not be made.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from statistics import median
from typing import Any

from common import stop_on_sigterm

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / "examples" / "demo.toml"
POCKETSPHINX_TESTS = ROOT / "plugins" / "magoo-pocketsphinx" / "tests"  # pocketsphinx_helpers: the clips
LEAD, TAIL = 0.3, 1.5  # seconds of silence around each clip, as in the plugin's accuracy test
CLIP_COLUMN = 55  # where the pocketsphinx table's last column starts
DEMO_STEPS = ("speech_end->first_audio", "speech_end->transcript", "transcript->reply", "reply->first_audio")


class SetupError(Exception):
    """A measurement could not be made; the message says why."""


@dataclass
class Decoded:
    """One clip in one pocketsphinx mode: seconds of audio and, per run, processing seconds and transcripts."""

    clip: str
    audio: float
    magoo: list[float]
    bare: list[float]
    heard: list[str]
    bare_heard: list[str]

    @property
    def errors(self) -> int:
        """Word errors of magoo's first run."""
        from pocketsphinx_helpers import word_errors

        return word_errors(self.clip, self.heard[0])

    @property
    def wer(self) -> float:
        return self.errors / len(self.clip.split())


@dataclass
class Spoken:
    """One phrase through espeak-ng: seconds of audio and, per run, the times of magoo and the bare tool."""

    phrase: str
    audio: float
    first_chunk: list[float]
    magoo: list[float]
    bare: list[float]


def load_demo(fast: bool = False, profile: Path = DEMO) -> tuple[Any, Any]:
    """The installed plugins and examples/demo.toml (or ``profile``), loaded as ``magoo run`` loads
    it; with ``fast`` its source is not paced."""
    from magoo_core.errors import ProfileError
    from magoo_core.plugins import create_plugin_manager
    from magoo_core.profile import load_profile

    plugins = create_plugin_manager()
    path = profile
    try:
        profile = load_profile(path, plugins)
    except ProfileError as e:
        raise SetupError(f"{path} does not load:\n" + "\n".join(f"  {issue}" for issue in e.issues)) from None
    if fast:
        source = profile.audio_source
        config = source.config.model_copy(update={"realtime": False})
        profile = profile.with_spec(dataclasses.replace(source, config=config))
    return plugins, profile


# ---- 1. pocketsphinx --------------------------------------------------------------------------


def command_clips(quick: bool) -> dict[str, bytes]:
    """Reference text → 16 kHz speech with silence around it: the demo's command, then espeak-ng's."""
    from pocketsphinx_helpers import SPOKEN, espeak_clip, quiet, shipped_clip

    clips = {"what time is it": shipped_clip()}
    if not quick:
        clips |= {text: espeak_clip(text) for text in SPOKEN}
    return {text: quiet(LEAD) + pcm + quiet(TAIL) for text, pcm in clips.items()}


def bare_decoder(commands: list[str] | None) -> Any:
    """A pocketsphinx decoder set up as the plugin sets up its own (see ``_load``)."""
    import pocketsphinx
    from magoo_pocketsphinx import SAMPLE_RATE, commands_grammar

    if commands is None:
        return pocketsphinx.Decoder(loglevel="FATAL", samprate=SAMPLE_RATE)
    decoder = pocketsphinx.Decoder(loglevel="FATAL", samprate=SAMPLE_RATE, lm=None)
    decoder.add_jsgf_string("commands", commands_grammar(commands))
    decoder.activate_search("commands")
    return decoder


async def magoo_decode(stt: Any, pieces: list[Any]) -> tuple[float, int, str]:
    """Seconds from the first chunk to the final transcript, the chunks read and the transcript."""
    from magoo_core.roles import AudioStream
    from magoo_core.types import Transcript

    read, first = 0, 0.0

    async def audio():
        nonlocal read, first
        for piece in pieces:
            if not read:
                first = time.perf_counter()
            read += 1
            yield piece

    async for item in stt.transcribe(AudioStream(audio(), continuous=False)):
        if isinstance(item, Transcript) and item.final:
            return time.perf_counter() - first, read, item.text
    raise SetupError("pocketsphinx ended without a final transcript")


def bare_decode(decoder: Any, pieces: list[Any], mean: str) -> tuple[float, str]:
    """Seconds to decode ``pieces`` as one utterance starting from cepstral mean ``mean`` (as the
    plugin does by default), and the transcript."""
    start = time.perf_counter()
    decoder.set_cmn(mean)
    decoder.start_utt()
    for piece in pieces:
        decoder.process_raw(piece.pcm, False, False)
    decoder.end_utt()
    hyp = decoder.hyp()
    took = time.perf_counter() - start
    return took, hyp.hypstr if hyp is not None else ""


async def decode_clip(stt: Any, decoder: Any, mean: str, text: str, pcm: bytes, runs: int) -> Decoded:
    """``runs`` decodes by magoo and by the bare decoder, interleaved; the bare one gets the audio
    magoo read, each time from cepstral mean ``mean``."""
    from pocketsphinx_helpers import chunks

    pieces = chunks(pcm)
    decoded = Decoded(text, 0.0, [], [], [], [])
    for _ in range(runs):
        took, read, heard = await magoo_decode(stt, pieces)
        decoded.magoo.append(took)
        decoded.heard.append(heard)
        fed = pieces[:read]
        took, heard = bare_decode(decoder, fed, mean)
        decoded.bare.append(took)
        decoded.bare_heard.append(heard)
    decoded.audio = sum(piece.duration for piece in fed)
    return decoded


async def measure_pocketsphinx(profile: Any, clips: dict[str, bytes], runs: int) -> dict[str, list[Decoded]]:
    """Both modes, every clip: magoo's backend and the bare decoder. Grammar mode is the demo's [stt];
    full mode is the same without its commands."""
    from magoo_pocketsphinx import PocketsphinxSpeechToText

    grammar = profile.stt.config
    modes = {"grammar": grammar, "full": grammar.model_copy(update={"commands": None})}
    results = {}
    for mode, config in modes.items():
        stt = PocketsphinxSpeechToText(config)
        decoder = bare_decoder(config.commands)
        mean = decoder.get_cmn()  # the model's own, where the plugin starts every utterance by default
        async with stt:
            results[mode] = [await decode_clip(stt, decoder, mean, text, pcm, runs) for text, pcm in clips.items()]
    return results


# ---- 2. espeak-ng -----------------------------------------------------------------------------


async def reply_phrases(profile: Any, quick: bool) -> list[str]:
    """What the demo's responder answers to the time, and unless ``quick`` a joke and "what can you do"."""
    from magoo_core.types import Transcript

    responder = profile.responder.create()
    asked = ["what time is it"] if quick else ["what time is it", "tell me a joke", "what can you do"]
    return [(await responder.respond(Transcript(text))).text for text in asked]


async def magoo_speak(tts: Any, text: str) -> tuple[float, float, float]:
    """Seconds to the first and to the last chunk of ``text``, and the seconds of audio."""
    start = time.perf_counter()
    first = last = audio = 0.0
    async for chunk in tts.synthesize(text):
        last = time.perf_counter() - start
        first = first or last
        audio += chunk.duration
    return first, last, audio


def bare_speak(voice: str, speed: int, text: str, path: Path) -> float:
    """Seconds ``espeak-ng -w`` takes to write ``text`` to ``path``."""
    start = time.perf_counter()
    subprocess.run(["espeak-ng", "-v", voice, "-s", str(speed), "-w", str(path), text], check=True, timeout=60)
    return time.perf_counter() - start


def wav_seconds(path: Path) -> float:
    from magoo_core.audio import read_wav

    fmt, pcm = read_wav(path)
    return len(pcm) / (fmt.sample_rate * fmt.channels * fmt.sample_width)


async def measure_espeak(profile: Any, phrases: list[str], runs: int) -> tuple[Any, list[Spoken]]:
    """Every phrase through the demo's [tts] and through ``espeak-ng -w``, interleaved; and the config."""
    tts = profile.tts.create()
    cfg = tts.config
    results = []
    with tempfile.TemporaryDirectory(prefix="magoo-offline-bench-") as folder:
        wav = Path(folder) / "bare.wav"
        async with tts:
            for phrase in phrases:
                spoken = Spoken(phrase, 0.0, [], [], [])
                for _ in range(runs):
                    first, last, spoken.audio = await magoo_speak(tts, phrase)
                    spoken.first_chunk.append(first)
                    spoken.magoo.append(last)
                    spoken.bare.append(await asyncio.to_thread(bare_speak, cfg.voice, cfg.speed, phrase, wav))
                if abs(wav_seconds(wav) - spoken.audio) > 0.05:
                    raise SetupError(f"espeak-ng -w wrote {wav_seconds(wav):.2f} s for {phrase!r},"
                                     f" the backend {spoken.audio:.2f} s: not the same voice and speed")
                results.append(spoken)
    return cfg, results


# ---- 3. the demo turn -------------------------------------------------------------------------


def player_that_ran(engine: Any) -> str:
    """The player backend that played the reply and, when it is the section's backup, why."""
    slot = engine.player
    if slot.replaced is None:
        return slot.spec.backend
    reason = slot.replaced.split(" (")[0]  # without the details the engine already logged
    return f"{slot.spec.backend} from {slot.spec.section}, because {reason}"


async def demo_turn(plugins: Any, profile: Any) -> tuple[dict[str, float], str]:
    """One engine run of the demo: the turn's latencies (ms) and the player that played the reply."""
    from magoo_core import Outcome
    from magoo_core.engine import Engine

    engine = Engine(profile, plugins, max_turns=1)
    result = await engine.run()
    if result.fatal is not None:
        raise SetupError(f"the demo stopped: {result.fatal}")
    if len(result.timelines) != 1:
        raise SetupError(f"the demo ran {len(result.timelines)} turns instead of 1 (was the wake word missed?)")
    (timeline,) = result.timelines
    if timeline.outcome is not Outcome.OK:
        raise SetupError(f"the demo's turn ended {timeline.outcome.value}: {timeline.error}")
    latencies = demo_steps(timeline)
    missing = [step for step in DEMO_STEPS if step not in latencies]
    if missing:
        raise SetupError(f"the demo's turn has no {', '.join(missing)}: {timeline.summary()}")
    return latencies, player_that_ran(engine)


def demo_steps(timeline: Any) -> dict[str, float]:
    """The demo's steps (ms) from the timeline's own times. Not ``timeline.latencies()``, which names
    the steps in the order they happened: read faster than real time, the command's end (timed from
    the audio) can come before the wake word's detection, and its steps would then be named
    differently from run to run."""
    steps = {}
    for step in DEMO_STEPS:
        start, end = (getattr(timeline, name) for name in step.split("->"))
        if start is not None and end is not None:
            steps[step] = round((end - start) * 1000, 1)
    return steps


@dataclass
class DemoRuns:
    """The demo's runs: each turn's latencies (ms), the player of each and the profile's mute_pre."""

    latencies: list[dict[str, float]]
    players: list[str]
    mute_pre: float
    fast: bool
    profile: str = "examples/demo.toml"
    tts: str = "espeak"


async def measure_demo(runs: int, fast: bool, path: Path = DEMO) -> DemoRuns:
    plugins, profile = load_demo(fast, path)
    demo = DemoRuns([], [], profile.engine.mute_pre, fast, str(path.relative_to(ROOT)), profile.tts.backend)
    for _ in range(runs):
        latencies, player = await demo_turn(plugins, profile)
        demo.latencies.append(latencies)
        demo.players.append(player)
    return demo


# ---- report -----------------------------------------------------------------------------------


def rtf(seconds: list[float], audio: float) -> float:
    return median(seconds) / audio


def quoted(text: str) -> str:
    return f'"{text}"'


def other_runs(heard: list[str]) -> str:
    """The runs after the first that heard something else, e.g. ``run 2: "what time"``."""
    return ", ".join(f"run {run}: {quoted(text)}" for run, text in enumerate(heard[1:], 2) if text != heard[0])


def print_pocketsphinx(results: dict[str, list[Decoded]], runs: int) -> None:
    print(f"pocketsphinx: real-time factor = processing s / audio s, median of {runs} run(s); 80 ms chunks"
          " as fast as taken")
    print("  magoo: the pocketsphinx backend, first chunk -> final transcript; bare: pocketsphinx.Decoder,"
          " start_utt .. end_utt on the same chunks")
    print("  one backend and one bare decoder per mode, for every clip and run; WER and transcript: magoo's first"
          " run, then any run that heard otherwise")
    print(f"{'mode':<8} {'audio s':>7} {'magoo RTF':>9} {'bare RTF':>9} {'magoo/bare':>10} {'WER':>5}"
          "  clip -> magoo heard")
    for mode, decoded in results.items():
        for d in decoded:
            magoo, bare = rtf(d.magoo, d.audio), rtf(d.bare, d.audio)
            others = other_runs(d.heard)
            print(f"{mode:<8} {d.audio:>7.2f} {magoo:>9.3f} {bare:>9.3f} {magoo / bare:>10.2f} {d.wer:>5.2f}"
                  f"  {quoted(d.clip)} -> {quoted(d.heard[0])}" + (f"  ({others})" if others else ""))
            if d.bare_heard != d.heard:
                print(" " * CLIP_COLUMN + "bare heard " + ", ".join(quoted(text) for text in d.bare_heard))
    for mode, decoded in results.items():
        words = sum(len(d.clip.split()) for d in decoded)
        print(f"{mode} WER over {len(decoded)} clip(s), first runs: {sum(d.errors for d in decoded) / words:.2f}")
    print("  bare decodes all the audio magoo read, without magoo's voice activity detection and dither, so its"
          " transcripts can differ;")
    print("  both start every utterance from the model's cepstral mean, as the plugin does by default (adapt_mean = false)")


def print_espeak(cfg: Any, results: list[Spoken], runs: int) -> None:
    print(f"espeak-ng: voice {cfg.voice}, {cfg.speed} wpm; median of {runs} run(s)")
    print("  magoo: the espeak backend, call -> last chunk; bare: espeak-ng -w FILE, start -> exit;"
          " RTF = that time / audio s")
    print(f"{'audio s':>7} {'first chunk ms':>14} {'magoo RTF':>9} {'bare RTF':>9} {'magoo/bare':>10}  phrase")
    for s in results:
        magoo, bare = rtf(s.magoo, s.audio), rtf(s.bare, s.audio)
        print(f"{s.audio:>7.2f} {median(s.first_chunk) * 1000:>14.0f} {magoo:>9.3f} {bare:>9.3f}"
              f" {magoo / bare:>10.2f}  {quoted(s.phrase)}")


def print_demo(demo: DemoRuns) -> None:
    pace = "as fast as possible (--fast)" if demo.fast else "in real time, as the profile says"
    print(f"demo turn: {demo.profile} ([tts] {demo.tts}), {len(demo.latencies)} run(s), source {pace}")
    for player in sorted(set(demo.players)):
        print(f"  reply played by {player}: {demo.players.count(player)} run(s)")
    print(f"{'step':<26} {'median ms':>9} {'min–max ms':>13}")
    for step in DEMO_STEPS:
        values = [latencies[step] for latencies in demo.latencies]
        indent = "" if step == DEMO_STEPS[0] else "  "
        spread = f"{min(values):.0f}–{max(values):.0f}"
        print(f"{indent + step:<26} {median(values):>9.1f} {spread:>13}")
    print("speech_end->transcript includes pocketsphinx's end_silence (0.19 s in the demos; 1.0 s after words that are"
          " not yet a whole command): by design the utterance ends only after that much quiet")
    print(f"reply->first_audio includes the engine's mute_pre ({demo.mute_pre:g} s in the demo): the microphone is"
          " muted that long before the first sound")


# ---- main -------------------------------------------------------------------------------------


def positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be 1 or more")
    return value


def check_tools() -> None:
    if shutil.which("espeak-ng") is None:
        raise SetupError("espeak-ng not found on PATH: run ./scripts/setup.sh (or sudo apt install espeak-ng)")


async def measure_told(runs: int, fast: bool) -> tuple[DemoRuns, DemoRuns]:
    """The demo turn with the player told what the TTS yields, and not told, alternating."""
    from magoo_core.speaker import Speaker

    told_call = Speaker.prepare

    async def not_told(speaker: Any) -> None:
        return None

    plugins, profile = load_demo(fast)
    told, untold = (DemoRuns([], [], profile.engine.mute_pre, fast) for _ in range(2))
    try:
        for _ in range(runs):
            for demo, call in ((told, told_call), (untold, not_told)):
                Speaker.prepare = call
                latencies, player = await demo_turn(plugins, profile)
                demo.latencies.append(latencies)
                demo.players.append(player)
    finally:
        Speaker.prepare = told_call
    return told, untold


def print_told(told: DemoRuns, untold: DemoRuns) -> None:
    step = "reply->first_audio"
    a, b = (median(latencies[step] for latencies in demo.latencies) for demo in (told, untold))
    players = ", ".join(sorted(set(told.players + untold.players)))
    print(f"demo turn through {players}, {len(told.latencies)} run(s) of each, alternating")
    for name, demo, value in (("told", told, a), ("not told", untold, b)):
        values = [latencies[step] for latencies in demo.latencies]
        print(f"  {step}, player {name:<9} {value:7.1f} ms (min–max {min(values):.0f}–{max(values):.0f})")
    print(f"  told / not told: {a / b:.2f}")


async def measure(args: argparse.Namespace) -> None:
    """Each part in turn, printed as soon as it is measured."""
    runs = 1 if args.quick else args.runs
    if args.speaker:
        from common import private_audio

        with private_audio("bench/offline.py"):
            print_told(*await measure_told(runs, args.fast))
        return
    from offline_voice import DEMO_PIPER, measure_cuts, measure_piper, measure_usage, print_cuts, print_piper, print_usage

    _, profile = load_demo()
    print_pocketsphinx(await measure_pocketsphinx(profile, command_clips(args.quick), runs), runs)
    print()
    phrases = await reply_phrases(profile, args.quick)
    print_espeak(*await measure_espeak(profile, phrases, runs), runs)
    print()
    print_piper(*await measure_piper(phrases, runs), runs)
    print()
    print_cuts(*await asyncio.to_thread(measure_cuts, args.quick))
    print()
    print_demo(await measure_demo(runs, args.fast))
    if not args.quick:
        print()
        print_demo(await measure_demo(runs, args.fast, DEMO_PIPER))
        print()
        print_usage(await asyncio.to_thread(measure_usage, runs))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=positive, default=3, help="runs of every measurement (default 3)")
    parser.add_argument("--fast", action="store_true", help="the demo's source as fast as possible, not in real time")
    parser.add_argument("--quick", action="store_true", help="one clip, one phrase, one run of each (ignores --runs)")
    parser.add_argument("--speaker", action="store_true", help="only the demo turn, through mpv on a private PulseAudio, told and not told")
    args = parser.parse_args()
    sys.path.insert(0, str(POCKETSPHINX_TESTS))
    stop_on_sigterm()
    try:
        check_tools()
        asyncio.run(measure(args))
    except SetupError as e:
        sys.exit(f"bench/offline.py: {e}")


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        sys.exit("bench/offline.py: interrupted")
