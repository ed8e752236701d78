"""The MQTT actuator: the assistant's state out to a broker, commands in, Home Assistant discovery.

It follows the run through the :class:`~magoo_core.control.Control` it gets in
``magoo_on_startup``: every event comes as a JSON document from ``control.subscribe()``, and
the commands (mute, stop, listen, say) call the control. The broker connection lives in
:mod:`.link`; an event only stores a value there, so a broker that is down or slow never costs
the engine time. The profile's secrets are masked in every value published (a reply that quotes
one), and the broker's password only ever goes to the MQTT client.
"""

from __future__ import annotations

import asyncio
import logging
import math
import secrets as random_tokens
from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING, Any, ClassVar

from magoo_core import Backend, hookimpl, require
from magoo_core.secrets import Secrets

from .config import MqttConfig
from .discovery import configs
from .topics import OFF, ON, Topics, slug

if TYPE_CHECKING:
    from magoo_core.control import Control
    from magoo_core.live import Subscription

    from .link import Link

log = logging.getLogger("magoo.mqtt")

#: the quietest level published, dBFS (digital silence would be minus infinity)
FLOOR_DB = -100.0


def decibels(rms: float) -> float:
    """An RMS level (0..1 of full scale) in dBFS, rounded to 1 dB, never below :data:`FLOOR_DB`."""
    return float(round(max(FLOOR_DB, 20 * math.log10(rms)) if rms > 0 else FLOOR_DB))


class MqttActuator(Backend):
    """Publishes state, wake word, transcript, reply, input level and mute to MQTT; takes mute,
    stop, listen and say commands; announces itself to Home Assistant (see the plugin's README)."""

    name: ClassVar[str] = "mqtt"
    Config: ClassVar[type[MqttConfig]] = MqttConfig

    def __init__(self, config: MqttConfig) -> None:
        super().__init__(config)
        self.config: MqttConfig = config
        self.link: Link | None = None
        self.topics: Topics | None = None
        self._control: Control | None = None
        self._subscription: Subscription | None = None
        self._tasks: set[asyncio.Task] = set()
        self._secrets = Secrets()

    async def __aenter__(self) -> MqttActuator:
        """Check that aiomqtt is there; the connection starts with the run (``magoo_on_startup``)."""
        require("aiomqtt", backend=self.name, install="uv pip install magoo-mqtt")
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        """Publish ``offline`` and disconnect (a few seconds at most); drop commands still running."""
        if self._control is not None and self._subscription is not None:
            self._control.unsubscribe(self._subscription)
        for task in list(self._tasks):
            task.cancel()
        if self.link is not None:
            await self.link.close()

    def stats(self) -> dict[str, float]:
        """Connections made, outages, messages published, commands taken; ``connected`` 0 or 1."""
        if self.link is None:
            return {}
        return {**self.link.counters, "connected": float(self.link.connected)}

    @property
    def healthy(self) -> bool:
        """False during an outage of the broker: the status says ``failing`` for this actuator."""
        return self.link is None or self.link.down_since is None

    @hookimpl
    def magoo_on_startup(self, profile, control: Control) -> None:
        from .link import Link

        self._control = control
        self._secrets = getattr(profile, "secrets", self._secrets)
        cfg = self.config
        self.topics = topics = Topics.for_profile(profile.name, cfg.topic_prefix)
        discovery = configs(topics, name=profile.name, version=_version(), discovery_prefix=cfg.discovery_prefix) if cfg.discovery else {}
        self.link = Link(
            cfg, topics, client_id=f"magoo-{slug(profile.name)}-{random_tokens.token_hex(3)}", discovery=discovery,
            on_command=self._command, level=self._level, secrets=self._secrets,
        )
        status = control.status()
        self.link.set(topics.state, status["state"])
        self.link.set(topics.muted, ON if control.muted else OFF)
        self._subscription = control.subscribe()
        self._spawn(self._follow(self._subscription), "events")
        self.link.start()

    # ---- events out -------------------------------------------------------------------------------

    async def _follow(self, subscription: Subscription) -> None:
        async for document in subscription:
            self.take(document)

    def take(self, document: dict[str, Any]) -> None:
        """Store what an event document changes (see the module docstring); cheap, never raises."""
        link, topics = self.link, self.topics
        if link is None or topics is None:
            return
        event = document.get("event")
        if event == "state_change":
            link.set(topics.state, str(document.get("new")))
        elif event == "wake":
            link.set(topics.wake_word, self._masked((document.get("wake") or {}).get("label")))
        elif event == "transcript" and (document.get("transcript") or {}).get("final"):
            link.set(topics.transcript, self._masked(document["transcript"].get("text")))
        elif event == "reply" and (document.get("reply") or {}).get("final", True):
            link.set(topics.reply, self._masked(document["reply"].get("text")))
        elif event == "muted":
            link.set(topics.muted, ON if document.get("muted") else OFF)

    def _masked(self, text: Any) -> str:
        return self._secrets.mask(str(text or ""))

    def _level(self) -> float | None:
        return None if self._control is None else decibels(self._control.levels()["input"])

    # ---- commands in ------------------------------------------------------------------------------

    async def _command(self, topic: str, payload: bytes, retained: bool) -> None:
        """One command message. Mute is taken retained or not; stop, listen and say only when sent
        now (a retained ``say`` would speak again at every reconnection)."""
        from magoo_core.control import ControlError

        control, topics = self._control, self.topics
        if control is None or topics is None:
            return
        text = payload.decode("utf-8", "replace").strip()
        try:
            if topic == topics.mute_command:
                if text.upper() not in (ON, OFF):
                    log.warning("MQTT %s: %r is not ON or OFF; ignored", topic, text[:40])
                    return
                control.mute(text.upper() == ON)
                self.link.set(topics.muted, ON if control.muted else OFF)  # confirms it, also when it was already so
            elif retained:
                log.warning("MQTT %s: a retained command is ignored (publish it without retain)", topic)
            elif topic == topics.stop_command:
                await control.stop()
            elif topic == topics.listen_command:
                control.listen()
            elif topic == topics.say_command:
                self._spawn(self._say(text), "say")
        except ControlError as exc:
            log.warning("MQTT %s: %s", topic, exc)

    async def _say(self, text: str) -> None:
        from magoo_core.control import ControlError

        try:
            result = await self._control.say(text)
        except ControlError as exc:
            log.warning("MQTT say: %s", exc)
            return
        log.info("MQTT say: %s", getattr(result, "status", result))

    def _spawn(self, work, what: str) -> None:
        task = asyncio.get_running_loop().create_task(work, name=f"magoo-mqtt {what}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)


def _version() -> str:
    try:
        return version("magoo")
    except PackageNotFoundError:
        return "unknown"
