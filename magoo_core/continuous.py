"""Continuous mode (no wake word): one speech-to-text stream open on all the audio.

:class:`Conversation` owns that stream, its :class:`~magoo_core.turn.AudioFeed`, the turn whose
speech is being heard and the turn waiting for a reply from an STT that replies by itself. It
reads one turn after another from the stream; each item is interpreted by
:meth:`~magoo_core.turn.Turns.take`, as in a wake-word turn. Runs on the event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any

from .audio import AudioConverter
from .errors import BackendError
from .lifecycle import Backends
from .settings import EngineSettings
from .roles import AudioStream
from .turn import AudioFeed, Turns
from .types import Outcome, Reply, SpeechActivity, State, Transcript, TurnTimeline

log = logging.getLogger("magoo.engine")


class Conversation:
    """Keeps one STT stream open and turns what it says into turns.

    :param over: True once no new stream is wanted (the engine stops, or a file source ended).
    :param fail_run: stops the run with a message (a failure retrying cannot fix).
    """

    def __init__(
        self,
        backends: Backends,
        turns: Turns,
        settings: EngineSettings,
        over: Callable[[], bool],
        fail_run: Callable[[str], None],
    ) -> None:
        self.feed: AudioFeed | None = None  # where the capture loop puts audio; None between streams
        self.task: asyncio.Task | None = None
        self._backends = backends
        self._turns = turns
        self._settings = settings
        self._over = over
        self._fail_run = fail_run
        self._open: TurnTimeline | None = None  # the turn whose speech is being heard
        self._awaiting: tuple[TurnTimeline, Transcript] | None = None  # heard; the STT's reply to come
        self._reply_timer: asyncio.Task | None = None
        self._answer_lock: asyncio.Lock | None = None  # one answer speaks at a time

    def start(self) -> asyncio.Task:
        """Start the stream's task; the engine waits for it or cancels it at shutdown."""
        self._answer_lock = asyncio.Lock()
        self.task = asyncio.create_task(self._converse(), name="magoo-converse")
        return self.task

    async def _converse(self) -> None:
        """Keep one STT stream open on all the audio; restart it with backoff when it fails."""
        slot = self._backends.stt
        try:
            while not self._over():  # a file that ended needs no new stream
                feed = self._turns.new_feed()
                self.feed = feed
                hand_back: asyncio.Task | None = None
                try:
                    stt = await self._backends.ready(slot)
                    if getattr(slot, "on_backup", False):  # a service's backup streams: until the service is back
                        hand_back = asyncio.get_running_loop().create_task(self._hand_back(slot, feed))
                    audio = AudioStream(feed.chunks(AudioConverter(stt.input_format)), continuous=True)
                    async with contextlib.aclosing(stt.transcribe(audio)) as results:
                        async for item in results:
                            await self._item(stt, item)
                    if self._over():
                        return
                    if hand_back is not None and hand_back.done():
                        continue  # the next stream is the service's
                    raise BackendError("the speech-to-text stream ended unexpectedly")
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    turn, self._open = self._open or (self._awaiting[0] if self._awaiting else None), None
                    failure = await self._backends.report(slot, exc, turn)
                    if turn is not None:
                        await self._turns.close(turn)
                    if not failure.retryable and not slot.restarting:  # restarting: its backup takes over
                        self._fail_run(failure.message)
                        return
                    if not getattr(exc, "restart", True):
                        # the backend paces its own recovery (its next transcribe() waits for it)
                        await asyncio.sleep(slot.backoff.base)
                    elif not slot.restarting:
                        await asyncio.sleep(slot.backoff.next())
                finally:
                    feed.close()
                    if hand_back is not None:
                        hand_back.cancel()
        finally:
            self.feed = None

    async def _hand_back(self, slot: Any, feed: Any) -> None:
        """Once the service whose backup streams now is back, end the backup's stream between two
        turns, so the next stream is the service's (:class:`~magoo_core.service_slots.ServiceRole`)."""
        await slot.until_service_back()
        while self._open is not None or self._awaiting is not None:
            await asyncio.sleep(0.1)
        feed.close()

    async def _item(self, stt: Any, item: Any) -> None:
        if isinstance(item, SpeechActivity):
            turn = await self._hearing() if item.started else self._open
        elif isinstance(item, Transcript):
            turn = await self._hearing()
        elif isinstance(item, Reply):
            turn = (self._awaiting[0] if self._awaiting else None) or self._open or await self._hearing()
        else:
            turn = None  # take() raises
        done = await self._turns.take(item, turn)
        if isinstance(done, Transcript):
            self._open = None
            await self._backends.succeeded(self._backends.stt)
            if not done.text.strip():
                turn.fail(Outcome.NO_SPEECH, "no speech heard")
                await self._turns.close(turn)
            elif stt.replies:
                await self._turns.set_state(State.THINKING, turn)
                self._awaiting = (turn, done)
                self._reply_timer = asyncio.get_running_loop().create_task(self._reply_overdue(turn))
            else:
                self._turns.spawn(self._answer(turn, done, None))
        elif isinstance(done, Reply):
            if self._reply_timer is not None:
                self._reply_timer.cancel()
            final = self._awaiting[1] if self._awaiting and self._awaiting[0] is turn else None
            self._awaiting = self._open = None
            self._turns.spawn(self._answer(turn, final, done))

    async def _hearing(self) -> TurnTimeline:
        """The turn whose speech is being heard, opened now if there is none."""
        if self._open is None:
            self._open = self._turns.new()
            if self._turns.state is State.LISTENING:
                await self._turns.set_state(State.AWAKE, self._open)
        return self._open

    async def _reply_overdue(self, turn: TurnTimeline) -> None:
        await asyncio.sleep(self._settings.reply_timeout)
        if self._awaiting is not None and self._awaiting[0] is turn:
            self._awaiting = None
            await self._backends.report(
                self._backends.stt, BackendError(f"gave no reply within {self._settings.reply_timeout:.0f} s"), turn
            )
            await self._turns.close(turn)

    async def _answer(self, turn: TurnTimeline, final: Transcript | None, reply: Reply | None) -> None:
        self._turns.busy()
        async with self._answer_lock, self._turns.life(turn):
            await self._turns.answer(turn, final, reply)
