"""How well the Home Assistant satellite keeps Home Assistant's clock: ``played`` after the real end
of the reply's sound, and the first audio chunk after a local wake word.

    python bench/satellite.py [--turns 21] [--each] [--remote]

Setup, all in this one process and its event loop:
  * a private PulseAudio server (``magoo_core.testing.virtual_audio``) whose default sink
    ``speaker`` is recorded from its monitor (``parec``, 16 kHz mono int16, 10 ms latency);
  * **magoo**: the real engine (``Engine.run``) with a live scripted microphone (a command tone per
    turn, 3 s apart), the scripted wake detector firing as each command begins (80 ms frames),
    ``[services.house] backend = "homeassistant"`` on 127.0.0.1 for ``[stt]``, and the ``mpv``
    player on the virtual speaker;
  * **Home Assistant**: the stand-in of ``magoo_wyoming.satellite.loopback`` (the ``wyoming``
    client, Home Assistant's ``assist_satellite`` flow), connected before the first wake word. It
    answers each pipeline after 0.3 s of command with a transcript and 0.6 s of TTS (a tone at
    22050 Hz, 2048-byte chunks). The first turn is a warm-up and not counted.

Measured per turn:
  * **played**: when ``played`` reached Home Assistant, minus the real end of the reply's sound:
    the end of the last 10 ms of the recording whose RMS is above 300 (of int16) after the reply
    began. Goal (issue 20): p95 <= 100 ms.
  * **player end**, the part of ``played`` that is the player's: when the player returned
    (``magoo_on_speak_end``), minus the same end of sound; the rest is the hook and the socket.
  * **HA fallback** (the baseline): when Home Assistant itself would stop waiting had no
    ``played`` come (``assist_satellite.py`` ``_stream_tts`` + ``_tts_timeout``: the audio's length
    after the TTS began streaming, + 2 x ``_TTS_TIMEOUT_EXTRA`` = 2 s), minus the same end of sound.
  * **wake -> first chunk**: when Home Assistant received the pipeline's first ``audio-chunk``,
    minus the engine's decision that the wake word was heard (the turn's ``detected``), in ms and
    in wake frames (80 ms). Goal: <= 1 frame.

With ``--remote`` (``wake = "remote"``) Home Assistant's wake stage hears the microphone (the
stand-in takes the command tone's first loud chunk for the wake word) and the last row is instead:
  * **HA det->turn**: when the stand-in sent ``detection`` minus the engine's decision that the
    wake word was heard (the turn's ``detected``): how long Home Assistant's detection waits for
    the wake worker to take it with the next captured chunk (80 ms). Goal: <= 1 chunk, + 10 ms
    for the loop. (Home Assistant's speech-to-text waits for nothing meanwhile: the audio goes on
    streaming to it through the wake detector until the turn's own stream takes over.)

Reported: p50 and p95 (ms) of each row, the ratio HA fallback / played (of the p50s), and the
verdicts. The exit code is 0 whether or not the goals are met (this is a measurement); it is 1 when
the setup fails or a turn did not end OK.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import sys
import time
from pathlib import Path

import numpy as np

from common import private_audio, stop_on_sigterm

from magoo_core.engine import Engine
from magoo_core.plugins import create_plugin_manager, hookimpl
from magoo_core.profile import parse_profile
from magoo_core.types import Outcome
from magoo_wyoming.satellite.loopback import FakeHomeAssistant

FRAME = 160  # 10 ms at the recording's 16 kHz
LOUD_RMS = 300.0
WAKE_FRAME = 0.08  # the scripted wake detector's frame: 1280 samples at 16 kHz
LEAD, COMMAND, GAP = 1.0, 0.8, 2.2  # seconds of the scripted microphone
ANSWER_SECONDS = 0.6
HA_WAIT_EXTRA = 2.0  # assist_satellite.py: _TTS_TIMEOUT_EXTRA twice


class SetupError(Exception):
    """The bench could not measure (a tool is missing, nothing was heard, a turn failed)."""


def profile_data(turns: int, remote: bool = False) -> dict:
    parts: list[dict] = [{"seconds": LEAD}]
    for _ in range(turns):
        parts += [{"seconds": COMMAND, "tone": 440.0, "amplitude": 0.2}, {"seconds": GAP}]
    # the wake times count audio heard, and a muted microphone hears nothing: each reply moves the
    # next wake later, so the script ends with quiet to hold them (Home Assistant answers any audio)
    parts.append({"seconds": 1.5 * turns})
    return {
        "services": {"house": {"backend": "homeassistant", "host": "127.0.0.1", "port": 0, "zeroconf": False,
                               "wake": "remote" if remote else "local"}},
        "audio_source": {"backend": "scripted", "realtime": True, "segments": parts},
        "wake": {"service": "house"} if remote else {"backend": "scripted", "at": [LEAD + i * (COMMAND + GAP) for i in range(turns)]},
        "stt": {"service": "house"},
        "responder": {"backend": "echo"},
        "tts": {"backend": "tone"},
        "player": {"backend": "mpv"},
        "engine": {"mute_post": 0.1},
    }


async def run_magoo(turns: int, remote: bool) -> tuple[list, FakeHomeAssistant, list[float]]:
    """The turns' timelines, the Home Assistant stand-in that answered them, and when each
    reply's ``magoo_on_speak_end`` came (the player returned)."""
    plugins = create_plugin_manager()  # magoo-wyoming comes in by its entry point
    profile = parse_profile(profile_data(turns, remote), plugins, base_dir=Path.cwd(), source="<bench/satellite.py>", environ={})
    engine = Engine(profile, plugins, max_turns=turns)
    ha: list[FakeHomeAssistant] = []

    class Connect:
        @hookimpl
        async def magoo_on_startup(self):
            port = engine.backends.services["house"].instance.listener.port
            ha.append(FakeHomeAssistant("127.0.0.1", port, answer_seconds=ANSWER_SECONDS))
            await ha[0].connect()

    ends: list[float] = []

    class SpeakEnds:
        @hookimpl
        def magoo_on_speak_end(self, turn):
            if turn is not None:
                ends.append(time.monotonic())

    plugins.pm.register(Connect(), name="bench-home-assistant")
    plugins.pm.register(SpeakEnds(), name="bench-speak-ends")
    try:
        result = await engine.run()
    finally:
        if ha:
            await ha[0].disconnect()
    if result.fatal:
        raise SetupError(f"magoo stopped: {result.fatal}")
    bad = [t for t in result.timelines if t.outcome is not Outcome.OK]
    if remote:  # the pipelines Home Assistant restarted and that heard no wake word are not turns
        ha[0].pipelines = [p for p in ha[0].pipelines if p.detection is not None]
    if bad or len(result.timelines) != turns or len(ha[0].pipelines) != turns:
        raise SetupError(f"{len(result.timelines)} turns of {turns}, {len(ha[0].pipelines)} through Home Assistant; "
                         f"not OK: {[t.summary() for t in bad]}")
    return result.timelines, ha[0], ends


