"""How soon a reply is heard: reply text → first sound at the speaker, for a short and a long reply.

    python bench/speak.py [--runs 5] [--first-byte-delay 0.3] [--realtime-factor 2.0] [--each]

Setup, once for the whole run, all in this one process and its event loop:
  * a private PulseAudio server (``magoo_core.testing.virtual_audio``) whose default sink
    ``speaker`` is recorded from its monitor (``parec``, 16 kHz mono int16, 10 ms latency)
    from the first to the last measurement;
  * the loopback Fish Audio server (``magoo_fish.loopback``) at a realistic pace: the first
    audio byte of each request ``--first-byte-delay`` s (default 0.3) after the request arrives
    (Fish's balanced latency is a few hundred ms), the rest streamed at ``--realtime-factor``
    times real time (default 2.0; 0: as fast as the socket takes it), as MP3 44.1 kHz 128 kbit/s
    of espeak-ng speech. Every request text is encoded once before the first measurement, so
    espeak-ng and lame neither add to the first byte nor compete for the CPU while a reply plays.

Two replies: ONE is one sentence of 8 words; TEN is that sentence followed by nine more. magoo's
Fish backend sends a reply's first sentence as a request of its own, so both start with the same
request; what differs is everything magoo does with the other nine (planning, fetching the next
request while the first one plays).

Measured:
  * **magoo**: the real engine (``Engine.run``) with a live scripted microphone (a wake beep and a
    command tone per turn), the scripted wake detector and STT, the echo responder (the reply is
    the transcript, ONE and TEN in turn), the ``fish`` TTS pointed at the loopback server and the
    ``mpv`` player, with ``mute_pre = 0.2`` and ``mute_post = 0.5`` (the defaults). ``--runs``
    turns of each, alternating, in one engine run; each turn's silence lasts until its reply has
    played and the microphone is open again (computed from the espeak-ng durations).
  * **baseline**: no magoo. An mpv started with exactly the player's arguments (without its IPC
    socket and level filter) waits 1 s, like magoo's waiting mpv; then ONE is POSTed to the same
    loopback server with a plain ``httpx.AsyncClient.stream`` (the SDK's request body) and each
    chunk is written to mpv's stdin as it arrives. ``--runs`` times, half before and half after
    the magoo run, so that drift on a shared machine affects both.

For each turn, "sound" is the start of the first 10 ms of the recording whose RMS is above 300
(of int16) after the reply was ready (the turn timeline's ``reply``; for the baseline, the moment
it sends the POST), placed in monotonic time by ``Recording.index_at``, which follows the
recording's drift (PulseAudio's clock runs ~100 ppm off the monotonic one here, 15 ms over the
bench). "Server's first byte" is the ``first_byte_at`` of the first request the loopback server
received after that moment. Reported per row (medians of the runs): reply → sound (with its
min–max), server's first byte → sound, and reply → server's first byte. The ONE and TEN turns
are identified by their order and checked against the requests the server received.

Goals:
  * ratio median(TEN reply → sound) / median(ONE reply → sound) ≤ 1.1: streaming makes the first
    sound independent of the reply's length;
  * engine overhead = median(magoo server's first byte → sound, all ONE and TEN turns) −
    median(baseline server's first byte → sound) ≤ 20 ms: what magoo adds between the server's
    first byte and the sound (the SDK and its httpx client, the TTS → player hand-over, the
    player's IPC socket and level filter). With ``--first-byte-delay`` below ``mute_pre`` it also
    holds the engine's deliberate wait for the microphone to be muted ``mute_pre`` before sound.

Sound times have a resolution of 10 ms and parec's latency (the same for every row). The exit code
is 0 whether or not the goals are met (this is a measurement); it is 1 when the setup fails or a
turn did not end OK.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import statistics
import sys
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from magoo_core.testing.virtual_audio import Recording, VirtualAudio

from common import private_audio, stop_on_sigterm

KEY = "fish-bench-key-0123456789abcdef"
HEADERS = {"Authorization": f"Bearer {KEY}", "model": "s2-pro", "Content-Type": "application/msgpack"}  # the SDK's
RATE = 16000  # the recording's rate
FRAME = RATE // 100  # 10 ms
LOUD_RMS = 300.0  # of int16, as in tests/test_speaking.py
GOAL_RATIO = 1.1
GOAL_OVERHEAD_MS = 20.0
MUTE_PRE = 0.2
MUTE_POST = 0.5
END_SILENCE = 0.5  # the scripted STT's quiet after the command that ends an utterance
MPV_WARM = 1.0  # seconds the baseline's mpv waits before the request, like magoo's waiting mpv
TURN_MARGIN = 1.0  # seconds of silence after a reply should have ended and the microphone reopened
NEEDED_TOOLS = {"mpv": "mpv", "espeak-ng": "espeak-ng", "lame": "lame"}  # binary: apt package

SENTENCES = [
    "Tomorrow will be sunny with a light breeze.",
    "It gets warm around noon.",
    "Rain may come tonight.",
    "Your pasta water is boiling.",
    "Add a pinch of salt.",
    "Stir it now and then.",
    "The timer is set for nine minutes.",
    "The oven is hot.",
    "The bread needs ten more minutes.",
    "Enjoy your dinner.",
]
ONE = SENTENCES[0]
TEN = " ".join(SENTENCES)


class SetupError(Exception):
    """The bench could not measure; the message says what went wrong."""


@dataclass
class Sample:
    """One reply: when its text was ready, the server's first byte and the first sound (monotonic s)."""

    reply_at: float
    first_byte_at: float
    sound_at: float

    @property
    def reply_to_sound(self) -> float:
        return self.sound_at - self.reply_at

    @property
    def first_byte_to_sound(self) -> float:
        return self.sound_at - self.first_byte_at

    @property
    def first_byte_after_reply(self) -> float:
        return self.first_byte_at - self.reply_at


