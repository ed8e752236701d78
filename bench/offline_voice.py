"""bench/offline.py's newer parts (imported as ``offline_voice``): Piper through magoo against the
bare library, commands that pause against end of speech, and the CPU and memory of a whole demo
run with Piper or espeak-ng.

  * **Piper**: the demo-piper profile's [tts] (``piper``, voice en_US-joe-medium) and a bare
    ``piper.PiperVoice`` loaded from the same files and run once before timing, as the backend is;
    each reply ``runs`` times, in turn. First audio = the call to the first chunk (magoo) or to
    the first sentence's audio (bare); real-time factor = the call to the last chunk / seconds of
    audio. The bare library is what the ``piper`` command runs for each sentence, without the
    command's own start and model load (about a second), which would flatter magoo.
  * **Cuts**: commands with a pause inside ("set a timer for … five minutes"), spoken by espeak-ng
    now (three voices, 250/450/650 ms pauses), through the pocketsphinx backend with several
    end-of-speech settings on a continuous stream. Only the commands the backend hears whole when
    it waits 1.2 s (longer than any pause) count: a command the recognizer cannot hear at all is
    not end of speech's fault. Cut: more than one utterance; misheard: one, with other words.
  * **CPU and memory**: ``magoo run`` of examples/demo.toml and of examples/demo-piper.toml, each in
    its own process with no sound output (the reply goes to a file in a temporary folder): user +
    system CPU seconds (``os.wait4``) and peak resident memory (``VmHWM`` of /proc/PID/status, read
    every 20 ms until it exits: ``ru_maxrss`` would carry this big bench process's own peak over the
    exec). The magoo process only: espeak-ng's short-lived processes are not counted.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from statistics import median
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
DEMO_PIPER = EXAMPLES / "demo-piper.toml"
CUT_SETTINGS = {
    "silero 0.19 s, 1.0 s after unfinished words (the demos)": {"end_silence": 0.19},
    "silero 0.15 s, 1.0 s after unfinished words": {"end_silence": 0.15},
    "silero 0.3 s, 1.0 s after unfinished words (the default)": {},
    "silero 0.3 s": {"unfinished_silence": None},
    "silero 0.5 s": {"unfinished_silence": None, "end_silence": 0.5},
    "pocketsphinx's detector 0.6 s (before)": {"vad": "pocketsphinx", "end_silence": 0.6, "unfinished_silence": None},
}
VOICES = ("en-us", "en-us+f3", "en-us+m3")
PAUSES_MS = (250, 450, 650)


@dataclass
class Voiced:
    """One reply through Piper: per run, magoo's and the bare library's first audio, time to the end and audio seconds."""

    phrase: str
    magoo_first: list[float] = field(default_factory=list)
    magoo_rtf: list[float] = field(default_factory=list)
    bare_first: list[float] = field(default_factory=list)
    bare_rtf: list[float] = field(default_factory=list)


def bare_speak(voice: Any, text: str) -> tuple[float, float, float]:
    """Seconds to the first sentence's audio and to the last, and seconds of audio, from the bare library."""
    start = time.perf_counter()
    first = last = audio = 0.0
    for chunk in voice.synthesize(text):
        last = time.perf_counter() - start
        first = first or last
        audio += len(chunk.audio_int16_bytes) / 2 / chunk.sample_rate
    return first, last, audio


async def measure_piper(phrases: list[str], runs: int) -> tuple[Any, list[Voiced]]:
    """Every phrase through the piper backend and the bare library, in turn; and the backend's config."""
    import piper
    from magoo_piper import WARM_UP, PiperTextToSpeech

    from offline import load_demo, magoo_speak

    _, profile = load_demo(profile=DEMO_PIPER)
    tts = profile.tts.create()
    files = PiperTextToSpeech.voice_of(tts.config)
    bare = piper.PiperVoice.load(files.model, config_path=files.config)
    bare_speak(bare, WARM_UP)
    results = []
    async with tts:
        for phrase in phrases:
            voiced = Voiced(phrase)
            for _ in range(runs):
                first, last, audio = await magoo_speak(tts, phrase)
                voiced.magoo_first.append(first)
                voiced.magoo_rtf.append(last / audio)
                first, last, audio = await asyncio.to_thread(bare_speak, bare, phrase)
                voiced.bare_first.append(first)
                voiced.bare_rtf.append(last / audio)
            results.append(voiced)
    return tts.config, results


def print_piper(cfg: Any, results: list[Voiced], runs: int) -> None:
    print(f"piper: voice {cfg.voice}; median of {runs} run(s)")
    print("  magoo: the piper backend, call -> first / last chunk; bare: piper.PiperVoice.synthesize, loaded and run once"
          " before, call -> first / last sentence; RTF = time to the last / seconds of audio")
    print(f"{'magoo first ms':>14} {'bare first ms':>13} {'first ratio':>11} {'magoo RTF':>9} {'bare RTF':>9}"
          f" {'RTF ratio':>9}  phrase")
    for v in results:
        mf, bf, mr, br = (median(x) for x in (v.magoo_first, v.bare_first, v.magoo_rtf, v.bare_rtf))
        print(f"{mf * 1000:>14.0f} {bf * 1000:>13.0f} {mf / bf:>11.2f} {mr:>9.3f} {br:>9.3f} {mr / br:>9.2f}  \"{v.phrase}\"")


# ---- commands that pause -----------------------------------------------------------------------


@dataclass
class Cuts:
    """One end-of-speech setting over the paused commands."""

    setting: str
    cut: list[str] = field(default_factory=list)
    misheard: list[str] = field(default_factory=list)
    held: int = 0


