"""The connection to the broker: keeps the assistant's retained state there, takes commands, reconnects.

Imports aiomqtt, so the actuator imports this module when it starts.

The actuator hands values over with :meth:`Link.set`, which stores the latest value of a topic
and, while connected, queues it for the publisher (every state in order: a brief ``thinking`` is
published too). It never waits: while the broker is down only the latest value of each topic is
kept (all a watcher needs), and the queue is bounded (:data:`QUEUED`). On each connection
:meth:`Link.run` publishes the discovery configs, every latest value, then ``online``;
afterwards each change as it comes and the input level every ``level_interval`` seconds when it
changed.

A broker that cannot be reached, refuses us or drops the connection starts an outage: one warning
when it starts, one line when it ends, retries in between with capped backoff
(:class:`magoo_core.backoff.Backoff`) logged only at debug level.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import ssl
import time
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any

import aiomqtt

from magoo_core.backoff import Backoff
from magoo_core.secrets import Secrets

from .config import MqttConfig
from .topics import OFFLINE, ONLINE, Topics

log = logging.getLogger("magoo.mqtt")

#: seconds before the first reconnection attempt (doubled up to ``reconnect_max``)
FIRST_RETRY = 1.0
#: seconds a connection attempt, and a publish at shutdown, may take
CONNECT_TIMEOUT = 10.0
#: changes queued for publishing at most; past it the oldest is dropped (its topic's latest
#: value is still published, it is the last change)
QUEUED = 256


class Link:
    """One broker connection, kept up for the whole run. Everything runs on the event loop.

    :param config: the actuator's settings (host, port, user, password, TLS, intervals).
    :param topics: the assistant's topics.
    :param client_id: the MQTT client identifier.
    :param discovery: ``{config topic: payload}`` published retained on each connection.
    :param on_command: called with (topic, payload, retained) for each command message; awaited,
        so it must be quick (it starts longer work as a task of its own).
    :param level: the input level now (dBFS, rounded), or None when unknown.
    :param secrets: masks every log line's error text (a broker's message could quote a value).
    """

    def __init__(
        self,
        config: MqttConfig,
        topics: Topics,
        *,
        client_id: str,
        discovery: dict[str, dict[str, Any]],
        on_command: Callable[[str, bytes, bool], Awaitable[None]],
        level: Callable[[], float | None],
        secrets: Secrets,
    ) -> None:
        self.config = config
        self.topics = topics
        self.client_id = client_id
        self.discovery = discovery
        self._on_command = on_command
        self._level = level
        self._secrets = secrets
        self.values: dict[str, str] = {}
        self._queue: deque[tuple[str, str]] = deque(maxlen=QUEUED)
        self._changed = asyncio.Event()
        self._client: aiomqtt.Client | None = None
        self._task: asyncio.Task | None = None
        self._tls = ssl.create_default_context(cafile=config.ca_file) if config.tls else None
        self.counters = {"connections": 0, "outages": 0, "published": 0, "commands": 0}
        #: when the current outage began (monotonic), None while connected or before the first try
        self.down_since: float | None = None

    @property
    def where(self) -> str:
        return f"{self.config.host}:{self.config.broker_port}"

    @property
    def connected(self) -> bool:
        return self._client is not None

    def set(self, topic: str, value: str) -> None:
        """Make ``value`` the retained value of ``topic``: published now if connected, else on
        reconnection. Never blocks, never raises."""
        self.values[topic] = value
        if self._client is not None:
            self._queue.append((topic, value))
            self._changed.set()

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self.run(), name=f"magoo-mqtt {self.where}")

    async def close(self) -> None:
        """Publish ``offline`` (a clean disconnect does not trigger the last will), then disconnect."""
        client = self._client
        if client is not None:
            with contextlib.suppress(aiomqtt.MqttError, TimeoutError):
                async with asyncio.timeout(CONNECT_TIMEOUT / 2):
                    await client.publish(self.topics.availability, OFFLINE, qos=1, retain=True)
        if self._task is not None:
            task, self._task = self._task, None
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def run(self) -> None:
        """Connect, serve, and reconnect after every loss, until cancelled."""
        backoff = Backoff(FIRST_RETRY, max(FIRST_RETRY, self.config.reconnect_max))
        while True:
            problem = None
            try:
                async with self._connect() as client:
                    self._connected(client)
                    backoff.reset()
                    await self._serve(client)
            except* aiomqtt.MqttError as group:
                problem = "; ".join(dict.fromkeys(str(exc) or type(exc).__name__ for exc in group.exceptions))
            except* OSError as group:  # the TLS context or the socket before aiomqtt wraps it
                problem = "; ".join(dict.fromkeys(str(exc) for exc in group.exceptions))
            finally:
                self._client = None
            delay = backoff.next()
            self._lost(problem or "the connection ended", delay)
            await asyncio.sleep(delay)

    def _connect(self) -> aiomqtt.Client:
        cfg = self.config
        return aiomqtt.Client(
            cfg.host,
            cfg.broker_port,
            username=cfg.username,
            password=None if cfg.password is None else cfg.password.get_secret_value(),
            identifier=self.client_id,
            will=aiomqtt.Will(self.topics.availability, OFFLINE, qos=1, retain=True),
            keepalive=cfg.keepalive,
            timeout=CONNECT_TIMEOUT,
            tls_context=self._tls,
            logger=logging.getLogger("magoo.mqtt.client"),
        )

    def _connected(self, client: aiomqtt.Client) -> None:
        self._client = client
        self.counters["connections"] += 1
        if self.down_since is not None:
            log.info("MQTT broker %s reached again after %.0f s", self.where, time.monotonic() - self.down_since)
        else:
            log.info("MQTT: connected to %s; topics under %s/", self.where, self.topics.prefix)
        self.down_since = None

    def _lost(self, problem: str, delay: float) -> None:
        problem = self._secrets.mask(problem)
        if self.down_since is None:
            self.down_since = time.monotonic()
            self.counters["outages"] += 1
            log.warning(
                "MQTT broker %s: %s; retrying every %g s at most, the assistant keeps running (one line until it is back)",
                self.where, problem, self.config.reconnect_max,
            )
        else:
            log.debug("MQTT broker %s: %s; next attempt in %.1f s", self.where, problem, delay)

    async def _serve(self, client: aiomqtt.Client) -> None:
        for topic, payload in self.discovery.items():
            await self._publish(client, topic, json.dumps(payload), retain=True)
        self._queue.clear()  # every latest value instead: the broker may have lost what it kept
        for topic, value in list(self.values.items()):
            await self._publish(client, topic, value, retain=True)
        await self._publish(client, self.topics.availability, ONLINE, retain=True)
        await client.subscribe([(topic, 1) for topic in self.topics.commands()])
        async with asyncio.TaskGroup() as tasks:
            tasks.create_task(self._publishing(client))
            tasks.create_task(self._levels(client))
            tasks.create_task(self._commands(client))

    async def _publish(self, client: aiomqtt.Client, topic: str, payload: str, *, retain: bool, qos: int = 1) -> None:
        await client.publish(topic, payload, qos=qos, retain=retain)
        self.counters["published"] += 1

    async def _publishing(self, client: aiomqtt.Client) -> None:
        while True:
            self._changed.clear()
            while self._queue:  # what is lost with a connection is sent again as the latest values
                topic, value = self._queue.popleft()
                await self._publish(client, topic, value, retain=True)
            await self._changed.wait()

    async def _levels(self, client: aiomqtt.Client) -> None:
        last = None
        while True:
            level = self._level()
            if level is not None and level != last:
                await self._publish(client, self.topics.input_level, f"{level:g}", retain=False, qos=0)
                last = level
            await asyncio.sleep(self.config.level_interval)

    async def _commands(self, client: aiomqtt.Client) -> None:
        async for message in client.messages:
            self.counters["commands"] += 1
            payload = message.payload if isinstance(message.payload, bytes) else str(message.payload or "").encode()
            await self._on_command(str(message.topic), payload, bool(message.retain))
