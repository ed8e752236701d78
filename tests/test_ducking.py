"""Ducking (``[engine.ducking]``) on the private PulseAudio server: a real second stream ("music",
``paplay`` of a long clip into the virtual speaker, started outside this process's tree as another
program's would be) is lowered while a turn is in progress and put back after, on every way out.

Volumes are read with pulsectl, as the server keeps them (integers; 65536 = 100 %). The tests that
run turns wait on real time: the reply must really be playing when the volume is read.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from magoo_core import AudioFormat, Outcome
from magoo_core.audio import write_wav
from magoo_core.ducking import Ducking, lowered, own_pids
from magoo_core.ducking_ledger import DuckingLedger
from magoo_core.engine import Engine
from magoo_core.plugins import hookimpl
from magoo_core.settings import DuckingSettings
from magoo_core.testing import build_plugins, make_profile

from long_reply import long_reply_profile

pulsectl = pytest.importorskip("pulsectl")

pytestmark = pytest.mark.usefixtures("virtual_audio")

RATE = 16000
USER_VOLUME = 0.7  # what the user had set the music to


def raw(values: list[float]) -> list[int]:
    return [round(v * 0x10000) for v in values]


class Music:
    """Another program's stream: ``paplay`` of 60 s of quiet noise into the virtual speaker, its
    parent gone (so it is not a child of this process, as magoo's own player would be)."""

    def __init__(self, folder: Path) -> None:
        noise = (np.random.default_rng(1).standard_normal(RATE * 60) * 300).astype("<i2")
        wav = write_wav(folder / "music.wav", noise.tobytes(), AudioFormat(RATE))
        out = subprocess.run(["sh", "-c", f"paplay --device=speaker {wav} >/dev/null 2>&1 & echo $!"], capture_output=True, text=True, check=True)
        self.pid = int(out.stdout.strip())
        self.pulse = pulsectl.Pulse("magoo-test")
        self.index = self._wait_for_stream()
        self.set(USER_VOLUME)
        #: the user's volume, per channel, as the server keeps it
        self.user = self.volume()

    def ducked(self, amount_db: float = 15.0) -> bool:
        """The stream is at the user's volume lowered by ``amount_db`` (to the server's rounding)."""
        return is_lowered(self.volume(), self.user, amount_db)

    def _wait_for_stream(self) -> int:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            for stream in self.pulse.sink_input_list():
                if stream.proplist.get("application.process.id") == str(self.pid):
                    return stream.index
            time.sleep(0.05)
        raise AssertionError("paplay's stream never appeared")

    def volume(self) -> list[int]:
        return raw(self.pulse.sink_input_info(self.index).volume.values)

    def set(self, level: float) -> None:
        stream = self.pulse.sink_input_info(self.index)
        self.pulse.volume_set(stream, pulsectl.PulseVolumeInfo([level] * len(stream.volume.values)))

    def close(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, signal.SIGKILL)
        self.pulse.close()


@pytest.fixture
def music(tmp_path) -> Iterator[Music]:
    playing = Music(tmp_path)
    try:
        yield playing
    finally:
        playing.close()


def is_lowered(volume: list[int], user: list[int], amount_db: float = 15.0) -> bool:
    want = raw(lowered([v / 0x10000 for v in user], amount_db))
    return len(volume) == len(want) and all(abs(a - b) <= 2 for a, b in zip(volume, want))


# ---- the part on its own ------------------------------------------------------------------------


async def test_other_streams_are_lowered_and_get_back_exactly_their_volume(music):
    ducking = Ducking(DuckingSettings(amount_db=15))
    ducking.want(True)
    await ducking.settled()
    assert music.ducked()
    ducking.want(False)
    await ducking.settled()
    assert music.volume() == music.user
    await ducking.close()


async def test_a_volume_the_user_set_while_lowered_is_kept(music):
    ducking = Ducking(DuckingSettings(amount_db=15))
    ducking.want(True)
    await ducking.settled()
    music.set(0.5)
    await ducking.close()
    assert music.volume() == raw([0.5] * len(music.user))


async def test_magoos_own_streams_are_never_lowered(music, tmp_path, virtual_audio):
    own = subprocess.Popen(["paplay", "--device=speaker", str(tmp_path / "music.wav")], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        assert own.pid in own_pids() and music.pid not in own_pids()
        while not [s for s in music.pulse.sink_input_list() if s.proplist.get("application.process.id") == str(own.pid)]:
            await asyncio.sleep(0.05)
        ducking = Ducking(DuckingSettings(amount_db=20))
        ducking.want(True)
        await ducking.settled()
        volumes = {s.proplist["application.process.id"]: raw(s.volume.values) for s in music.pulse.sink_input_list()}
        assert volumes[str(own.pid)] == raw([1.0] * len(volumes[str(own.pid)]))
        assert is_lowered(volumes[str(music.pid)], music.user, 20.0)
        await ducking.close()
    finally:
        own.kill()
        own.wait()


async def test_a_stream_that_starts_while_lowered_is_lowered_too(music, tmp_path):
    ducking = Ducking(DuckingSettings(amount_db=15))
    ducking.want(True)
    await ducking.settled()
    late = Music(tmp_path)
    try:
        assert late.volume() == late.user
        deadline = time.monotonic() + 3
        while not late.ducked() and time.monotonic() < deadline:
            ducking.want(True)  # the engine says so with every chunk
            await asyncio.sleep(0.05)
        assert late.ducked()
        await ducking.close()
        assert (late.volume(), music.volume()) == (late.user, music.user)
    finally:
        late.close()


async def test_no_sound_server_is_one_line_and_nothing_breaks(caplog, monkeypatch, tmp_path):
    monkeypatch.setenv("PULSE_SERVER", f"unix:{tmp_path}/none")
    ducking = Ducking(DuckingSettings())
    for _ in range(3):
        ducking.want(True)
        await ducking.settled()
        ducking.want(False)
        await ducking.settled()
    await ducking.close()
    lines = [r.getMessage() for r in caplog.records if "ducking" in r.getMessage()]
    assert len(lines) == 1 and "pulsectl" in lines[0] and "PULSE_SERVER" in lines[0]


# ---- turns ----------------------------------------------------------------------------------------


class VolumeSampler:
    """Reads the music's volume every 20 ms on a thread of its own, with the engine's state."""

    def __init__(self, music: Music, engine: Engine) -> None:
        self.samples: list[tuple[str, bool, list[int]]] = []
        self._music, self._engine = music, engine
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        pulse = pulsectl.Pulse("magoo-test-sampler")
        try:
            while not self._stop.wait(0.02):
                volume = raw(pulse.sink_input_info(self._music.index).volume.values)
                self.samples.append((self._engine.state.value, self._engine.speaker.playing, volume))
        finally:
            pulse.close()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def while_speaking(self) -> list[list[int]]:
        return [volume for state, playing, volume in self.samples if playing and state == "speaking"]


def turn_profile(**overrides: Any) -> dict[str, Any]:
    return {
        "audio_source": {
            "backend": "scripted", "realtime": True,
            "segments": [{"seconds": 0.3}, {"seconds": 0.4, "tone": 660.0, "amplitude": 0.5}, {"seconds": 0.2},
                         {"seconds": 0.6, "tone": 440.0, "amplitude": 0.3}, {"seconds": 60}],
        },
        "engine": {"ducking": {"amount_db": 15}, **overrides.pop("engine", {})},
        "tts": {"backend": "tone", "seconds_per_char": 0.05, "max_seconds": 2.0, "realtime": True},
        **overrides,
    }


async def run_turns(music: Music, overrides: dict[str, Any], *plugins: Any, turns: int = 1) -> tuple[Engine, VolumeSampler, list[int]]:
    """Run until ``turns`` turns ended and 0.5 s more; returns the engine, the samples and the
    music's volume then, while magoo still runs (its shutdown restores volumes too)."""
    manager = build_plugins(*plugins)
    engine = Engine(make_profile(overrides, manager), manager)
    sampler = VolumeSampler(music, engine)
    after: list[int] = []

    async def stop_after_turns() -> None:
        while len(engine.timelines) < turns:
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.5)  # the next chunks see the turn over
        after.extend(await asyncio.to_thread(music.volume))
        engine.request_stop()

    watcher = asyncio.ensure_future(stop_after_turns())
    try:
        await asyncio.wait_for(engine.run(), 60)
    finally:
        watcher.cancel()
        sampler.stop()
    return engine, sampler, after


async def test_lowered_while_a_turn_speaks_and_back_after_it_ends(music):
    engine, sampler, after = await run_turns(music, turn_profile())
    assert [t.outcome for t in engine.timelines] == [Outcome.OK]
    assert sampler.while_speaking() and all(is_lowered(v, music.user) for v in sampler.while_speaking()[5:])
    assert after == music.user and music.volume() == music.user


async def test_back_after_a_barge_in_and_the_turn_it_started(music):
    source = turn_profile()["audio_source"]
    source["segments"][-1:] = [{"seconds": 1.2}, {"seconds": 0.4, "tone": 660.0, "amplitude": 0.5}, {"seconds": 0.2},
                               {"seconds": 0.6, "tone": 440.0, "amplitude": 0.3}, {"seconds": 60}]
    overrides = turn_profile(audio_source=source, engine={"barge_in": True, "mute_pre": 0.0, "mute_post": 0.0},
                             tts={"backend": "tone", "seconds_per_char": 0.2, "max_seconds": 8.0, "realtime": True})
    engine, sampler, after = await run_turns(music, overrides, turns=2)
    assert engine.timelines[0].outcome is Outcome.INTERRUPTED
    assert all(is_lowered(v, music.user) for v in sampler.while_speaking()[5:])
    assert after == music.user and music.volume() == music.user


async def test_back_after_the_player_was_killed_mid_reply(music):
    import magoo_mpv

    killed: list[int] = []

    class Killer:
        @hookimpl
        def magoo_on_speak_chunk(self, level: float, duration: float, turn: int | None) -> None:
            if not killed and engine_box:
                process = engine_box[0].player.last_instance._current
                killed.append(process.proc.pid)
                os.kill(process.proc.pid, signal.SIGKILL)

    engine_box: list[Engine] = []
    overrides = turn_profile(player={"backend": "mpv"}, tts={"backend": "tone", "seconds_per_char": 0.2, "max_seconds": 8.0})
    killer = Killer()
    original = Engine.__init__

    def keep(self, *args, **kwargs):
        original(self, *args, **kwargs)
        engine_box.append(self)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(Engine, "__init__", keep)
        engine, sampler, after = await run_turns(music, overrides, magoo_mpv, killer)
    assert killed and engine.timelines[0].outcome is Outcome.ERROR
    assert any(is_lowered(v, music.user) for v in sampler.while_speaking())
    assert after == music.user and music.volume() == music.user


async def test_back_after_a_turn_that_crashed(music):
    overrides = turn_profile(responder={"backend": "echo", "fail": [1]})
    engine, sampler, after = await run_turns(music, overrides)
    assert engine.timelines[0].outcome is Outcome.ERROR
    assert any(is_lowered(v, music.user) for state, _, v in sampler.samples if state in ("awake", "thinking"))
    assert after == music.user and music.volume() == music.user


async def test_back_after_a_stop_at_once(music):
    """The second signal's stop at once (shutdown.stop_now) skips the graceful shutdown: the
    volumes come back there too. (Two signals sent to ``magoo run`` back to back often arrive as
    one, so this is asked of the engine directly.)"""
    overrides = turn_profile(tts={"backend": "tone", "seconds_per_char": 3.0, "max_seconds": 60.0, "realtime": True},
                             engine={"shutdown_timeout": 60})
    manager = build_plugins()
    engine = Engine(make_profile(overrides, manager), manager)

    async def hurry_while_speaking() -> None:
        while not (engine.speaker.playing and await asyncio.to_thread(music.ducked)):
            await asyncio.sleep(0.05)
        engine.request_stop()
        engine.stopping.hurry()

    watcher = asyncio.ensure_future(hurry_while_speaking())
    try:
        result = await asyncio.wait_for(engine.run(), 60)
    finally:
        watcher.cancel()
    assert result.hurried and music.volume() == music.user


def start_long_turn(music: Music, magoo_process, tmp_path: Path) -> subprocess.Popen:
    """``magoo run`` of a turn with a long reply, returned once the music is lowered (the turn has begun)."""
    profile = tmp_path / "duck.toml"
    profile.write_text(long_reply_profile(tmp_path, "\n[engine.ducking]\namount_db = 15\n"))
    proc = magoo_process("run", "--profile", profile)
    deadline = time.monotonic() + 30
    while not music.ducked():
        assert time.monotonic() < deadline and proc.poll() is None, proc.stderr.read() if proc.poll() is not None else "never lowered"
        time.sleep(0.05)
    return proc


def test_back_after_sigterm_of_magoo_run(music, magoo_process, tmp_path):
    proc = start_long_turn(music, magoo_process, tmp_path)
    time.sleep(0.5)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) == 0
    assert "Traceback" not in proc.stderr.read()
    assert music.volume() == music.user


