"""magoo-openai-realtime: speech-to-text and replies from OpenAI Realtime (GA protocol), server VAD.

One websocket session stays open for as long as the assistant runs (see :mod:`.link`); each
``transcribe()`` streams audio into it and turns the server's events into transcripts and
replies (see :mod:`.turns`). Replies are streamed (:mod:`.replies`): text the engine speaks from
its first sentence on, or the model's voice; one still being written when ``transcribe()`` ends
(after a wake word the engine stops reading at the reply) is fed on by a follower task.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Mapping
from typing import ClassVar

from magoo_core import AudioChunk, Backend, BackendError, Reply, SpeechActivity, Transcript, hookimpl

from . import protocol
from .config import RealtimeConfig
from .link import Dropped, RealtimeLink, Session
from .replies import ReplyStream
from .turns import TurnAssembler

__all__ = ["RealtimeSpeechToText"]

log = logging.getLogger("magoo.realtime")

#: After a wake word's audio ended, how long the server's last VAD events may take to arrive.
END_GRACE = 1.0
#: At the end of a continuous stream, how long a turn in progress may take to finish.
END_DRAIN = 30.0


class AudioEnded:
    """Marker on the event queue: the engine's audio stream has ended."""


class RealtimeSpeechToText(Backend):
    """OpenAI Realtime over one long-lived websocket: transcripts, and replies in conversation mode."""

    name: ClassVar[str] = "openai-realtime"
    input_format = protocol.AUDIO_FORMAT

    Config = RealtimeConfig

    def __init__(self, config: RealtimeConfig) -> None:
        super().__init__(config)
        self.config: RealtimeConfig = config
        self.replies = config.mode == "conversation"
        self.link = RealtimeLink(config, busy=self._busy)
        self._in_turn = False
        self._assembler: TurnAssembler | None = None
        self._follower: asyncio.Task | None = None  # feeds replies still streamed after transcribe() ended
        self.counters = {"turns": 0, "cancels": 0, "sent_seconds": 0.0, "unsent_seconds": 0.0}

    async def __aenter__(self) -> RealtimeSpeechToText:
        """Start connecting; wait up to ``connect_timeout`` so a rejected key stops the start."""
        self.link.start()
        try:
            await self.link.session(self.config.connect_timeout)
        except BackendError as exc:
            if not exc.retryable:
                await self.link.close()
                raise
            log.warning("starting without a connection (%s); it keeps trying in the background", exc.message)
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self._stop_following()
        await self.link.close()

    def stats(self) -> Mapping[str, float]:
        return {**self.link.stats, **{k: round(v, 3) for k, v in self.counters.items()}}

    @property
    def healthy(self) -> bool:
        """False after the server rejected the key, until a connection succeeds: between turns the
        engine sees no failure of its own, so this is what shows the backend as ``failing``."""
        return not self.link.key_rejected

    def _busy(self) -> bool:
        following = self._follower is not None and not self._follower.done()
        return self._in_turn or following or (self._assembler is not None and self._assembler.busy)

    # ---- transcribe ---------------------------------------------------------------------------

    async def transcribe(self, audio: AsyncIterator[AudioChunk]) -> AsyncIterator[Transcript | Reply | SpeechActivity]:
        """After a wake word: stream the utterance until the server commits it, then give its
        transcript and reply. Continuous (``audio.continuous``): stream everything and give turn
        after turn. Runs on the event loop; a dropped connection raises :class:`BackendError`
        (``restart=False``: the link reconnects on its own schedule)."""
        continuous = bool(getattr(audio, "continuous", False))
        await self._stop_following()
        session = await self.link.session(None if continuous else self.config.connect_timeout)
        assembler = TurnAssembler(
            replies=self.replies,
            transcribes=bool(self.config.transcription_model),
            transcript_wait=self.config.transcript_wait,
            audio_time=lambda ms: (session if not continuous else self.link.current or session).audio_time(ms),
            audio=self.config.output == "audio",
            on_cut=self._cut,
        )
        self._assembler = assembler
        self._in_turn = not continuous
        self._forget_events_between_turns()
        if not continuous:
            if session.active_response:  # a reply of an earlier turn is still being written: not wanted now
                await session.send(protocol.cancel(session.active_response))
            await session.send(protocol.CLEAR)
        pump = asyncio.get_running_loop().create_task(self._pump(audio, assembler, None if continuous else session))
        try:
            async for item in self._items(assembler, session, continuous):
                stream = (item.deltas or item.audio) if isinstance(item, Reply) else None
                if isinstance(stream, ReplyStream):
                    stream.handed = True  # before the yield: a wake-word turn's reader stops at this reply
                yield item
        except BackendError as exc:
            assembler.end_streams(exc)
            raise
        finally:
            pump.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await pump
            self._assembler = None
            self._in_turn = False
            current = session if not continuous else self.link.current
            if assembler.streaming and current is not None:
                self._follower = asyncio.get_running_loop().create_task(
                    self._follow(assembler, current), name="openai-realtime-reply"
                )
            else:
                await self._cancel_unfinished(assembler, current)

    async def _items(
        self, assembler: TurnAssembler, session: Session, continuous: bool
    ) -> AsyncIterator[Transcript | Reply | SpeechActivity]:
        ending: str | None = None  # after the audio ended: "grace" for late VAD events, then "drain"
        end_by: float | None = None
        while True:
            if not continuous and assembler.finished_turns:
                self.counters["turns"] += 1
                return
            if ending == "drain" and not assembler.busy:
                return
            deadlines = [d for d in (assembler.next_deadline(), end_by) if d is not None]
            try:
                async with asyncio.timeout(max(0.0, min(deadlines) - time.monotonic()) if deadlines else None):
                    entry = await self.link.events.get()
            except TimeoutError:
                for item in assembler.release_due():
                    yield item
                self._remember(assembler)
                if end_by is not None and time.monotonic() >= end_by:
                    if ending == "drain" or not (assembler.busy or assembler.uncommitted):
                        return  # nothing was said, or what was said could not be finished in time
                    if assembler.uncommitted:  # the user was still talking when the audio ended
                        await self._commit(session if not continuous else self.link.current)
                    ending, end_by = "drain", time.monotonic() + END_DRAIN if continuous else None
                continue
            if isinstance(entry, AudioEnded):
                ending, end_by = "grace", time.monotonic() + END_GRACE
                continue
            if isinstance(entry, Dropped):
                if continuous or entry.session is session:
                    raise self._dropped(entry, assembler.busy or not continuous)
                continue
            source, event = entry
            if source is not (self.link.current if continuous else session):
                continue  # a session already left
            if event["type"] == "error":
                self._server_error(event, assembler.busy or not continuous)
                continue
            for item in assembler.feed(event):
                yield item
            self._remember(assembler)
            if continuous and assembler.finished_turns:
                self.counters["turns"] += assembler.forget_finished()

    async def _pump(self, audio: AsyncIterator[AudioChunk], assembler: TurnAssembler, session: Session | None) -> None:
        """Send the audio; after a wake word only until the server committed the utterance (then
        reading stops: a file source waits in lock-step, and the engine ends the feed soon)."""
        try:
            async for chunk in audio:
                if session is None:
                    sent = await self.link.append(chunk.pcm, chunk.timestamp)
                elif assembler.committed:
                    break
                else:
                    await session.append(chunk.pcm, chunk.timestamp)
                    sent = True
                self.counters["sent_seconds" if sent else "unsent_seconds"] += chunk.duration
            target = session or self.link.current
            if target is not None:
                await target.flush()
        finally:
            self.link.put(AudioEnded())

    async def _commit(self, session: Session | None) -> None:
        if session is None:
            return
        await session.flush()
        await session.send(protocol.COMMIT)
        if self.replies:
            await session.send(protocol.CREATE_RESPONSE)

    def _forget_events_between_turns(self) -> None:
        """A new turn starts from what the server says next; errors from before are only logged."""
        while not self.link.events.empty():
            entry = self.link.events.get_nowait()
            if isinstance(entry, tuple) and entry[1]["type"] == "error":
                self._server_error(entry[1], in_turn=False)

    def _remember(self, assembler: TurnAssembler) -> None:
        self.link.history.extend(assembler.exchanges)
        assembler.exchanges.clear()

    def _server_error(self, event: dict, in_turn: bool) -> None:
        code, message, _ = protocol.error_fields(event)
        if code in protocol.HARMLESS_ERRORS:
            log.debug("server: %s (%s)", code, protocol.redact(message, self.link.key))
            return
        if code in protocol.CONNECTION_ERRORS:
            return  # the link reacts (reconnects or stops) and a Dropped follows
        error = protocol.error_to_backend_error(event, self.link.key)
        if in_turn:
            raise error
        log.warning("%s (between turns; nothing lost)", error.message)

    def _dropped(self, dropped: Dropped, in_turn: bool) -> BackendError:
        if dropped.fatal is not None:
            return dropped.fatal
        lost = "; the turn in progress is lost" if in_turn else ""
        return BackendError(f"OpenAI Realtime connection lost: {dropped.message}{lost}", restart=False)

    # ---- replies still streamed after transcribe() -------------------------------------------------

    async def _follow(self, assembler: TurnAssembler, session: Session) -> None:
        """Feed the streams the engine still reads from ``session``'s events, until they end, the
        connection drops (their reader gets the error) or :data:`END_DRAIN` seconds pass."""
        try:
            async with asyncio.timeout(END_DRAIN):
                while assembler.streaming:
                    entry = await self.link.events.get()
                    if isinstance(entry, Dropped):
                        if entry.session is session:
                            assembler.end_streams(self._dropped(entry, in_turn=True))
                            return
                        continue
                    if isinstance(entry, AudioEnded) or entry[0] is not session:
                        continue
                    event = entry[1]
                    try:
                        if event["type"] == "error":
                            self._server_error(event, in_turn=True)
                        else:
                            assembler.feed(event)
                    except BackendError as exc:
                        assembler.end_streams(exc)
                        return
                    self._remember(assembler)
        except TimeoutError:
            log.warning("the reply did not end within %.0f s; cancelling it", END_DRAIN)
            assembler.end_streams(BackendError(f"the reply did not end within {END_DRAIN:.0f} s"))
            if session.open and session.active_response:
                await session.send(protocol.cancel(session.active_response))
        finally:
            assembler.end_streams()  # cancelled by the next turn or shutdown: its reader stops quietly
            self._remember(assembler)

    async def _stop_following(self) -> None:
        if self._follower is not None:
            self._follower.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._follower
            self._follower = None

    async def _cut(self, stream: ReplyStream) -> None:
        """The engine stopped reading a reply before its end (barge-in, stop, shutdown): cancel
        what the server is still writing, and cut an audio reply to what was handed to the speaker,
        so the conversation remembers only what was heard."""
        session = self.link.current
        if session is None or not session.open:
            return
        events = []
        if session.active_response and session.active_response == stream.response_id:
            events.append(protocol.cancel(stream.response_id))
        if self.config.output == "audio" and stream.item_id:
            events.append(protocol.truncate(stream.item_id, int(stream.played_ms)))
        if events:
            self.counters["cancels"] += 1
        with contextlib.suppress(Exception):
            async with asyncio.timeout(1.0):
                for event in events:
                    await session.send(event)

    async def _cancel_unfinished(self, assembler: TurnAssembler, session: Session | None) -> None:
        """The engine stopped reading (barge-in, shutdown, a timeout): stop paying for a reply
        nobody will hear."""
        if session is None or not session.open or not session.active_response or not assembler.busy:
            return
        self.counters["cancels"] += 1
        with contextlib.suppress(Exception):
            async with asyncio.timeout(1.0):
                await session.send(protocol.cancel(session.active_response))


@hookimpl
def magoo_register_stt(register):
    register(RealtimeSpeechToText)
