"""The MQTT actuator against a real mosquitto: discovery, a turn's state, commands, outages."""

from __future__ import annotations

import asyncio
import logging

from mqtt_helpers import Broker, Watcher, mqtt, running

PREFIX = "magoo/test_puppet"
#: the test profile's source with no wake tone: nothing starts a turn unless a command does
QUIET_SOURCE = {"backend": "scripted", "realtime": True, "loop": True, "segments": [{"seconds": 1.0}]}


async def test_discovery_names_one_device_whose_topics_exist_and_a_turn_publishes_state_wake_transcript_and_reply(tmp_path):
    with Broker(tmp_path) as broker:
        async with Watcher(broker.port) as watcher, running({"actuators": [mqtt(broker.port)]}) as run:
            await watcher.value(f"{PREFIX}/reply", "You said: what time is it")
            await watcher.value(f"{PREFIX}/availability", "online")
            await watcher.wait_for(lambda: watcher.values(f"{PREFIX}/input_level"), "an input level")

    configs = watcher.discovery()
    assert {topic.split("/")[1] for topic in configs} == {"sensor", "switch", "button", "text"}
    assert len(configs) == 9
    unique_ids = [config["unique_id"] for config in configs.values()]
    assert len(set(unique_ids)) == len(unique_ids)
    published = {m.topic for m in watcher.seen}
    for topic, config in configs.items():
        assert config["device"]["identifiers"] == ["magoo_test_puppet"] and config["device"]["model"] == "magoo"
        assert config["device"]["name"] == "Test Puppet" and config["device"]["sw_version"]
        assert config["availability_topic"] == f"{PREFIX}/availability"
        assert topic == f"homeassistant/{topic.split('/')[1]}/magoo_test_puppet/{topic.split('/')[3]}/config"
        if "state_topic" in config:
            assert config["state_topic"] in published, f"{topic} names a state topic nothing is published on"
        if "command_topic" in config:
            assert config["command_topic"].startswith(f"{PREFIX}/")
    by_id = {config["unique_id"]: config for config in configs.values()}
    assert by_id["magoo_test_puppet_mute"]["command_topic"] == f"{PREFIX}/mute/set"
    assert by_id["magoo_test_puppet_input_level"]["unit_of_measurement"] == "dBFS"

    states = watcher.values(f"{PREFIX}/state")
    assert states[0] == "listening" and {"awake", "thinking", "speaking"} <= set(states)
    assert watcher.last(f"{PREFIX}/transcript") == "what time is it"
    assert watcher.last(f"{PREFIX}/wake_word") == run.of("wake")[0]["wake"].label
    assert all(-100 <= float(level) <= 0 for level in watcher.values(f"{PREFIX}/input_level"))
    assert watcher.last(f"{PREFIX}/availability") == "offline", "a clean stop says offline"


async def test_the_mute_switch_say_listen_and_stop_commands_reach_the_control(tmp_path):
    with Broker(tmp_path) as broker:
        async with Watcher(broker.port) as watcher, running(
            {"audio_source": QUIET_SOURCE, "actuators": [mqtt(broker.port)],
             "tts": {"backend": "tone", "seconds_per_char": 0.05, "max_seconds": 10.0}}
        ) as run:
            await watcher.value(f"{PREFIX}/availability", "online")
            control = run.engine.control
            await watcher.publish(f"{PREFIX}/mute/set", "ON")
            await watcher.value(f"{PREFIX}/muted", "ON")
            assert control.muted is True
            await watcher.publish(f"{PREFIX}/listen", "PRESS")  # refused while muted: logged, nothing starts
            await watcher.publish(f"{PREFIX}/mute/set", "OFF")
            await watcher.value(f"{PREFIX}/muted", "OFF")
            assert control.muted is False and run.of("wake") == []

            await watcher.publish(f"{PREFIX}/say", "The tea is ready")
            await watcher.wait_for(lambda: run.of("speak_end"), "the announcement spoken")
            [start] = run.of("speak_start")
            assert start["text"] == "The tea is ready" and start["turn"] is None

            await watcher.publish(f"{PREFIX}/say", "a long announcement " * 10)
            await watcher.wait_for(lambda: len(run.of("speak_start")) == 2, "the long announcement starting")
            await watcher.publish(f"{PREFIX}/stop", "PRESS")
            await watcher.wait_for(lambda: len(run.of("speak_end")) == 2, "the long announcement stopped")
            assert run.of("speak_end")[1]["interrupted"] is True

            await watcher.publish(f"{PREFIX}/listen", "PRESS")
            await watcher.wait_for(lambda: run.of("wake"), "a turn started by the listen button")
            assert run.of("wake")[0]["wake"].label == "control"
            await watcher.wait_for(lambda: "awake" in watcher.values(f"{PREFIX}/state"), "the awake state")
            assert run.actuator.stats()["commands"] == 7


async def test_a_broker_that_is_down_costs_no_turn_one_line_per_outage_and_it_catches_up_when_back(tmp_path, caplog):
    caplog.set_level(logging.DEBUG, logger="magoo.mqtt")
    broker = Broker(tmp_path)
    async with running({"actuators": [mqtt(broker.port, reconnect_max=1.0)]}) as run:
        await asyncio.sleep(0)
        while not run.of("turn_end"):  # real time: a whole turn while the broker is down
            await asyncio.sleep(0.1)
        assert run.actuator.healthy is False
        with broker:
            async with Watcher(broker.port) as watcher:
                await watcher.value(f"{PREFIX}/availability", "online", timeout=20)
                await watcher.wait_for(lambda: watcher.last(f"{PREFIX}/transcript") == "what time is it", "the last transcript")
                assert run.actuator.healthy is True
        with broker:  # stopped and started again: a second outage, a second reconnection
            async with Watcher(broker.port) as watcher:
                await watcher.value(f"{PREFIX}/availability", "online", timeout=20)
                stats = run.actuator.stats()
                outages = [r.getMessage() for r in caplog.records if r.name == "magoo.mqtt" and r.levelno >= logging.WARNING]
    assert len(outages) == 2, outages
    assert "Connection refused" in outages[0] and stats["outages"] == 2 and stats["connections"] == 2
    retries = [r for r in caplog.records if r.name == "magoo.mqtt" and "next attempt" in r.getMessage()]
    assert retries and all(r.levelno == logging.DEBUG for r in retries), "each retry is logged at debug level only"
    assert len([r for r in caplog.records if "reached again" in r.getMessage()]) == 2
    assert str(run.of("turn_end")[0]["timeline"].outcome) == "ok", "the turn made while the broker was down"
