"""Answering a turn: from the final transcript (or the speech-to-text backend's own reply) to the
end of the spoken reply, whole or streamed.

:class:`Answers` asks the responder (with the turn's :class:`~magoo_core.types.TurnContext` when it
takes one), speaks a whole reply through the Speaker, or a streamed one sentence by sentence
(:mod:`magoo_core.reply_stream`), plays one given as sound, and remembers whether the last reply
asked for the follow-up window. It changes the engine's state only through the ``set_state`` callable :class:`Turns` hands
it. Everything here runs on the event loop.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable

from .errors import BackendError
from .lifecycle import Backends, BackendSlot, Emit, TurnDropped, unexpected
from .settings import EngineSettings
from .reply_stream import sentences
from .roles import Role, takes_context
from .speakable import shown, spoken_reply
from .speaker import Speaker
from .tools import Toolbox
from .types import Outcome, Reply, State, Transcript, TurnContext, TurnTimeline, WakeEvent
from .voice import close_quietly

log = logging.getLogger("magoo.engine")

#: what ``magoo_on_speak_start`` gets for a reply given as sound without its text
AUDIO_REPLY = "<audio reply>"


class Answers:
    """Answers turns for :class:`~magoo_core.turn.Turns`.

    :param set_state: how the engine's state changes (``Turns.set_state``): thinking while the
        reply is made, speaking once the microphone is muted for it.
    """

    def __init__(
        self,
        backends: Backends,
        speaker: Speaker,
        settings: EngineSettings,
        emit: Emit,
        set_state: Callable[[State, TurnTimeline], Awaitable[None]],
    ) -> None:
        #: the last reply's ``follow_up`` (None: the profile decides), for the follow-up window
        self.asks_follow_up: bool | None = None
        #: the tools the plugins offer this run (``magoo_register_tools``), set once backends started
        self.tools: Toolbox = Toolbox()
        self._backends = backends
        self._character: str | None = None  # the last turn's, which a follow-up turn keeps
        self._speaker = speaker
        self._settings = settings
        self._emit = emit
        self.set_state = set_state

    async def answer(
        self, turn: TurnTimeline, final: Transcript | None, reply: Reply | None, *, wake: WakeEvent | None = None
    ) -> None:
        """From the final transcript to the end of the spoken reply.

        A reply from the speech-to-text backend itself is answered even without a transcript
        (a conversational backend may have transcription turned off, or its transcription failed).
        Whoever made the reply (the STT or the responder), it takes one of three paths: text
        through the TTS, ``deltas`` spoken sentence by sentence as they are written (a streaming
        responder's answer is one such reply), or ``audio`` played as is; a failure of its
        ``deltas`` or ``audio`` is reported against the backend that made it.

        :param wake: the wake word that started the turn, for the responder's :class:`TurnContext`;
            its label picks the turn's ``by_wake`` responder and voice (``turn.character``).
        """
        turn.character = self._character = wake.label if wake is not None else self._character if turn.follow_up else None
        if reply is None and (final is None or not final.text.strip()):
            turn.fail(Outcome.NO_SPEECH, "no speech heard")
            return
        if reply is None and self._backends.responder is None:
            return  # transcription only: the transcript was the product
        await self.set_state(State.THINKING, turn)
        made_by = self._backends.stt
        if reply is None:
            made_by = self._backends.for_turn(Role.RESPONDER, turn)
            reply = await self._respond(turn, final, TurnContext(turn.turn, wake, turn.follow_up, self.tools))
        if reply is not None and reply.deltas is not None:
            await self._answer_stream(turn, reply, made_by)
        elif reply is not None and reply.audio is not None:
            await self._answer_audio(turn, reply, made_by)
        else:
            await self._answer_text(turn, reply)

    async def _answer_text(self, turn: TurnTimeline, reply: Reply | None) -> None:
        """A whole reply text, said through the TTS."""
        if reply is None or not reply.text.strip():
            turn.fail(Outcome.NO_REPLY, "nothing to say")
            return
        turn.reply = time.monotonic()
        self.asks_follow_up = reply.follow_up  # read when the turn has closed
        log.info("turn %d: reply %r", turn.turn, shown(reply.text))
        if self._speaker.can_speak:
            text = await spoken_reply(
                reply.text, max_chars=self._settings.max_reply_chars, clean=self._settings.speakable_replies, turn=turn.turn
            )
            if not text:
                turn.fail(Outcome.NO_REPLY, "the reply had nothing to say aloud")
                return
            await self._speaker.say(turn, text, on_muted=lambda: self.set_state(State.SPEAKING, turn))

    async def _answer_audio(self, turn: TurnTimeline, reply: Reply, made_by: BackendSlot) -> None:
        """A reply given as sound: played as is through the Speaker (muting, levels, barge-in);
        ``speak_start`` says its text, or ``<audio reply>``."""
        audio = reply.audio
        turn.reply = time.monotonic()
        self.asks_follow_up = reply.follow_up
        log.info("turn %d: reply in audio%s", turn.turn, f" {shown(reply.text)!r}" if reply.text else "")
        try:
            if self._backends.player is not None:  # else nothing plays it: the reply was the product
                await self._speaker.say_audio(
                    turn, audio, lambda: self.set_state(State.SPEAKING, turn),
                    caption=reply.text or AUDIO_REPLY, made_by=made_by,
                )
        finally:
            await close_quietly(audio)  # not played to its end (dropped, cancelled): its backend stops

    async def _respond(self, turn: TurnTimeline, final: Transcript, context: TurnContext) -> Reply | None:
        """The responder's answer: a Reply or None; a stream of text deltas (not read yet) comes
        as ``Reply("", deltas=...)``."""
        slot = self._backends.for_turn(Role.RESPONDER, turn)
        async with self._backends.attempt(slot, turn, self._settings.reply_timeout, "reply"):
            responder = await self._backends.ready(slot)
            answered = responder.respond(final, context=context) if takes_context(responder) else responder.respond(final)
            if inspect.isawaitable(answered):
                answered = await answered
            if answered is not None and not isinstance(answered, Reply) and not hasattr(answered, "__aiter__"):
                raise unexpected(answered, "Reply, None or an async iterator of text")
        if answered is None or isinstance(answered, Reply):
            if answered is not None and answered.deltas is None:  # a stream's events come as it is said
                await self._emit("reply", reply=answered, turn=turn.turn)
            return answered
        return Reply("", deltas=answered)

    async def _answer_stream(self, turn: TurnTimeline, reply: Reply, made_by: BackendSlot) -> None:
        """A streamed reply: spoken from its first complete sentence on, the TTS one sentence
        ahead of the player (:mod:`magoo_core.reply_stream`). A partial ``reply`` event (the text so
        far) comes before each sentence is said, the final one once the reply is whole (its start
        may be playing by then); a failure of ``made_by`` part-way is reported against it after
        what came before was said. The follow-up window is the stream's closing
        ``Reply(text="")``'s ``follow_up``, else ``reply``'s."""
        deltas, settings = reply.deltas, self._settings
        heard: list[str] = []
        closing: list[Reply] = []
        failure: list[BaseException] = []

        async def cut() -> AsyncIterator[str]:
            try:
                async for sentence in sentences(
                    deltas, max_chars=settings.max_reply_chars, clean=settings.speakable_replies,
                    timeout=settings.reply_timeout, heard=heard, closing=closing,
                ):
                    await self._emit("reply", reply=Reply("".join(heard), final=False), turn=turn.turn)
                    yield sentence
            except (asyncio.CancelledError, GeneratorExit):
                raise
            except TimeoutError:
                failure.append(BackendError(f"gave no more of its reply within {settings.reply_timeout:.0f} s"))
            except Exception as exc:
                failure.append(exc)
            else:  # whole now, while its first sentences may still be playing
                whole = Reply("".join(heard), follow_up=closing[0].follow_up if closing else reply.follow_up)
                log.info("turn %d: reply %r", turn.turn, shown(whole.text))
                await self._emit("reply", reply=whole, turn=turn.turn)

        said = cut()
        first: str | None = None
        spoken: list[str] = []
        try:
            first = await anext(said, None)
            if first is not None:
                turn.reply = time.monotonic()
                log.info("turn %d: streamed reply, first sentence %r", turn.turn, shown(first))
                if self._speaker.can_speak:
                    spoken = await self._speaker.say_stream(
                        turn, _then(first, said), lambda: self.set_state(State.SPEAKING, turn), caption=first
                    )
            async for _ in said:  # read to its end (the reply event), said or not
                pass
        finally:
            await said.aclose()
            await close_quietly(deltas)
        if failure:
            await self._backends.report(made_by, failure[0], turn)
            raise TurnDropped
        await self._backends.succeeded(made_by)
        if turn.outcome is Outcome.INTERRUPTED:
            await _tell_heard(made_by.instance, turn.turn, " ".join(spoken))
        self.asks_follow_up = closing[0].follow_up if closing else reply.follow_up
        if first is None:
            turn.fail(Outcome.NO_REPLY, "nothing to say")


async def _tell_heard(responder: object, turn: int, text: str) -> None:
    """The optional ``responder.heard(turn, text)``: what was said of a streamed reply cut short
    (see :class:`~magoo_core.roles.Responder`). What it raises is logged; it may take 1 s."""
    heard = getattr(responder, "heard", None)
    if not callable(heard):
        return
    try:
        async with asyncio.timeout(1.0):
            done = heard(turn, text)
            if inspect.isawaitable(done):
                await done
    except Exception as exc:  # the turn is over: nothing to drop
        log.warning("turn %d: the responder's heard() failed: %s", turn, exc or type(exc).__name__)


async def _then(first: str, rest: AsyncIterator[str]) -> AsyncIterator[str]:
    yield first
    async for item in rest:
        yield item