@dataclass
class Window:
    """Where to look for one reply's sound: from ``start`` (the reply) to ``end`` (monotonic s)."""

    start: float
    end: float
    first_byte_at: float


# ---- setup: tools, server, the audio the loopback server will send ------------------------------


def check_tools() -> None:
    missing = [tool for tool in NEEDED_TOOLS if shutil.which(tool) is None]
    if missing:
        packages = " ".join(NEEDED_TOOLS[tool] for tool in missing)
        raise SetupError(f"{', '.join(missing)} not found on PATH: run ./scripts/setup.sh"
                         f" (or sudo apt install {packages})")


def request_texts(reply: str) -> list[str]:
    """The requests magoo's Fish backend makes for ``reply`` (what the engine hands it, cut as it cuts)."""
    from magoo_core.speakable import speakable
    from magoo_fish import FishTextToSpeech
    from magoo_fish.sentences import plan_requests

    return plan_requests(speakable(reply), FishTextToSpeech.Config.model_fields["max_chars"].default)


async def encode_replies() -> dict[str, float]:
    """Encode every request of ONE and TEN into the loopback server's cache; seconds of speech per reply."""
    from magoo_fish.loopback.audio import EncoderMissing, encode

    durations = {}
    try:
        for reply in (ONE, TEN):
            durations[reply] = sum([(await encode(text, "mp3")).duration for text in request_texts(reply)])
    except EncoderMissing as e:
        raise SetupError(str(e)) from e
    return durations


# ---- magoo ------------------------------------------------------------------------------------


def microphone(replies: list[str], durations: dict[str, float], args: argparse.Namespace) -> dict[str, Any]:
    """A live scripted microphone: per turn a wake beep and a command tone, then silence until the
    reply has played and the microphone is open again."""
    pace = min(1.0, args.realtime_factor or 1.0)  # slower than real time, the player waits for audio
    segments: list[dict[str, Any]] = [{"seconds": 0.3}]
    for reply in replies:
        speaking = args.first_byte_delay + durations[reply] / pace
        segments += [
            {"seconds": 0.3, "tone": 660.0, "amplitude": 0.5},
            {"seconds": 0.2},
            {"seconds": 0.4, "tone": 440.0, "amplitude": 0.3},
            {"seconds": END_SILENCE + speaking + MUTE_POST + TURN_MARGIN},
        ]
    segments.append({"seconds": 1.0})
    return {"backend": "scripted", "realtime": True, "segments": segments}


