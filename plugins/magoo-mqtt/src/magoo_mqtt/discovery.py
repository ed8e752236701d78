"""Home Assistant MQTT discovery: one retained config message per entity, all on one device.

Home Assistant's MQTT integration reads ``<discovery_prefix>/<component>/<node>/<object>/config``
and makes the entity; an empty retained message there removes it. See
https://www.home-assistant.io/integrations/mqtt/#mqtt-discovery.

Nothing here reads the profile's values but its name: no broker address, user or password can
reach a payload.
"""

from __future__ import annotations

from typing import Any

from .topics import OFF, ON, PRESS, Topics, slug

#: Home Assistant keeps a sensor's state to this many characters (a longer one is refused)
STATE_MAX = 255
_CUT = "{{ value[:%d] }}" % STATE_MAX


def device(name: str, version: str) -> dict[str, Any]:
    """The one device every entity belongs to."""
    return {
        "identifiers": [f"magoo_{slug(name)}"],
        "name": name,
        "manufacturer": "magoo",
        "model": "magoo",
        "sw_version": version,
    }


def entities(topics: Topics) -> dict[tuple[str, str], dict[str, Any]]:
    """``{(component, object_id): config without the shared keys}`` for every entity."""
    return {
        ("sensor", "state"): {
            "name": "State", "icon": "mdi:account-voice", "state_topic": topics.state,
            "device_class": "enum", "options": ["listening", "awake", "thinking", "speaking"],
        },
        ("sensor", "wake_word"): {"name": "Wake word", "icon": "mdi:bullhorn", "state_topic": topics.wake_word, "value_template": _CUT},
        ("sensor", "transcript"): {"name": "Heard", "icon": "mdi:ear-hearing", "state_topic": topics.transcript, "value_template": _CUT},
        ("sensor", "reply"): {"name": "Reply", "icon": "mdi:message-reply-text", "state_topic": topics.reply, "value_template": _CUT},
        ("sensor", "input_level"): {
            "name": "Input level", "icon": "mdi:microphone", "state_topic": topics.input_level,
            "unit_of_measurement": "dBFS", "state_class": "measurement", "entity_category": "diagnostic",
        },
        ("switch", "mute"): {
            "name": "Mute", "icon": "mdi:microphone-off", "state_topic": topics.muted, "command_topic": topics.mute_command,
            "payload_on": ON, "payload_off": OFF, "state_on": ON, "state_off": OFF,
        },
        ("button", "stop"): {"name": "Stop", "icon": "mdi:stop", "command_topic": topics.stop_command, "payload_press": PRESS},
        ("button", "listen"): {"name": "Listen", "icon": "mdi:microphone-message", "command_topic": topics.listen_command, "payload_press": PRESS},
        ("text", "say"): {"name": "Say", "icon": "mdi:account-voice", "command_topic": topics.say_command, "min": 0, "max": STATE_MAX, "mode": "text"},
    }


def configs(topics: Topics, *, name: str, version: str, discovery_prefix: str) -> dict[str, dict[str, Any]]:
    """``{config topic: payload}`` for every entity (publish each retained, as JSON)."""
    node = f"magoo_{slug(name)}"
    shared = {
        "availability_topic": topics.availability,
        "payload_available": "online",
        "payload_not_available": "offline",
        "device": device(name, version),
        "origin": {"name": "magoo", "sw_version": version},
    }
    found = {}
    for (component, object_id), entity in entities(topics).items():
        payload = {**entity, "unique_id": f"{node}_{object_id}", **shared}
        found[f"{discovery_prefix}/{component}/{node}/{object_id}/config"] = payload
    return found