async def test_after_sigkill_of_magoo_run_the_next_run_puts_it_back(music, magoo_process, tmp_path, caplog):
    """SIGKILL gives magoo no chance: the music stays lowered, until the next run on the same
    server starts (a service manager restarts it at once) and finds what the dead run had lowered."""
    proc = start_long_turn(music, magoo_process, tmp_path)
    proc.kill()
    proc.wait(timeout=30)
    time.sleep(0.3)
    assert music.ducked()  # nothing ran to restore it
    caplog.set_level("INFO", logger="magoo.engine")
    next_run = Ducking(DuckingSettings(amount_db=15))
    await next_run.settled()
    assert music.volume() == music.user
    assert re.search(r"ducking: put \d+ stream\(s\) back to their volume", caplog.text)
    await next_run.close()


async def test_a_stream_the_user_set_after_the_kill_is_left_alone(music, tmp_path):
    ledger = DuckingLedger(folder=tmp_path)
    killed = Ducking(DuckingSettings(amount_db=15), ledger=ledger)
    killed.want(True)
    await killed.settled()
    kept = {entry["index"]: entry for entry in json.loads(ledger.path.read_text())}
    assert kept[music.index]["pid"] == music.pid
    # as if its process had died: its file under another (dead) process id, the worker just stopped
    killed._worker.shutdown(wait=True)
    ledger.path.rename(ledger.path.with_name(ledger.path.name.replace(f"-{os.getpid()}.", f"-{dead_pid()}.")))
    music.set(0.4)
    next_run = Ducking(DuckingSettings(amount_db=15), ledger=DuckingLedger(folder=tmp_path))
    await next_run.settled()
    assert music.volume() == raw([0.4] * len(music.user))
    assert not list(tmp_path.glob("magoo-ducked-*"))  # read once, then gone
    await next_run.close()


def dead_pid() -> int:
    """The process id of a process that has ended."""
    child = subprocess.Popen(["true"])
    child.wait()
    return child.pid