def magoo_profile(server_url: str, replies: list[str], durations: dict[str, float], args: argparse.Namespace) -> dict:
    return {
        "engine": {"mute_pre": MUTE_PRE, "mute_post": MUTE_POST},
        "audio_source": microphone(replies, durations, args),
        "wake": {"backend": "scripted", "level": 0.2},
        "stt": {"backend": "scripted", "transcripts": [ONE, TEN], "end_silence": END_SILENCE},
        "responder": {"backend": "echo", "template": "{text}"},
        "tts": {"backend": "fish", "api_key": {"env": "FISH_API_KEY"}, "base_url": server_url},
        "player": {"backend": "mpv"},
    }


async def run_magoo(server, durations: dict[str, float], args: argparse.Namespace) -> tuple[list[Window], list[Window]]:
    """One engine run of ONE and TEN in turn, ``--runs`` each; the windows of the ONE and TEN turns."""
    import magoo_fish
    import magoo_mpv
    from magoo_core import Outcome
    from magoo_core.engine import Engine
    from magoo_core.testing import build_plugins, make_profile

    replies = [ONE, TEN] * args.runs
    manager = build_plugins(magoo_fish, magoo_mpv)
    overrides = magoo_profile(server.base_url, replies, durations, args)
    engine = Engine(make_profile(overrides, manager, environ={"FISH_API_KEY": KEY}), manager, max_turns=len(replies))
    script_seconds = sum(segment["seconds"] for segment in overrides["audio_source"]["segments"])
    try:
        result = await asyncio.wait_for(engine.run(), script_seconds + 30)
    except TimeoutError:
        raise SetupError(f"the engine did not finish {len(replies)} turns within {script_seconds + 30:.0f} s") from None
    if result.fatal is not None:
        raise SetupError(f"the engine stopped: {result.fatal}")
    timelines = list(result.timelines)
    failed = [t for t in timelines if t.outcome is not Outcome.OK]
    if failed:
        raise SetupError("; ".join(f"turn {t.turn} ended {t.outcome.value}: {t.error}" for t in failed))
    if len(timelines) != len(replies):
        raise SetupError(f"{len(timelines)} turns instead of {len(replies)}: a wake beep came while the"
                         " microphone was muted (a reply played late); raise TURN_MARGIN")
    windows: tuple[list[Window], list[Window]] = ([], [])
    for index, (timeline, reply) in enumerate(zip(timelines, replies, strict=True)):
        requests = [r for r in server.requests if timeline.reply <= r.received_at <= timeline.ended]
        texts = [r.text for r in requests]
        if texts != request_texts(reply):
            raise SetupError(f"turn {timeline.turn} asked the server for {texts}, not {request_texts(reply)}")
        first = min(requests, key=lambda r: r.received_at)
        windows[index % 2].append(Window(timeline.reply, timeline.ended, first.first_byte_at))
    return windows


# ---- the baseline -----------------------------------------------------------------------------


def mpv_args() -> list[str]:
    """The command magoo's mpv player runs for an MP3 reply (before it adds its IPC socket and level filter)."""
    from magoo_mpv import MpvPlayer
    from magoo_mpv.streams import StreamKind

    return MpvPlayer(MpvPlayer.Config())._mpv_args(StreamKind("mp3"))