async def measure(audio, turns: int, remote: bool) -> dict[str, list[float]]:
    with audio.record() as recording:
        await asyncio.to_thread(recording.wait_for_data)
        timelines, ha, ends = await run_magoo(turns + 1, remote)
        await asyncio.sleep(0.5)  # parec's latency: the last sound reaches the recording
        samples = recording.samples()
    frames = samples[: len(samples) // FRAME * FRAME].astype(np.float64).reshape(-1, FRAME)
    loudness = np.sqrt((frames * frames).mean(axis=1))
    played, fallback, first_chunk, player_end = [], [], [], []
    for i, (timeline, pipeline, ended) in enumerate(list(zip(timelines, ha.pipelines, ends, strict=True))[1:], start=2):
        start = recording.index_at(timeline.first_audio - 0.05) // FRAME
        end = min(len(loudness), recording.index_at(pipeline.played_at + 1.0) // FRAME + 1)
        loud = np.nonzero(loudness[start:end] > LOUD_RMS)[0]
        if not loud.size:
            raise SetupError(f"turn {i}: the reply was not heard")
        sound_end = recording.moment_of((start + int(loud[-1]) + 1) * FRAME)
        played.append(pipeline.played_at - sound_end)
        player_end.append(ended - sound_end)
        fallback.append(pipeline.tts_started_at + ANSWER_SECONDS + HA_WAIT_EXTRA - sound_end)
        first_chunk.append(timeline.detected - pipeline.detection_sent_at if remote else pipeline.first_audio - timeline.detected)
    last = "HA det->turn" if remote else "wake->chunk"
    return {"played": played, "  player end": player_end, "HA fallback": fallback, last: first_chunk}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--turns", type=int, default=21, help="turns measured (default 21)")
    parser.add_argument("--each", action="store_true", help="also print every measurement")
    parser.add_argument("--remote", action="store_true", help='wake = "remote": Home Assistant hears the wake word')
    args = parser.parse_args()
    if args.turns < 2:
        parser.error("--turns: at least 2")
    stop_on_sigterm()
    if shutil.which("mpv") is None:
        sys.exit("bench/satellite.py: mpv is not installed (sudo apt install mpv)")
    try:
        with private_audio("bench/satellite.py") as audio:
            rows = asyncio.run(measure(audio, args.turns, args.remote))
    except SetupError as e:
        sys.exit(f"bench/satellite.py: {e}")
    print(f"Home Assistant satellite{', remote wake' if args.remote else ''}, {args.turns} turns (ms)")
    print(f"{'row':12} {'p50':>6} {'p95':>6} {'min':>6} {'max':>6}")
    p50, p95 = {}, {}
    for name, values in rows.items():
        ms = np.array(values) * 1000
        p50[name], p95[name] = float(np.percentile(ms, 50)), float(np.percentile(ms, 95))
        print(f"{name:12} {p50[name]:6.0f} {p95[name]:6.0f} {ms.min():6.0f} {ms.max():6.0f}")
        if args.each:
            print("             " + " ".join(f"{v:.0f}" for v in ms))
    print(f"ratio HA fallback/played (p50): {p50['HA fallback'] / max(p50['played'], 1.0):.1f}")
    print(f"goal played p95 <= 100 ms: {'met' if p95['played'] <= 100 else 'NOT met'} ({p95['played']:.0f} ms)")
    if args.remote:
        ms = p95["HA det->turn"]
        print(f"goal HA detection->turn p95 <= 1 chunk + 10 ms: {'met' if ms <= WAKE_FRAME * 1000 + 10 else 'NOT met'} "
              f"({ms / (WAKE_FRAME * 1000):.2f} chunks of 80 ms)")
        return
    frames = p95["wake->chunk"] / (WAKE_FRAME * 1000)
    print(f"goal wake->first chunk p95 <= 1 frame: {'met' if frames <= 1 else 'NOT met'} ({frames:.2f} frames of 80 ms)")


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        sys.exit("bench/satellite.py: interrupted; the server and the player are stopped")
