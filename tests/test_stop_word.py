"""The stop word (``[engine.stop_word]``): real pocketsphinx keyword search on espeak-ng speech.

The unit tests feed :class:`StopWord` directly; the end-to-end tests run the engine on the private
PulseAudio server (the sounddevice source on the virtual microphone, espeak-ng replies played by
mpv) and play "stop" into the virtual microphone while a reply, an announcement or a timer's ring
plays. The end-to-end tests wait on real time: the reply must really be playing when "stop" is
said, which is what they check.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from magoo_core import AudioChunk, AudioFormat, Outcome
from magoo_core.audio import convert, read_wav, write_wav
from magoo_core.engine import Engine
from magoo_core.plugins import hookimpl
from magoo_core.settings import EngineSettings, StopWordSettings
from magoo_core.stop_word import StopWord
from magoo_core.testing import build_plugins, make_profile

pytestmark = pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="needs espeak-ng (./scripts/setup.sh)")

RATE = 16000
LONG_REPLY = (
    "Here is the weather for today. In the morning it will be cloudy with a light breeze from the west."
    " Around noon the sun comes out and it gets warmer. In the evening there may be a short shower."
)


def spoken(text: str, tmp_path: Path, voice: str = "en-us", speed: int = 160, pad: float = 0.5) -> Path:
    """``text`` said by espeak-ng, as a 16 kHz mono WAV with ``pad`` s of silence on both sides."""
    raw = tmp_path / f"raw-{abs(hash((text, voice, speed)))}.wav"
    subprocess.run(["espeak-ng", "-v", voice, "-s", str(speed), "-w", str(raw), text], check=True, capture_output=True)
    fmt, pcm = read_wav(raw)
    chunk = convert(AudioChunk(pcm, fmt.sample_rate, fmt.channels), AudioFormat(RATE))
    silence = bytes(round(pad * RATE) * 2)
    return write_wav(tmp_path / f"{raw.stem}-16k.wav", silence + chunk.pcm + silence, AudioFormat(RATE))


def chunks_of(path: Path, frames: int = 1280) -> list[AudioChunk]:
    _, pcm = read_wav(path)
    step = frames * 2
    return [AudioChunk(pcm[i : i + step], RATE) for i in range(0, len(pcm), step)]


async def heard(path: Path, *, playing: bool, settings: StopWordSettings | None = None) -> int:
    """How many times ``on_stop`` ran after the clip was fed (with ``playing`` on every chunk)."""
    calls: list[int] = []

    async def on_stop() -> None:
        calls.append(1)

    spotter = StopWord(settings or StopWordSettings(settle_s=0), on_stop)
    try:
        for chunk in chunks_of(path):
            spotter.hear(chunk, playing)
        await asyncio.to_thread(lambda: spotter._worker.submit(lambda: None).result())  # the worker has caught up
        await asyncio.sleep(0.05)  # the stop it asked for runs on the loop
    finally:
        await spotter.close()
    return len(calls)


# ---- the spotter on its own ---------------------------------------------------------------------


@pytest.mark.parametrize(("voice", "speed"), [("en-us", 160), ("en", 140), ("en-us+f3", 180)])
async def test_stop_said_while_something_plays_stops_it(tmp_path, voice, speed):
    assert await heard(spoken("stop", tmp_path, voice, speed), playing=True) == 1


async def test_stop_said_while_nothing_plays_does_nothing(tmp_path):
    assert await heard(spoken("stop", tmp_path), playing=False) == 0


async def test_a_reply_without_the_word_stops_nothing_at_a_strict_threshold(tmp_path):
    # the reply at full level, as a microphone without echo cancellation hears it: the default
    # threshold is for the cleaned signal (docs/duplex.md), 1e-10 is the stricter one for this
    settings = StopWordSettings(threshold=1e-10, settle_s=0)
    reply = spoken("It is twelve o'clock. Time for lunch. The pasta timer is done.", tmp_path)
    assert await heard(reply, playing=True, settings=settings) == 0


async def test_another_phrase_can_be_the_stop_word(tmp_path):
    settings = StopWordSettings(word="stop it", threshold=1e-20, settle_s=0)
    assert await heard(spoken("stop it", tmp_path), playing=True, settings=settings) == 1
    assert await heard(spoken("go on please", tmp_path), playing=True, settings=settings) == 0


async def test_each_playing_can_be_stopped_once_and_the_next_afresh(tmp_path):
    stop = chunks_of(spoken("stop", tmp_path))
    calls: list[int] = []

    async def on_stop() -> None:
        calls.append(1)

    spotter = StopWord(StopWordSettings(settle_s=0), on_stop)
    for _ in range(2):
        for chunk in stop + stop:  # said twice within one playing: it stops once
            spotter.hear(chunk, True)
        await asyncio.to_thread(lambda: spotter._worker.submit(lambda: None).result())
        await asyncio.sleep(0.05)
        spotter.hear(AudioChunk(bytes(2560), RATE), False)  # the playing ended
    await spotter.close()
    assert len(calls) == 2 and spotter.heard == 2


async def test_the_first_seconds_of_playing_are_not_listened_to_then_stop_is_heard(tmp_path):
    stop = chunks_of(spoken("stop", tmp_path))
    settle = sum(chunk.duration for chunk in stop) + 0.5
    calls: list[int] = []

    async def on_stop() -> None:
        calls.append(1)

    spotter = StopWord(StopWordSettings(settle_s=settle), on_stop)
    silence = [AudioChunk(bytes(2560), RATE)] * 13  # 1 s of playing: the settling ends within it
    for playing in (stop, silence, stop):
        for chunk in playing:
            spotter.hear(chunk, True)
        await asyncio.to_thread(lambda: spotter._worker.submit(lambda: None).result())
        await asyncio.sleep(0.05)
        spotter.hear(AudioChunk(bytes(2560), RATE), False)
        if playing is stop and not calls:
            assert spotter.heard == 0  # the first "stop" fell in the settling
    await spotter.close()
    assert len(calls) == 1 and spotter.heard == 1  # the second "stop", after the settling


def test_a_word_pocketsphinx_does_not_know_turns_the_stop_word_off_with_one_line(caplog):
    async def on_stop() -> None: ...

    with caplog.at_level(logging.WARNING, logger="magoo.engine"):
        assert StopWord.of_settings(StopWordSettings(word="zzxqj"), on_stop) is None
    (line,) = [r.getMessage() for r in caplog.records]
    assert "zzxqj is not in pocketsphinx's English dictionary" in line and "the stop word is off" in line


def test_without_pocketsphinx_the_run_goes_on_without_the_stop_word(caplog, monkeypatch):
    monkeypatch.setitem(sys.modules, "pocketsphinx", None)

    async def on_stop() -> None: ...

    with caplog.at_level(logging.WARNING, logger="magoo.engine"):
        assert StopWord.of_settings(StopWordSettings(), on_stop) is None
    (line,) = [r.getMessage() for r in caplog.records]
    assert "[engine.stop_word] is off" in line and "pocketsphinx" in line


def test_the_table_is_strict_and_off_unless_given():
    assert EngineSettings().stop_word is None
    assert EngineSettings(stop_word={}).stop_word == StopWordSettings(enabled=True, word="stop", threshold=None, settle_s=None)
    assert (StopWordSettings().resolved(echo_cancel=True).threshold, StopWordSettings().resolved(echo_cancel=True).settle_s) == (1e-30, 30)
    assert (StopWordSettings().resolved(echo_cancel=False).threshold, StopWordSettings().resolved(echo_cancel=False).settle_s) == (1e-10, 0)
    assert StopWordSettings(threshold=1e-20).resolved(echo_cancel=False).threshold == 1e-20
    with pytest.raises(ValueError):
        EngineSettings(stop_word={"word": "Stop!"})
    with pytest.raises(ValueError):
        EngineSettings(stop_word={"words": "stop"})


# ---- end to end on the virtual microphone -------------------------------------------------------


class Stage:
    """A test plugin: at startup ``action(speech, timers)``; when something starts playing, "stop"
    is played into the virtual microphone (once)."""

    def __init__(self, virtual_audio: Any, stop_wav: Path, action: Any = None, after: float = 0.8) -> None:
        self.virtual_audio = virtual_audio
        self.stop_wav = stop_wav
        self.action = action
        self.after = after
        self.events: list[tuple[str, dict]] = []
        self.said_stop = asyncio.Event()
        self._tasks: set[asyncio.Task] = set()

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    @hookimpl
    async def magoo_on_startup(self, profile, speech, timers) -> None:
        if self.action is not None:
            self._spawn(self.action(speech, timers))

    @hookimpl
    def magoo_on_speak_start(self, text: str, turn: int | None) -> None:
        self.events.append(("speak_start", {"text": text, "turn": turn}))
        if not self.said_stop.is_set() and not text.startswith("<sound"):
            self.said_stop.set()
            self._spawn(self._say_stop())

    @hookimpl
    def magoo_on_speak_end(self, turn: int | None, interrupted: bool) -> None:
        self.events.append(("speak_end", {"turn": turn, "interrupted": interrupted}))

    async def _say_stop(self) -> None:
        await asyncio.sleep(self.after)  # well into the reply
        await asyncio.to_thread(self.virtual_audio.play, self.stop_wav)


def e2e_profile(**overrides: Any) -> dict[str, Any]:
    return {
        "audio_source": {"backend": "sounddevice"},
        "engine": {"mute_pre": 0.1, "mute_post": 0.2, "stop_word": {"settle_s": 0}, **overrides.pop("engine", {})},
        "tts": {"backend": "espeak"},
        "player": {"backend": "mpv"},
        **overrides,
    }


async def run_stage(overrides: dict[str, Any], stage: Stage, *, until: Any, turns: int | None = None) -> Engine:
    import magoo_espeak
    import magoo_mpv
    import magoo_sounddevice

    manager = build_plugins(magoo_sounddevice, magoo_espeak, magoo_mpv, stage)
    engine = Engine(make_profile(overrides, manager), manager, max_turns=turns)

    async def stop_when_done() -> None:
        await until(engine)
        engine.request_stop()

    watcher = asyncio.ensure_future(stop_when_done())
    try:
        await asyncio.wait_for(engine.run(), 60)
    finally:
        watcher.cancel()
    return engine


@pytest.mark.usefixtures("virtual_audio")
async def test_stop_said_into_the_microphone_ends_an_announcement(virtual_audio, tmp_path):
    results: list[Any] = []

    async def announce(speech, timers) -> None:
        results.append(await speech.say(LONG_REPLY))

    stage = Stage(virtual_audio, spoken("stop", tmp_path), announce)

    async def said(engine: Engine) -> None:
        while not results:
            await asyncio.sleep(0.05)

    engine = await run_stage(e2e_profile(), stage, until=said)
    assert results[0].status == "interrupted"
    assert ("speak_end", {"turn": None, "interrupted": True}) in stage.events
    assert engine.duplex.stop_word.heard == 1
    assert engine.muted is False


@pytest.mark.usefixtures("virtual_audio")
async def test_stop_said_into_the_microphone_ends_a_reply_and_its_turn_without_a_new_turn(virtual_audio, tmp_path):
    command = np.concatenate([np.zeros(RATE // 2), 0.3 * 32767 * np.sin(2 * np.pi * 440 * np.arange(RATE * 6 // 10) / RATE), np.zeros(RATE)])
    command_wav = write_wav(tmp_path / "command.wav", command.astype("<i2").tobytes(), AudioFormat(RATE))

    async def speak_up(speech, timers) -> None:
        await asyncio.sleep(0.5)
        await asyncio.to_thread(virtual_audio.play, command_wav)

    stage = Stage(virtual_audio, spoken("stop", tmp_path), speak_up)
    overrides = e2e_profile(
        wake={"backend": "scripted", "at": [0.3]},
        stt={"backend": "scripted", "transcripts": ["tell me the weather"]},
        responder={"backend": "echo", "template": LONG_REPLY},
    )

    async def one_turn(engine: Engine) -> None:
        while not engine.timelines:
            await asyncio.sleep(0.05)
        await asyncio.sleep(1.0)  # no new turn starts after the stopped one

    engine = await run_stage(overrides, stage, until=one_turn)
    (turn,) = engine.timelines
    assert turn.outcome is Outcome.INTERRUPTED and "stopped" in (turn.error or "")
    assert engine.duplex.stop_word.heard == 1 and engine.wakes == {"hey_magoo": 1}


@pytest.mark.usefixtures("virtual_audio")
async def test_stop_said_into_the_microphone_silences_a_ringing_timer(virtual_audio, tmp_path):
    async def set_timer(speech, timers) -> None:
        await timers.set(1.0, "tea")

    stage = Stage(virtual_audio, spoken("stop", tmp_path), set_timer, after=0.3)
    overrides = e2e_profile(engine={"timers": {"ring_every": 2.0, "ring_for": 30.0, "store": False, "say": "The {name} timer is done, the {name} timer is done."}})

    async def rang_and_stopped(engine: Engine) -> None:
        while engine.duplex.stop_word.heard == 0:
            await asyncio.sleep(0.05)
        await asyncio.sleep(4.0)  # two more rings would have started by now

    engine = await run_stage(overrides, stage, until=rang_and_stopped)
    starts = [args["text"] for name, args in stage.events if name == "speak_start"]
    assert starts.count("The tea timer is done, the tea timer is done.") == 1, starts
    assert engine.timers.ringing() == []


@pytest.mark.usefixtures("virtual_audio")
async def test_stop_said_into_the_microphone_while_nothing_plays_does_nothing(virtual_audio, tmp_path):
    stop_wav = spoken("stop", tmp_path)

    async def say_stop_then_listen(speech, timers) -> None:
        await asyncio.to_thread(virtual_audio.play, stop_wav)

    stage = Stage(virtual_audio, stop_wav, say_stop_then_listen)

    async def heard_it(engine: Engine) -> None:
        while engine.counters["audio_seconds"] < 2.5:  # the clip (1.4 s) and a second after it
            await asyncio.sleep(0.05)

    engine = await run_stage(e2e_profile(), stage, until=heard_it)
    assert engine.duplex.stop_word.heard == 0 and stage.events == [] and not engine.timelines