def finals_of(config: dict, pcm: bytes) -> tuple[list[str], int]:
    """The finals of a continuous stream through a fresh backend, and the pauses it held."""
    from magoo_core.roles import AudioStream
    from magoo_core.types import Transcript
    from magoo_pocketsphinx import PocketsphinxSpeechToText
    from pocketsphinx_helpers import chunks

    async def run() -> tuple[list[str], int]:
        async def audio():
            for piece in chunks(pcm):
                yield piece

        stt = PocketsphinxSpeechToText(PocketsphinxSpeechToText.Config.model_validate(config))
        async with stt:
            found = [i.text async for i in stt.transcribe(AudioStream(audio(), continuous=True))
                     if isinstance(i, Transcript) and i.final]
            return found, int(stt.stats()["held"])

    return asyncio.run(run())


def measure_cuts(quick: bool) -> tuple[int, int, list[Cuts]]:
    """The paused commands (all, or the first in en-us at 450 ms with ``quick``) through each setting:
    how many clips there were, how many the backend hears whole, and each setting's cuts."""
    from pocketsphinx_helpers import PAUSED, PAUSED_COMMANDS, paused_clip, room

    voices, pauses, commands = (VOICES[:1], (450,), PAUSED[:1]) if quick else (VOICES, PAUSES_MS, PAUSED)
    clips = {}
    total = 0
    for voice in voices:
        for pause in pauses:
            for before, after in commands:
                total += 1
                command = f"{before} {after}"
                pcm = room(0.3) + paused_clip(before, after, pause, voice) + room(1.5)
                whole, _ = finals_of({"commands": PAUSED_COMMANDS, "end_silence": 1.2, "unfinished_silence": None}, pcm)
                if whole == [command]:
                    clips[f"{command} ({voice}, {pause} ms)"] = (command, pcm)
    results = []
    for setting, options in CUT_SETTINGS.items():
        cuts = Cuts(setting)
        for name, (command, pcm) in clips.items():
            finals, held = finals_of({"commands": PAUSED_COMMANDS, **options}, pcm)
            cuts.held += held
            if len(finals) > 1:
                cuts.cut.append(name)
            elif finals != [command]:
                cuts.misheard.append(name)
        results.append(cuts)
    return total, len(clips), results


def print_cuts(total: int, heard: int, results: list[Cuts]) -> None:
    print(f"end of speech on commands with a pause inside: {heard} of {total} espeak-ng clips that the backend hears"
          " whole when it waits 1.2 s (grammar of the paused commands)")
    print(f"{'cut':>4} {'misheard':>8} {'held':>5}  end of speech")
    for cuts in results:
        print(f"{len(cuts.cut):>4} {len(cuts.misheard):>8} {cuts.held:>5}  {cuts.setting}")
        for name in cuts.misheard:
            print(f"{'':>20}misheard: {name}")
    print("  held: pauses that waited unfinished_silence because the words so far were not a whole command")


# ---- CPU and memory ------------------------------------------------------------------------------


@dataclass
class Usage:
    profile: str
    cpu: float  # user + system seconds
    rss_mb: float  # peak resident memory


def run_usage(profile: Path) -> Usage:
    """``magoo run --profile`` of a copy of ``profile`` (and the demo's audio) in a temporary folder, with no sound output."""
    from magoo_core.testing.virtual_audio import no_sound_environment

    magoo = Path(sys.executable).parent / "magoo"
    with tempfile.TemporaryDirectory(prefix="magoo-offline-usage-") as folder:
        shutil.copytree(EXAMPLES / "audio", Path(folder) / "audio")
        shutil.copy(profile, Path(folder) / profile.name)
        env = {**os.environ, **no_sound_environment(Path(folder))}
        proc = subprocess.Popen([str(magoo), "run", "--profile", profile.name], cwd=folder, env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
        peak = 0
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            peak = max(peak, high_water_kb(proc.pid))
            time.sleep(0.02)
        proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        from offline import SetupError

        raise SetupError(f"magoo run --profile {profile.name} exited {proc.returncode}")
    return Usage(profile.name, usage.ru_utime + usage.ru_stime, peak / 1024)


def high_water_kb(pid: int) -> int:
    """The process's peak resident memory so far, in KiB (0 once it is gone)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0
    return next((int(line.split()[1]) for line in status.splitlines() if line.startswith("VmHWM:")), 0)


def measure_usage(runs: int) -> list[list[Usage]]:
    """``runs`` runs of the espeak demo and of the Piper demo, in turn."""
    return [[run_usage(profile) for profile in (EXAMPLES / "demo.toml", DEMO_PIPER)] for _ in range(runs)]


def print_usage(runs: list[list[Usage]]) -> None:
    espeak = [pair[0] for pair in runs]
    piper = [pair[1] for pair in runs]
    cpu_e, cpu_p = median(u.cpu for u in espeak), median(u.cpu for u in piper)
    rss_e, rss_p = median(u.rss_mb for u in espeak), median(u.rss_mb for u in piper)
    print(f"CPU and memory of a whole demo run (magoo run, one turn, about 6 s of audio; median of {len(runs)} run(s))")
    print(f"{'profile':<16} {'CPU s':>6} {'peak RSS MB':>11}")
    print(f"{'demo.toml':<16} {cpu_e:>6.2f} {rss_e:>11.0f}")
    print(f"{'demo-piper.toml':<16} {cpu_p:>6.2f} {rss_p:>11.0f}")
    print(f"piper / espeak: CPU {cpu_p / cpu_e:.2f}, memory {rss_p / rss_e:.2f}")
