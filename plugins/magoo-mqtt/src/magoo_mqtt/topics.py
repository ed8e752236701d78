"""The assistant's MQTT topics, all under one prefix (``magoo/<profile name>`` by default).

State topics are published retained, so a client that subscribes later (Home Assistant after a
restart) gets the last value at once; the input level is not (it is stale a second later).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

#: payloads of the availability topic, and of the mute switch
ONLINE, OFFLINE = "online", "offline"
ON, OFF = "ON", "OFF"
#: the payload Home Assistant's buttons send
PRESS = "PRESS"


def slug(name: str) -> str:
    """``name`` as a topic level and an id: lower case letters, digits and ``_`` ("Kitchen Puppet"
    → ``kitchen_puppet``); ``magoo`` when nothing is left."""
    return re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_") or "magoo"


@dataclass(frozen=True)
class Topics:
    """Every topic of one assistant.

    :param prefix: the topic prefix, no trailing ``/``.
    """

    prefix: str

    @classmethod
    def for_profile(cls, name: str, prefix: str | None) -> Topics:
        return cls(prefix if prefix is not None else f"magoo/{slug(name)}")

    def _at(self, leaf: str) -> str:
        return f"{self.prefix}/{leaf}"

    # ---- published (state) -----------------------------------------------------------------------

    @property
    def availability(self) -> str:
        """``online`` / ``offline`` (retained; the broker publishes ``offline`` as our last will)."""
        return self._at("availability")

    @property
    def state(self) -> str:
        """``listening``, ``awake``, ``thinking`` or ``speaking`` (retained)."""
        return self._at("state")

    @property
    def wake_word(self) -> str:
        """The label of the last wake word heard (retained)."""
        return self._at("wake_word")

    @property
    def transcript(self) -> str:
        """The last final transcript (retained)."""
        return self._at("transcript")

    @property
    def reply(self) -> str:
        """The last reply's text (retained)."""
        return self._at("reply")

    @property
    def input_level(self) -> str:
        """The microphone's RMS level in dBFS, a number like ``-42`` (not retained)."""
        return self._at("input_level")

    @property
    def muted(self) -> str:
        """``ON`` while the user's privacy mute is on, else ``OFF`` (retained)."""
        return self._at("muted")

    # ---- subscribed (commands) -------------------------------------------------------------------

    @property
    def mute_command(self) -> str:
        """``ON`` mutes, ``OFF`` unmutes."""
        return self._at("mute/set")

    @property
    def stop_command(self) -> str:
        """Any payload: stop what is being said."""
        return self._at("stop")

    @property
    def listen_command(self) -> str:
        """Any payload: start a turn as if the wake word was heard."""
        return self._at("listen")

    @property
    def say_command(self) -> str:
        """The payload (UTF-8 text) is said."""
        return self._at("say")

    def commands(self) -> tuple[str, ...]:
        return (self.mute_command, self.stop_command, self.listen_command, self.say_command)
