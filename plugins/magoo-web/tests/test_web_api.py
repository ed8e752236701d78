"""The WebSocket API and the status JSON against a running engine (fake devices, a real server and client)."""

from __future__ import annotations

import asyncio
import json
import socket
from typing import ClassVar

import aiohttp
import pytest

from magoo_core import hookimpl
from magoo_core.engine import Engine
from magoo_core.testing import MemoryPlayer, build_plugins, make_profile
import magoo_web

from web_helpers import connected, running_engine


async def test_a_client_gets_the_snapshot_then_the_events_of_a_turn_and_the_levels_ticking():
    async with running_engine(web={"levels_per_second": 20}) as run, connected(run.ws_url()) as client:
        snapshot = await client.wait_for(lambda: client.messages)
        first = snapshot[0]
        assert first["type"] == "snapshot" and first["name"] == run.engine.profile.name and first["running"] is True
        assert first["state"] in ("listening", "awake", "thinking", "speaking") and first["muted"] is False
        assert first["levels"]["type"] == "levels" and isinstance(first["last_turns"], list)
        assert set(first["backends"]) >= {"audio_source:scripted", "actuators:web"}

        (end,) = await client.wait_for(lambda: client.events("turn_end"))
        names = [m["event"] for m in client.of("event")]
        turn = end["timeline"]["turn"]
        for name in ("wake", "state_change", "transcript", "reply", "speak_start", "speak_end"):
            assert name in names, f"no {name} event: {names}"
        (wake,) = [m for m in client.events("wake") if m["turn"] == turn]
        assert wake["wake"]["label"] and wake["wake"]["score"] >= wake["wake"]["threshold"]
        (reply,) = [m for m in client.events("reply") if m["turn"] == turn]
        assert reply["reply"]["text"] == "You said: what time is it"
        assert end["timeline"]["outcome"] == "ok" and end["timeline"]["ended"] > end["timeline"]["started"]

        # the levels tick while the client is connected, and follow the microphone (a tone, then silence)
        await client.wait_for(lambda: len(client.of("levels")) >= 30)
        levels = client.of("levels")
        assert {"state", "muted", "speaking", "input", "peak", "clipping", "wake"} <= set(levels[0])
        inputs = [m["input"] for m in levels]
        assert max(inputs) > 0.1 and min(inputs) < 0.01, inputs
        assert all(0 <= m["input"] <= m["peak"] + 1e-6 for m in levels)
        ((label, score),) = levels[-1]["wake"].items()
        assert set(score) == {"score", "threshold"}
        # and the new turn is in the next snapshot, with what was heard and answered
        async with connected(run.ws_url()) as second:
            again = (await second.wait_for(lambda: second.of("snapshot")))[0]
        (logged,) = [t for t in again["last_turns"] if t["turn"] == turn]
        assert logged["heard"] == "what time is it" and logged["answered"] == "You said: what time is it"
    assert all(json.loads(text) for text in client.texts)


async def test_levels_go_out_only_while_a_client_is_connected():
    async with running_engine() as run:
        server = run.actuator.server
        async with connected(run.ws_url()) as client:
            await client.wait_for(lambda: len(client.of("levels")) >= 3)
            assert server.counters["clients"] == 1
        await asyncio.sleep(0.3)  # real time: the closed connection's tasks end
        assert server.counters["clients"] == 0 and not server._sessions


class TurnablePlayer(MemoryPlayer):
    """The memory player with a volume knob."""

    name: ClassVar[str] = "knob"
    volumes: ClassVar[list[int]] = []

    def set_volume(self, percent: int) -> None:
        self.volumes.append(percent)


class KnobPlugin:
    @staticmethod
    @hookimpl
    def magoo_register_players(register):
        register(TurnablePlayer)


async def test_each_command_works_and_answers_with_its_id():
    TurnablePlayer.volumes.clear()
    quiet_mic = {"backend": "scripted", "realtime": True, "loop": True, "segments": [{"seconds": 1.0}]}
    overrides = {
        "engine": {"capture_timeout": 1.0},  # the quiet microphone's turn hears nothing: it ends sooner
        "audio_source": quiet_mic,
        "tts": {"backend": "tone", "seconds_per_char": 0.05, "max_seconds": 10.0},
        "player": {"backend": "knob"},
    }
    async with running_engine(overrides, None, KnobPlugin) as run, connected(run.ws_url()) as client:
        await client.wait_for(lambda: client.of("snapshot"))

        assert await client.command("m1", command="mute") == {"type": "result", "id": "m1", "ok": True}
        await client.wait_for(lambda: client.events("muted"))
        assert run.engine.control.muted is True
        refused = await client.command(2, command="listen")
        assert refused["ok"] is False and refused["error"] == "the microphone is muted: unmute it first"
        assert (await client.command(3, command="unmute"))["ok"] is True
        assert [m["muted"] for m in client.events("muted")] == [True, False]

        assert (await client.command(4, command="listen"))["ok"] is True
        (end,) = await client.wait_for(lambda: client.events("turn_end"))
        (wake,) = client.events("wake")
        assert wake["wake"]["label"] == "control" and end["timeline"]["turn"] == wake["turn"]  # (no speech: a quiet mic)

        said = await client.command(5, command="say", text="hello from the page")
        assert said == {"type": "result", "id": 5, "ok": True, "said": "played"}
        assert [m["text"] for m in client.events("speak_start") if m["turn"] is None] == ["hello from the page"]

        # a long announcement, stopped while it plays; the say's own result comes when it ends
        await client.ws.send_str(json.dumps({"command": "say", "text": "a long announcement " * 10, "id": 6}))
        await client.wait_for(lambda: len([m for m in client.events("speak_start") if m["turn"] is None]) == 2)
        assert (await client.command(7, command="stop"))["ok"] is True
        assert (await client.result(6)) == {"type": "result", "id": 6, "ok": True, "said": "interrupted"}

        assert (await client.command(8, command="volume", percent=35))["ok"] is True
        assert TurnablePlayer.volumes == [35]
        assert [m["percent"] for m in client.events("volume")] == [35]


