"""``magoo meter``: the board and its drawing, the WebSocket feed, and the real thing in tmux."""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from magoo_core.meter.board import Board
from magoo_core.meter.feeds import RemoteFeed
from magoo_core.meter.render import frame, level_bar, score_bar
from magoo_core.meter.screen import show

from conftest import MAGOO, clean_env

EXAMPLES = Path(__file__).parent.parent / "examples"


def levels(**changes):
    return {"type": "levels", "state": "listening", "muted": False, "speaking": False, "input": 0.01, "peak": 0.05,
            "clipping": False, "wake": {"hey_jarvis": {"score": 0.1, "threshold": 0.5}}, **changes}


# ---- the board and its drawing ---------------------------------------------------------------------


def test_bars_mark_the_threshold_and_the_peak():
    assert score_bar(0.2, 0.5, 10) == "##..|....."
    assert score_bar(0.8, 0.5, 10) == "####+###.."
    assert level_bar(1.0, 1.0, 10) == "#########|" and level_bar(0.0, 0.0, 10) == ".........."
    assert level_bar(0.01, 0.1, 12) == "####...|...."  # -40 dBFS and a peak at -20 on a 60 dB bar


def test_a_clip_stays_marked_for_a_moment_and_scores_keep_their_recent_peak():
    board = Board()
    board.take_levels(levels(peak=1.0, clipping=True, wake={"hey_jarvis": {"score": 0.93, "threshold": 0.5}}), now=10.0)
    board.take_levels(levels(), now=11.0)
    text = "\n".join(frame(board, 11.0, colour=False))
    assert "CLIP" in text and re.search(r"hey_jarvis +\S+ 0\.10/0\.50  peak 0\.93", text), text
    board.take_levels(levels(), now=14.5)
    text = "\n".join(frame(board, 14.5, colour=False))
    assert "CLIP" not in text and "peak 0.10" in text


def test_a_turn_is_shown_with_what_was_heard_and_answered_and_its_timeline():
    board = Board()
    for document in [
        {"event": "wake", "turn": 3, "wake": {"label": "hey_jarvis", "score": 0.91}},
        {"event": "speech_start", "turn": 3},
        {"event": "transcript", "turn": 3, "transcript": {"text": "what time", "final": False}},
        {"event": "speech_end", "turn": 3},
        {"event": "transcript", "turn": 3, "transcript": {"text": "what time is it", "final": True}},
        {"event": "reply", "turn": 3, "reply": {"text": "It is noon.", "final": True}},
        {"event": "turn_end", "timeline": {"turn": 3, "started": 100.0, "wake": 100.0, "speech_end": 101.2,
                                           "transcript": 101.3, "reply": 101.5, "first_audio": 101.7, "ended": 103.0,
                                           "outcome": "ok", "error": None}},
    ]:
        board.take_event({"type": "event", **document}, now=1.0)
    text = "\n".join(frame(board, 1.0, colour=False, width=100))
    assert "turn 3: ok  woken by hey_jarvis 0.91" in text
    assert 'heard    "what time is it"' in text and 'answered "It is noon."' in text
    assert "wake 0.00 → speech end 1.20 → transcript 1.30 → reply 1.50 → sound 1.70 → end 3.00 s" in text
    assert "· silent" in text
    assert all(len(line) <= 100 for line in frame(board, 1.0, colour=False, width=100))


# ---- the control API's WebSocket -------------------------------------------------------------------


class KeyboardTerminal:
    """A terminal whose keys the test presses; frames kept."""

    screen = False
    width = 90

    def __init__(self):
        self.frames: list[list[str]] = []
        self.press = None

    def on_key(self, handle):
        self.press = handle
        return True

    def draw(self, lines):
        self.frames.append(lines)


async def test_over_the_websocket_the_meter_shows_the_snapshot_levels_and_events_and_sends_mute_and_stop(unused_tcp_port):
    from aiohttp import web

    commands: list[dict] = []
    headers: list[str | None] = []

    async def socket(request):
        headers.append(request.headers.get("Authorization"))
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        await ws.send_json({"type": "snapshot", "name": "kitchen", "state": "listening", "levels": levels(), "last_turns": []})
        await ws.send_json(levels(wake={"hey_jarvis": {"score": 0.77, "threshold": 0.5}}))
        await ws.send_json({"type": "event", "event": "wake", "turn": 1, "wake": {"label": "hey_jarvis", "score": 0.77}})
        async for message in ws:
            command = json.loads(message.data)
            commands.append(command)
            await ws.send_json({"type": "result", "id": command["id"], "ok": command["command"] != "stop",
                                "error": "nothing is being said" if command["command"] == "stop" else None})
            if command["command"] == "mute":
                await ws.send_json({"type": "event", "event": "muted", "muted": True})
        return ws

    app = web.Application()
    app.router.add_get("/api/ws", socket)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", unused_tcp_port).start()
    try:
        terminal = KeyboardTerminal()
        feed = RemoteFeed(f"ws://127.0.0.1:{unused_tcp_port}/api/ws", token="t0ken-for-the-api")
        meter = asyncio.ensure_future(show(feed, terminal, rate=30))

        async def until(test):
            for _ in range(200):  # real time: the frames come 30 times a second
                if test("\n".join(terminal.frames[-1]) if terminal.frames else ""):
                    return
                await asyncio.sleep(0.02)
            raise AssertionError("\n".join(terminal.frames[-1]))

        await until(lambda text: "woken by hey_jarvis 0.77" in text and "0.77/0.50" in text and "kitchen" in text)
        terminal.press("m")
        await until(lambda text: "MUTED" in text)
        terminal.press("s")
        await until(lambda text: "refused: nothing is being said" in text)
        terminal.press("q")
        await asyncio.wait_for(meter, 5)
    finally:
        await runner.cleanup()
    assert [c["command"] for c in commands] == ["mute", "stop"]
    assert headers == ["Bearer t0ken-for-the-api"]