async def bare_play(server, client, args: list[str], body: bytes) -> Window:
    """A waiting mpv fed one reply straight from the HTTP response, chunk by chunk."""
    mpv = await asyncio.create_subprocess_exec(
        *args, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
        start_new_session=True,
    )
    try:
        await asyncio.sleep(MPV_WARM)
        if mpv.returncode is not None:
            stderr = (await mpv.stderr.read()).decode().strip()
            raise SetupError(f"mpv exited at start with code {mpv.returncode}: {stderr}")
        seen = len(server.requests)
        posted = time.monotonic()
        async with client.stream("POST", "/v1/tts", headers=HEADERS, content=body) as response:
            if response.status_code != 200:
                answer = (await response.aread())[:200].decode(errors="replace")
                raise SetupError(f"the loopback server answered HTTP {response.status_code}: {answer}")
            async for chunk in response.aiter_bytes():
                mpv.stdin.write(chunk)
                await mpv.stdin.drain()
        mpv.stdin.close()
        await mpv.stdin.wait_closed()
        code = await asyncio.wait_for(mpv.wait(), 30)
        if code != 0:
            raise SetupError(f"mpv exited with code {code}: {(await mpv.stderr.read()).decode().strip()}")
        return Window(posted, time.monotonic(), server.requests[seen].first_byte_at)
    finally:
        if mpv.returncode is None:
            mpv.kill()
            await mpv.wait()


async def run_baseline(server, runs: int, *, warm_up: bool = False) -> list[Window]:
    import httpx
    import ormsgpack
    from fish_audio_sdk import TTSRequest

    args = mpv_args()
    body = ormsgpack.packb(TTSRequest(text=ONE, format="mp3").model_dump())
    windows = []
    async with httpx.AsyncClient(base_url=server.base_url, timeout=30.0) as client:
        if warm_up:  # the first request of the process pays for lazy imports and the server's first connection
            response = await client.post("/v1/tts", headers=HEADERS, content=body)
            if response.status_code != 200:
                raise SetupError(f"the loopback server answered HTTP {response.status_code}: {response.text[:200]}")
        for _ in range(runs):
            windows.append(await bare_play(server, client, args, body))
            await asyncio.sleep(0.3)
    return windows


# ---- measuring --------------------------------------------------------------------------------


async def measure(
    audio: VirtualAudio, args: argparse.Namespace
) -> tuple[dict[str, list[Sample]], dict[str, float], float]:
    """Every row's samples, the seconds of speech of ONE and TEN, and the recording's clock drift."""
    from magoo_fish.loopback import LoopbackFishServer

    durations = await encode_replies()
    before = (args.runs + 1) // 2
    with audio.record() as recording:
        await asyncio.to_thread(recording.wait_for_data)
        async with LoopbackFishServer(KEY, first_byte_delay=args.first_byte_delay,
                                      realtime_factor=args.realtime_factor) as server:
            baseline = await run_baseline(server, before, warm_up=True)
            one, ten = await run_magoo(server, durations, args)
            baseline += await run_baseline(server, args.runs - before)
        await asyncio.sleep(0.5)  # parec's latency: the last sound reaches the recording
        loudness = frame_rms(recording.samples())
    rows = {"magoo ONE": one, "magoo TEN": ten, "baseline": baseline}
    samples = {name: [sample(loudness, recording, w, f"{name} #{i + 1}") for i, w in enumerate(windows)]
               for name, windows in rows.items()}
    return samples, durations, recording.drift_ppm()