BAD_COMMANDS = [
    ("not json", 'not JSON: send one JSON object per message, like {"command": "stop"}'),
    ("[1, 2]", 'not a JSON object: send one per message, like {"command": "stop"}'),
    ('{"command": "dance", "id": 9}', "unknown command 'dance': send one of listen, stop, mute, unmute, say, volume"),
    ('{"id": 9}', "unknown command missing or not text: send one of listen, stop, mute, unmute, say, volume"),
    ('{"command": "stop", "id": {"a": 1}}', "id must be a number or a string of at most 200 characters"),
    ('{"command": "say", "id": 9}', 'say needs "text": the words to say, as a string'),
    ('{"command": "say", "text": "  ", "id": 9}', "nothing to say: the text is empty"),
    ('{"command": "say", "text": "%s", "id": 9}' % ("a" * 2001), "the text is 2001 characters long: say at most 2000 at once"),
    ('{"command": "volume", "percent": "40", "id": 9}', 'volume needs "percent": a whole number from 0 to 100'),
    ('{"command": "volume", "percent": true, "id": 9}', 'volume needs "percent": a whole number from 0 to 100'),
    ('{"command": "volume", "percent": 140, "id": 9}', "volume 140 is out of range: give 0 to 100 (%)"),
    ('{"command": "volume", "percent": 40, "id": 9}', "the player 'memory' cannot set its volume"),
]


async def test_a_bad_command_gets_a_one_line_error_and_the_connection_stays():
    quiet = {"backend": "scripted", "realtime": True, "loop": True, "segments": [{"seconds": 1.0}]}
    async with running_engine({"audio_source": quiet}) as run, connected(run.ws_url()) as client:
        await client.wait_for(lambda: client.of("snapshot"))
        for number, (message, error) in enumerate(BAD_COMMANDS, 1):
            await client.ws.send_str(message)
            answers = await client.wait_for(lambda: len(client.of("result")) == number and client.of("result"))
            expected_id = 9 if '"id": 9' in message else None
            assert answers[-1] == {"type": "result", "id": expected_id, "ok": False, "error": error}, message
        await client.ws.send_bytes(b"\x00\x01")
        await client.wait_for(lambda: len(client.of("result")) == len(BAD_COMMANDS) + 1)
        assert client.of("result")[-1]["error"] == "binary message: send commands as JSON text"
        assert all("\n" not in answer["error"] for answer in client.of("result"))
        assert (await client.command("after", command="unmute"))["ok"] is True  # still connected, still served


async def test_the_status_json_is_the_status_document_with_muted():
    async with running_engine() as run, aiohttp.ClientSession() as session:
        run.engine.control.mute()
        async with session.get(run.url + "api/status") as response:
            assert response.status == 200 and response.content_type == "application/json"
            status = await response.json()
    assert status["name"] == run.engine.profile.name and status["running"] is True and status["muted"] is True
    assert status["backends"]["actuators:web"]["health"] == "ok"
    assert status["backends"]["actuators:web"]["stats"]["refused"] == 0
    assert {"state", "uptime", "turns", "errors", "counters", "input_level", "wakes"} <= set(status)


async def test_when_magoo_stops_a_client_gets_the_shutdown_event_then_a_going_away_close():
    async with running_engine() as run, connected(run.ws_url()) as client:
        await client.wait_for(lambda: client.of("snapshot"))
        result = await run.stop()
        await client.wait_for(lambda: client._reader.done() or None)
    assert result.fatal is None
    assert client.events("shutdown") and client.ws.close_code == 1001


async def test_a_port_in_use_is_reported_in_one_line_and_the_assistant_runs_on_without_the_page():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        manager = build_plugins(magoo_web)
        profile = make_profile({"actuators": [{"backend": "web", "port": port}]}, manager)
        result = await asyncio.wait_for(Engine(profile, manager, max_turns=1).run(), 60)
    assert result.fatal is None and [t.outcome.value for t in result.timelines] == ["ok"]
    (failure,) = result.failures
    assert failure.role == "actuators" and "\n" not in failure.message
    assert failure.message == (f"[[actuators]] #1 web: cannot listen on 127.0.0.1:{port} (Address already in use): "
                               "give host one of this machine's addresses and a free port")