async def test_a_wrong_token_is_one_line(unused_tcp_port):
    from aiohttp import web

    async def socket(request):
        raise web.HTTPUnauthorized()

    app = web.Application()
    app.router.add_get("/api/ws", socket)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", unused_tcp_port).start()
    try:
        with pytest.raises(ConnectionError, match=r"refused the connection \(HTTP 401\): give the right --token"):
            await RemoteFeed(f"ws://127.0.0.1:{unused_tcp_port}/api/ws", token="wrong").open(Board())
    finally:
        await runner.cleanup()


# ---- the real thing: tmux, the virtual microphone, openWakeWord --------------------------------------


class Tmux:
    """A tmux server of the test's own (its socket in a short temporary folder)."""

    def __init__(self) -> None:
        if shutil.which("tmux") is None:
            pytest.fail("tmux is not installed (Debian package tmux)")
        self.folder = tempfile.mkdtemp(prefix="magoo-tmux-", dir="/tmp")
        self.socket = f"{self.folder}/s"

    def __call__(self, *args: str, env=None) -> str:
        return subprocess.run(["tmux", "-S", self.socket, *args], env=env, capture_output=True, text=True, check=True).stdout

    def screen(self) -> str:
        return self("capture-pane", "-p", "-t", "meter")

    def wait_for(self, pattern: str, timeout: float = 60.0) -> str:
        deadline = time.monotonic() + timeout  # real time: the profile starts, the audio plays
        while time.monotonic() < deadline:
            screen = self.screen()
            if re.search(pattern, screen):
                return screen
            time.sleep(0.1)
        raise AssertionError(f"no {pattern!r} on the screen within {timeout} s:\n{self.screen()}")

    def close(self) -> None:
        subprocess.run(["tmux", "-S", self.socket, "kill-server"], capture_output=True)
        shutil.rmtree(self.folder, ignore_errors=True)


def test_in_tmux_the_scores_move_while_the_wake_word_plays_m_mutes_and_q_quits(virtual_audio, tmp_path):
    tmux = Tmux()
    try:
        shutil.copy(EXAMPLES / "desk.toml", tmp_path / "desk.toml")
        command = f"{MAGOO} meter -p desk.toml; echo meter exited with $?; sleep 60"
        tmux("new-session", "-d", "-s", "meter", "-x", "110", "-y", "32", "-c", str(tmp_path), command, env=clean_env(TERM="xterm"))
        tmux.wait_for(r"hey_jarvis +\S+ 0\.\d\d/0\.50", timeout=60)  # openWakeWord is scoring the microphone
        player = virtual_audio.play(EXAMPLES / "audio" / "hey_jarvis_what_time_is_it.wav", wait=False)
        scores: list[float] = []
        deadline = time.monotonic() + 30  # real time: the recording plays into the virtual microphone
        while time.monotonic() < deadline and not (scores and max(scores) >= 0.5 and player.poll() is not None):
            found = re.search(r"hey_jarvis +\S+ (\d\.\d\d)/0\.50", tmux.screen())
            if found:
                scores.append(float(found.group(1)))
            time.sleep(0.05)
        assert scores and min(scores) < 0.1 and max(scores) >= 0.5, (scores, tmux.screen())
        screen = tmux.wait_for(r"turn 1: ok", timeout=30)
        assert re.search(r"woken by hey_jarvis [01]\.\d\d", screen) and 'heard    "what time is it"' in screen, screen
        assert re.search(r"wake 0\.00 → .*→ end \d+\.\d\d s", screen), screen

        tmux("send-keys", "-t", "meter", "m")
        assert "MUTED" in tmux.wait_for(r"mic MUTED", timeout=5)
        tmux("send-keys", "-t", "meter", "q")
        tmux.wait_for(r"meter exited with 0", timeout=20)
    finally:
        tmux.close()


# ---- the command line ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("arguments", "code", "said"),
    [
        ([], 2, "give one of: a profile to run (-p FILE), or a running magoo's API (--url ws://host:port/api/ws)"),
        (["-p", "x.toml", "--url", "ws://127.0.0.1:1/api/ws"], 2, "give one of:"),
        (["--url", "ws://127.0.0.1:1/api/ws"], 1, "magoo meter: cannot reach magoo at ws://127.0.0.1:1/api/ws: "),
    ],
)
def test_the_command_line_says_in_one_line_what_is_wrong(arguments, code, said):
    from typer.testing import CliRunner

    from magoo_core.cli import build_app

    result = CliRunner().invoke(build_app(), ["meter", *arguments], prog_name="magoo")
    said_all = result.output  # the runner's stderr and stdout together
    assert result.exit_code == code and said in said_all and len(said_all.strip().splitlines()) == 1, said_all
