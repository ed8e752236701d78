"""What a watcher may see of a running engine and ask it to do: the control API, MQTT, the meter.

Plugins get the run's :class:`Control` in ``magoo_on_startup(control)``; ``magoo meter`` gets the
one of the engine it runs. Commands: :meth:`Control.listen` (a turn as if the wake word was
heard), :meth:`~Control.stop` (stop what is said), :meth:`~Control.mute` (the user's privacy
mute: no audio reaches wake scoring or speech-to-text until unmuted), :meth:`~Control.say`,
:meth:`~Control.set_volume`. Views: :meth:`~Control.snapshot` (everything, for a page or a
client that just connected), :meth:`~Control.levels` (cheap, for a meter ten times a second),
:meth:`~Control.subscribe` (every event as JSON, see :mod:`magoo_core.live`).

Everything runs on the engine's event loop: call the methods there (a plugin's own thread uses
``asyncio.run_coroutine_threadsafe``). Nothing returned holds a secret: the documents are built
from the engine's status and events, never from the profile's values.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .live import LiveEvents, Subscription
from .status import InputLevel, status_document
from .types import EngineStatus, State

if TYPE_CHECKING:
    from .speech import Speech, SpeechResult
    from .wake_scores import WakeScoreboard

log = logging.getLogger("magoo.control")

#: seconds of audio the meter's level is measured over
METER_WINDOW = 0.1
#: a peak at or above this fraction of full scale is clipping
CLIPPING = 0.99


class ControlError(Exception):
    """A command that cannot be carried out; the message says why in one line."""


class Control:
    """The run's commands and views (see the module docstring). Built by the engine.

    :param name: the profile's name.
    :param status: the engine's status now (cheap).
    :param speech: the run's speech outside a turn (``say``, ``stop``).
    :param input_level: the microphone's level.
    :param scores: the wake scores (None without a wake detector).
    :param live: the run's events for watchers.
    :param listen: starts a turn as if the wake word was heard now; False when it cannot (a turn
        is in progress, continuous mode).
    :param player: the player backend's instance now, or None.
    :param speaking: True while something is being said or played.
    :param state: the engine's state now, cheaper than ``status().state`` (:meth:`levels` is
        called ten times a second); by default read from ``status``.
    """

    def __init__(
        self,
        name: str,
        status: Callable[[], EngineStatus],
        speech: Speech,
        input_level: InputLevel,
        scores: WakeScoreboard | None,
        live: LiveEvents,
        *,
        listen: Callable[[], bool],
        player: Callable[[], Any],
        speaking: Callable[[], bool],
        state: Callable[[], State] | None = None,
    ) -> None:
        self.name = name
        self.live = live
        self._status = status
        self._speech = speech
        self._input_level = input_level
        self._scores = scores
        self._listen = listen
        self._player = player
        self._speaking = speaking
        self._state = state if state is not None else lambda: status().state
        self._muted = False

    # ---- views ------------------------------------------------------------------------------------

    @property
    def muted(self) -> bool:
        """The user muted the microphone (:meth:`mute`): the engine drops its audio."""
        return self._muted

    def levels(self) -> dict[str, Any]:
        """``{"type": "levels", "state", "muted", "speaking", "input", "peak", "clipping", "wake"}``:
        the input's RMS and peak over the last :data:`METER_WINDOW` s (0..1 of full scale), and
        each wake model's last score with its threshold (``{"hey_jarvis": {"score": 0.02,
        "threshold": 0.5}}``). Cheap enough for ten calls a second."""
        rms, peak = self._input_level.recent(METER_WINDOW)
        wake = {} if self._scores is None else self._scores.latest()
        return {
            "type": "levels",
            "state": self._state().value,
            "muted": self._muted,
            "speaking": self._speaking(),
            "input": round(rms, 4),
            "peak": round(peak, 4),
            "clipping": peak >= CLIPPING,
            "wake": {
                label: {"score": round(score, 4), "threshold": threshold} for label, (score, threshold) in wake.items()
            },
        }

    def status(self) -> dict[str, Any]:
        """The ``status.json`` document (see docs/operations.md) plus ``muted``."""
        return {**status_document(self._status(), name=self.name, running=True), "muted": self._muted}

    def snapshot(self) -> dict[str, Any]:
        """Everything a watcher shows: :meth:`status`, :meth:`levels` and the last turns (each with
        its wake word, what was heard, what was answered and its timeline), as
        ``{"type": "snapshot", ...}``."""
        return {"type": "snapshot", **self.status(), "levels": self.levels(), "last_turns": self.live.turns.turns()}

    def subscribe(self) -> Subscription:
        """Every event from now on as JSON (``async for``); pass it to :meth:`unsubscribe` when done."""
        return self.live.subscribe()

    def unsubscribe(self, subscription: Subscription) -> None:
        self.live.unsubscribe(subscription)

    # ---- commands ---------------------------------------------------------------------------------

    def listen(self) -> None:
        """Start a turn now, as if the wake word was heard (a button, a page).

        :raises ControlError: muted, a turn is in progress, or the profile has no wake word
            (continuous mode listens all the time).
        """
        if self._muted:
            raise ControlError("the microphone is muted: unmute it first")
        if not self._listen():
            raise ControlError("cannot start listening now: a turn is in progress, or the profile listens all the time")

    async def stop(self) -> None:
        """Stop what is being said or played now (a reply, an announcement, a timer's ring) and
        drop what waits to be said."""
        await self._speech.stop()

    def mute(self, muted: bool = True) -> None:
        """Mute (or unmute) the microphone for privacy: while muted no audio reaches wake scoring
        or speech-to-text. Watchers get a ``muted`` event."""
        if muted == self._muted:
            return
        self._muted = muted
        log.info("microphone %s by the control", "muted" if muted else "unmuted")
        self.live.publish("muted", {"muted": muted})

    async def say(self, text: str) -> SpeechResult:
        """Say ``text`` outside a turn (queued behind a turn in progress); returns how it went."""
        if not text.strip():
            raise ControlError("nothing to say: the text is empty")
        return await self._speech.say(text)

    async def set_volume(self, percent: int) -> None:
        """Set the player's volume (0..100 %) from the next sound on, if the player can
        (its optional ``set_volume(percent)``, plain or coroutine).

        :raises ControlError: out of range, no player, or a player that cannot.
        """
        if not 0 <= percent <= 100:
            raise ControlError(f"volume {percent} is out of range: give 0 to 100 (%)")
        player = self._player()
        if player is None:
            raise ControlError("the profile has no [player] (or it is not running)")
        set_volume = getattr(player, "set_volume", None)
        if set_volume is None:
            raise ControlError(f"the player '{getattr(player, 'name', type(player).__name__)}' cannot set its volume")
        result = set_volume(percent)
        if inspect.isawaitable(result):
            await result
        self.live.publish("volume", {"percent": percent})
