"""The follow-up window: after a reply, the next command is taken without the wake word.

:class:`FollowUp` owns the window. After a turn whose reply was spoken closed (its sound really
ended and ``mute_post`` passed), it opens one when the reply asks for it (``Reply.follow_up``
True) or leaves it to the profile (``follow_up`` None) and ``[engine] follow_up`` is more than 0
seconds. The window is a turn marked ``follow_up`` that streams the microphone to speech-to-text
with no wake word; it stays ``listening`` (the wake word still works) until speech starts, then it
is ``awake`` like any turn. Nothing heard within the window (no speech start, no words): the turn
ends ``no_speech`` and the engine waits for the wake word again, with no error. A wake word heard
while the window is open closes it (its turn ends ``no_speech``) and starts its own turn.

Where the window opens, ``on_open(turn)`` is called (a ``listening`` sound belongs there).
Everything here runs on the event loop.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from .settings import EngineSettings
from .turn import Turns
from .types import Outcome, TurnTimeline

log = logging.getLogger("magoo.engine")

#: seconds of a window that a reply asks for while ``[engine] follow_up`` is 0 (off)
ASKED_WINDOW = 5.0


class FollowUp:
    """Opens and closes the follow-up window of a wake-word profile.

    :param on_open: called on the loop with the window's turn as the window opens.
    """

    def __init__(self, turns: Turns, settings: EngineSettings, on_open: Callable[[TurnTimeline], None] | None = None) -> None:
        self._turns = turns
        self._settings = settings
        self._on_open = on_open
        self._task: asyncio.Task | None = None
        self._turn: TurnTimeline | None = None

    @property
    def is_open(self) -> bool:
        """The window's turn runs (a wake word is heard only while it still listens for speech)."""
        return self._task is not None and not self._task.done()

    def seconds_after(self, ended: TurnTimeline, asks: bool | None) -> float:
        """How long the window after ``ended`` lasts; 0: none.

        :param asks: the reply's ``follow_up`` (None: the profile's ``[engine] follow_up``).
        """
        if ended.outcome is not Outcome.OK or ended.first_audio is None or asks is False:
            return 0.0
        if asks is None:
            return self._settings.follow_up
        return self._settings.follow_up or ASKED_WINDOW

    def open(self, seconds: float) -> None:
        """Open a window of ``seconds``: a turn marked follow-up, fed from the microphone now."""
        turn = self._turns.new(follow_up=True)
        feed = self._turns.feed = self._turns.new_feed()
        log.info("turn %d: listening without the wake word for %.1f s (follow-up)", turn.turn, seconds)
        self._turn = turn
        self._task = self._turns.spawn(self._turns.follow_up_turn(turn, feed, seconds))
        if self._on_open is not None:
            self._on_open(turn)

    def close(self) -> None:
        """A wake word was heard: an open window's turn ends ``no_speech`` at once."""
        if not self.is_open:
            return
        self._turn.fail(Outcome.NO_SPEECH, "a wake word started a new turn")
        self._task.cancel()
