"""Stopping: bounded, at once on a second signal, and the last status says stopped (SIGHUP reloads
``magoo run``'s profile instead: tests/test_reload.py).

The bounds here are "did it happen" bounds, not timings: a run that stops before its 60 s reply
would have ended, a run that returns long before ``shutdown_timeout`` ran out.
"""

from __future__ import annotations

import asyncio
import json
import queue
import signal
import subprocess
import threading
from pathlib import Path
from typing import ClassVar

import pytest

from magoo_core import Backend, BackendConfig, Outcome, hookimpl
from magoo_core.cli import app as cli_app
from magoo_core.default_plugins.fakes import EventLogActuator
from magoo_core.engine import Engine
from magoo_core.testing import build_plugins, make_profile

from long_reply import LONG_REPLY, long_reply_profile
from probe import Probe, run_engine

class Run:
    """``magoo run`` of the long reply, its story (stdout) and log (stderr) read as they come."""

    def __init__(self, magoo_process, folder: Path) -> None:
        profile = folder / "long.toml"
        profile.write_text(long_reply_profile(folder))
        self.folder = folder
        self.proc = magoo_process("run", "--profile", profile, stdout=subprocess.PIPE)
        self.story: queue.Queue[str] = queue.Queue()
        self.log: list[str] = []
        threading.Thread(target=lambda: [self.story.put(line) for line in self.proc.stdout], daemon=True).start()
        threading.Thread(target=lambda: [self.log.append(line) for line in self.proc.stderr], daemon=True).start()

    def wait_for_sound(self) -> None:
        while "sound started" not in self.story.get(timeout=60):  # queue.Empty: it never spoke
            pass

    def status(self) -> dict:
        return json.loads((self.folder / "status.json").read_text())

    def events(self) -> list[str]:
        return [json.loads(line)["event"] for line in (self.folder / "events.jsonl").read_text().splitlines()]


@pytest.mark.parametrize("signals", [[signal.SIGINT], [signal.SIGINT, signal.SIGINT], [signal.SIGTERM]],
                         ids=["SIGINT", "SIGINT-twice", "SIGTERM"])
def test_a_signal_during_a_long_reply_stops_magoo_before_the_reply_ends_and_it_says_so(magoo_process, tmp_path, signals):
    run = Run(magoo_process, tmp_path)
    run.wait_for_sound()
    for sig in signals:
        run.proc.send_signal(sig)
    code = run.proc.wait(timeout=LONG_REPLY / 2)  # TimeoutExpired: it waited for the reply (or hung)
    log = "".join(run.log)
    # the second SIGINT may come after the graceful stop ended: it then cuts the exit short (130,
    # or killed by it once Python has given SIGINT its default action back while it finalizes)
    assert code == 0 or (len(signals) == 2 and code in (130, -signal.SIGINT)), log
    assert "Traceback" not in log and "Event loop is closed" not in log and "Exception ignored" not in log
    status = run.status()
    assert status["running"] is False and status["state"] == "listening"
    if len(signals) == 1:  # a graceful stop: the turn is closed and the actuators are told
        assert "turn_end" in run.events() and run.events()[-1] == "shutdown"
        assert "stopped after 1 turn" in log


def test_ctrl_c_before_magoo_run_took_over_sigint_exits_130_without_a_traceback(monkeypatch):
    def interrupted():
        def app(**_):
            raise KeyboardInterrupt

        return app

    monkeypatch.setattr(cli_app, "build_app", interrupted)
    with pytest.raises(SystemExit) as exit_:
        cli_app.main()
    assert exit_.value.code == 130


# ---- in the engine --------------------------------------------------------------------------------


async def test_a_stop_during_a_long_reply_cuts_it_off_instead_of_waiting_for_shutdown_timeout():
    engine, probe, result = await run_engine(
        {
            "engine": {"shutdown_timeout": LONG_REPLY * 2},
            "tts": {"backend": "tone", "seconds_per_char": 3.0, "max_seconds": LONG_REPLY, "realtime": True},
        },
        stop_on="speak_start",
        timeout=LONG_REPLY * 3,
    )
    (timeline,) = result.timelines
    assert timeline.outcome is Outcome.CANCELLED
    played = sum(chunk.duration for chunk in engine.player.last_instance.plays[0])
    assert played < LONG_REPLY / 4, "the player was stopped, not left to play the reply out"
    assert engine.state.value == "listening" and engine.muted is False


class StuckPlayer(Backend):
    """A player whose driver hangs when it is closed (a wedged sound server)."""

    name: ClassVar[str] = "stuck"

    class Config(BackendConfig):
        pass

    async def play(self, audio, progress):
        async for _ in audio:
            progress.started()

    async def stop(self):
        pass

    async def __aexit__(self, *exc_info):
        await asyncio.Event().wait()


class Stuck:
    @staticmethod
    @hookimpl
    def magoo_register_players(register):
        register(StuckPlayer)


async def test_a_second_request_stops_at_once_when_the_graceful_stop_hangs(tmp_path):
    manager = build_plugins(Stuck)
    profile = make_profile(
        {
            "engine": {"shutdown_timeout": 120.0},
            "audio_source": {"backend": "scripted", "realtime": True, "segments": [{"seconds": 300}]},
            "player": {"backend": "stuck"},
            "actuators": [{"backend": "log", "path": str(tmp_path / "events.jsonl")}],
        },
        manager,
    )
    engine = Engine(profile, manager)
    probe = Probe(engine)
    manager.pm.register(probe, name="probe")
    running = asyncio.create_task(engine.run())
    while not probe.of("startup"):
        await asyncio.sleep(0.01)
    engine.request_stop()
    while engine.player.instance is not None:  # the graceful stop now hangs in the player's __aexit__
        await asyncio.sleep(0.01)
    assert not running.done()
    engine.stopping.hurry()
    result = await asyncio.wait_for(running, 30)  # far below shutdown_timeout: it did not wait for it

    assert result.hurried is True and result.exit_code == 0
    log_actuator = engine.actuators[0].last_instance
    assert isinstance(log_actuator, EventLogActuator) and log_actuator._file is None, "the actuator was left"
    assert engine.state.value == "listening" and engine.muted is False