def frame_rms(audio: np.ndarray) -> np.ndarray:
    """The RMS of each 10 ms of the recording."""
    frames = audio[: len(audio) // FRAME * FRAME].astype(np.float64).reshape(-1, FRAME)
    return np.sqrt((frames * frames).mean(axis=1))


def sample(loudness: np.ndarray, recording: Recording, window: Window, what: str) -> Sample:
    """The start of the first loud 10 ms inside ``window``."""
    start = max(0, recording.index_at(window.start) // FRAME)
    end = min(len(loudness), recording.index_at(window.end) // FRAME + 1)
    loud = np.nonzero(loudness[start:end] > LOUD_RMS)[0]
    if not loud.size:
        raise SetupError(f"{what}: nothing was heard at the speaker between the reply and its end")
    return Sample(window.start, window.first_byte_at, recording.moment_of((start + int(loud[0])) * FRAME))


# ---- report -----------------------------------------------------------------------------------


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.0f}"


def median(samples: list[Sample], value: str) -> float:
    return statistics.median(getattr(s, value) for s in samples)


def print_report(rows: dict[str, list[Sample]], durations: dict[str, float], drift_ppm: float,
                 args: argparse.Namespace) -> None:
    pace = f"{args.realtime_factor:g}× real time" if args.realtime_factor else "as fast as the socket takes it"
    print(f"loopback Fish server: first byte {args.first_byte_delay:g} s after each request, audio streamed at {pace};"
          f" {args.runs} runs each; mute_pre {MUTE_PRE:g} s")
    print(f"ONE: 1 sentence, {durations[ONE]:.1f} s of speech; TEN: {len(SENTENCES)} sentences, {durations[TEN]:.1f} s,"
          f" in {len(request_texts(TEN))} requests")
    print(f"sound: first 10 ms at the speaker with RMS > {LOUD_RMS:g}; the recording's clock ran {drift_ppm:+.0f} ppm"
          " against the monotonic clock (corrected)")
    print(f"{'':<10} {'runs':>4} {'reply→sound ms':>15} {'min–max':>11} {'first byte→sound ms':>20}"
          f" {'first byte after reply ms':>26}")
    for name, samples in rows.items():
        spread = f"{ms(min(s.reply_to_sound for s in samples))}–{ms(max(s.reply_to_sound for s in samples))}"
        print(f"{name:<10} {len(samples):>4} {ms(median(samples, 'reply_to_sound')):>15} {spread:>11}"
              f" {ms(median(samples, 'first_byte_to_sound')):>20} {ms(median(samples, 'first_byte_after_reply')):>26}")
    if args.each:
        for name, samples in rows.items():
            for s in samples:
                print(f"  {name}: reply→sound {ms(s.reply_to_sound)} ms,"
                      f" first byte→sound {ms(s.first_byte_to_sound)} ms,"
                      f" first byte after reply {ms(s.first_byte_after_reply)} ms")
    ratio = median(rows["magoo TEN"], "reply_to_sound") / median(rows["magoo ONE"], "reply_to_sound")
    magoo = rows["magoo ONE"] + rows["magoo TEN"]
    overhead = median(magoo, "first_byte_to_sound") - median(rows["baseline"], "first_byte_to_sound")
    print(f"ratio ten/one: {ratio:.2f} (goal <= {GOAL_RATIO:g}): {'met' if ratio <= GOAL_RATIO else 'not met'}")
    print(f"engine overhead over the server's first byte: {ms(overhead)} ms (goal <= {GOAL_OVERHEAD_MS:g} ms):"
          f" {'met' if overhead * 1000 <= GOAL_OVERHEAD_MS else 'not met'}")


# ---- main -------------------------------------------------------------------------------------


def positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be 1 or more")
    return value


def non_negative(text: str) -> float:
    value = float(text)
    if value < 0:
        raise argparse.ArgumentTypeError("must be 0 or more")
    return value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=positive, default=5, help="turns of ONE, of TEN and baseline runs (default 5)")
    parser.add_argument("--first-byte-delay", type=non_negative, default=0.3, metavar="S",
                        help="seconds from a request to its first audio byte (default 0.3)")
    parser.add_argument("--realtime-factor", type=non_negative, default=2.0, metavar="F",
                        help="the server streams audio F times faster than real time (default 2.0; 0: unpaced)")
    parser.add_argument("--each", action="store_true", help="also print every measurement")
    args = parser.parse_args()
    args.realtime_factor = args.realtime_factor or None
    stop_on_sigterm()
    try:
        check_tools()
        with private_audio("bench/speak.py") as audio:
            rows, durations, drift_ppm = asyncio.run(measure(audio, args))
    except SetupError as e:
        sys.exit(f"bench/speak.py: {e}")
    print_report(rows, durations, drift_ppm, args)


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        sys.exit("bench/speak.py: interrupted; the servers and the players are stopped")
