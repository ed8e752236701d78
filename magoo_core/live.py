"""The running engine's events as JSON for watchers: a control API, MQTT, the meter.

Every ``emit(event, **arguments)`` of the engine reaches :meth:`LiveEvents.publish` (the event
dispatcher calls its listeners after the plugins' hooks), which turns it into one JSON-able
dictionary (:func:`event_document`) and hands it to each :class:`Subscription`. A watcher that
reads too slowly loses the oldest events, never the engine's time: a subscription holds at most
:data:`SUBSCRIPTION_SIZE` events and counts what it dropped.

:class:`TurnLog` keeps the last turns with what was heard and answered, for a page to show.

Everything here runs on the event loop. Nothing here ever holds audio, a profile or a secret:
:func:`event_document` keeps only the fields it knows.
"""

from __future__ import annotations

import asyncio
import dataclasses
import enum
import time
from collections import deque
from collections.abc import Callable
from typing import Any

#: events kept per subscription before the oldest are dropped (a watcher that stalls)
SUBSCRIPTION_SIZE = 256
#: turns :class:`TurnLog` keeps
TURNS_KEPT = 20
#: events with nothing a watcher can use (the profile and handles of ``startup``)
_UNSHARED = frozenset({"startup"})


def jsonable(value: Any) -> Any:
    """``value`` as JSON types: dataclasses as dictionaries (fields holding audio, bytes or
    iterators left out), enums as their value, mappings and sequences element by element,
    anything else that is not a number, string, bool or None dropped (None)."""
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return round(value, 4)
    if isinstance(value, enum.Enum):
        return jsonable(value.value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        fields = ((f.name, getattr(value, f.name)) for f in dataclasses.fields(value))
        return {name: jsonable(item) for name, item in fields if _shareable(item)}
    if isinstance(value, dict) or hasattr(value, "items"):
        return {str(key): jsonable(item) for key, item in value.items() if _shareable(item)}
    if isinstance(value, (list, tuple)):
        return [jsonable(item) for item in value if _shareable(item)]
    return None


def _shareable(value: Any) -> bool:
    if value is None or isinstance(value, (bool, int, float, str, enum.Enum, list, tuple, dict)):
        return True
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return True
    return hasattr(value, "items") and not isinstance(value, (bytes, bytearray, memoryview))


def event_document(event: str, arguments: dict[str, Any]) -> dict[str, Any]:
    """One engine event as JSON: ``{"type": "event", "event": "wake", "time": ..., ...arguments}``
    (``time``: wall-clock seconds since the epoch). Each argument goes through :func:`jsonable`."""
    document: dict[str, Any] = {"type": "event", "event": event, "time": round(time.time(), 3)}
    for name, value in arguments.items():
        if _shareable(value):
            document[name] = jsonable(value)
    return document


class Subscription:
    """One watcher's events, oldest first. ``async for document in subscription`` reads them;
    :meth:`close` (or the engine stopping) ends the iteration.

    :param size: events held before the oldest is dropped (:attr:`dropped` counts them).
    """

    def __init__(self, size: int = SUBSCRIPTION_SIZE) -> None:
        self._events: deque[dict[str, Any] | None] = deque()
        self._size = size
        self._ready = asyncio.Event()
        self.dropped = 0
        self.closed = False

    def put(self, document: dict[str, Any]) -> None:
        if self.closed:
            return
        if len(self._events) >= self._size:
            self._events.popleft()
            self.dropped += 1
        self._events.append(document)
        self._ready.set()

    def close(self) -> None:
        """End the iteration once the events still held are read."""
        if not self.closed:
            self.closed = True
            self._events.append(None)
            self._ready.set()

    def __aiter__(self) -> Subscription:
        return self

    async def __anext__(self) -> dict[str, Any]:
        while not self._events:
            self._ready.clear()
            await self._ready.wait()
        document = self._events.popleft()
        if document is None:
            raise StopAsyncIteration
        return document


class TurnLog:
    """The last :data:`TURNS_KEPT` turns: the timeline of each with its wake word, what was heard
    and what was answered, filled in from the events as they come."""

    def __init__(self, kept: int = TURNS_KEPT) -> None:
        self._turns: deque[dict[str, Any]] = deque(maxlen=kept)
        self._open: dict[int, dict[str, Any]] = {}

    def take(self, event: str, arguments: dict[str, Any]) -> None:
        turn = arguments.get("turn")
        if event == "wake" and isinstance(turn, int):
            wake = arguments["wake"]
            self._entry(turn)["wake"] = {"label": wake.label, "score": round(wake.score, 3)}
        elif event == "transcript" and isinstance(turn, int):
            self._entry(turn)["heard"] = arguments["transcript"].text
        elif event == "reply" and isinstance(turn, int):
            self._entry(turn)["answered"] = arguments["reply"].text
        elif event == "turn_end":
            timeline = arguments["timeline"]
            entry = self._open.pop(timeline.turn, {"turn": timeline.turn})
            entry["timeline"] = jsonable(timeline)
            entry["ended"] = round(time.time(), 3)
            self._turns.append(entry)

    def _entry(self, turn: int) -> dict[str, Any]:
        if len(self._open) > TURNS_KEPT:  # turns that never ended (a run stopped mid-turn)
            self._open.pop(min(self._open))
        return self._open.setdefault(turn, {"turn": turn})

    def turns(self) -> list[dict[str, Any]]:
        """The last turns, oldest first (copies)."""
        return [dict(entry) for entry in self._turns]


class LiveEvents:
    """The engine's events for watchers.

    :param listeners: the event dispatcher's listeners; :meth:`publish` joins them.
    """

    def __init__(self, listeners: list[Callable[[str, dict[str, Any]], None]] | None = None) -> None:
        self._subscriptions: set[Subscription] = set()
        self.turns = TurnLog()
        if listeners is not None:
            listeners.append(self.publish)

    def publish(self, event: str, arguments: dict[str, Any]) -> None:
        """Hand one event to the turn log and every subscription. Never raises into the engine."""
        if event in _UNSHARED:
            return
        self.turns.take(event, arguments)
        if self._subscriptions:
            document = event_document(event, arguments)
            for subscription in list(self._subscriptions):
                subscription.put(document)

    def subscribe(self, size: int = SUBSCRIPTION_SIZE) -> Subscription:
        """A new subscription to every event from now on; :meth:`unsubscribe` it when done."""
        subscription = Subscription(size)
        self._subscriptions.add(subscription)
        return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        self._subscriptions.discard(subscription)
        subscription.close()

    def close(self) -> None:
        """The run ended: every subscription's iteration ends."""
        for subscription in list(self._subscriptions):
            self.unsubscribe(subscription)
