"""The MQTT actuator's settings, discovery payloads and level, without a broker."""

from __future__ import annotations

import json

import pytest

from magoo_core import ProfileError
from magoo_core.testing import build_plugins, make_profile
from magoo_core.testing.contracts import ActuatorContract
import magoo_mqtt
from magoo_mqtt import MqttActuator
from magoo_mqtt.actuator import decibels
from magoo_mqtt.discovery import STATE_MAX, configs
from magoo_mqtt.topics import Topics, slug


class TestMqttActuatorContract(ActuatorContract):
    backend_class = MqttActuator
    config = {"host": "127.0.0.1", "port": 9}  # enters and leaves: connects only once the run starts


def profile_with(**options):
    plugins = build_plugins(magoo_mqtt)
    return make_profile({"actuators": [{"backend": "mqtt", "host": "broker.local", **options}]}, plugins,
                        environ={"MQTT_PASSWORD": "hunter2-hunter2"})


def test_defaults_and_a_password_from_the_environment_that_the_profile_never_shows():
    profile = profile_with(username="puppet", password={"env": "MQTT_PASSWORD"})
    [spec] = profile.actuators
    config = spec.config
    assert (config.broker_port, config.discovery_prefix, config.level_interval, config.topic_prefix) == (1883, "homeassistant", 1.0, None)
    assert config.password.get_secret_value() == "hunter2-hunter2"
    assert "hunter2" not in repr(profile) + repr(spec) + str(config)
    assert profile_with(tls=True).actuators[0].config.broker_port == 8883


@pytest.mark.parametrize(
    ("options", "problem"),
    [
        ({"password": "x" * 8}, "password is set but username is not"),
        ({"ca_file": "ca.pem"}, "tls = true"),
        ({"topic_prefix": "magoo/#"}, "no '#' or '+'"),
        ({"topic_prefix": "/magoo"}, "no '/' at either end"),
        ({"host": "mqtt://broker.local"}, "no mqtt://"),
        ({"port": 0}, "port"),
        ({"level_interval": 0}, "level_interval"),
        ({"qos": 1}, "qos"),
    ],
)
def test_a_wrong_setting_is_one_line_that_says_what_to_write(options, problem):
    with pytest.raises(ProfileError) as error:
        profile_with(**options)
    assert problem in str(error.value)


def test_topics_are_under_the_profiles_name_unless_a_prefix_is_given():
    assert slug("Kitchen Puppet #2") == "kitchen_puppet_2" and slug("***") == "magoo"
    assert Topics.for_profile("Kitchen Puppet", None).state == "magoo/kitchen_puppet/state"
    assert Topics.for_profile("Kitchen Puppet", "house/kitchen/voice").mute_command == "house/kitchen/voice/mute/set"


def test_discovery_payloads_are_json_on_one_device_with_unique_ids_and_long_texts_cut_for_home_assistant():
    topics = Topics("magoo/kitchen")
    found = configs(topics, name="Kitchen", version="1.2.3", discovery_prefix="ha")
    assert set(found) == {
        "ha/sensor/magoo_kitchen/state/config", "ha/sensor/magoo_kitchen/wake_word/config",
        "ha/sensor/magoo_kitchen/transcript/config", "ha/sensor/magoo_kitchen/reply/config",
        "ha/sensor/magoo_kitchen/input_level/config", "ha/switch/magoo_kitchen/mute/config",
        "ha/button/magoo_kitchen/stop/config", "ha/button/magoo_kitchen/listen/config", "ha/text/magoo_kitchen/say/config",
    }
    payloads = [json.loads(json.dumps(payload)) for payload in found.values()]
    assert len({p["unique_id"] for p in payloads}) == len(payloads)
    assert all(p["device"] == payloads[0]["device"] for p in payloads)
    assert payloads[0]["device"]["sw_version"] == "1.2.3" and payloads[0]["device"]["model"] == "magoo"
    reply = found["ha/sensor/magoo_kitchen/reply/config"]
    assert reply["value_template"] == f"{{{{ value[:{STATE_MAX}] }}}}"
    assert found["ha/text/magoo_kitchen/say/config"]["max"] == STATE_MAX


def test_the_input_level_is_in_whole_dbfs_with_a_floor_for_silence():
    assert decibels(1.0) == 0.0 and decibels(0.1) == -20.0 and decibels(0.0) == -100.0 and decibels(1e-9) == -100.0
