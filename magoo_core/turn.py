"""Turns: from a wake word (or heard speech) to the end of the spoken reply.

:class:`Turns` owns the engine's state (listening → awake → thinking → speaking), the turn
tasks, their history, and the wake-word turn's :class:`AudioFeed` towards speech-to-text. What
the STT stream says is interpreted in one place, :meth:`Turns.take`, for wake-word turns and for
continuous mode alike. A turn's answer (the responder, the spoken reply, whole or streamed) is
:class:`~magoo_core.answer.Answers`'s.
Everything here runs on the event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Iterable
from typing import Any

from .answer import Answers
from .audio import AudioConverter
from .clips import Clips, WakeClip
from .lifecycle import HISTORY, Backends, Emit, TurnDropped, unexpected
from .settings import EngineSettings
from .roles import AudioStream
from .speaker import Speaker
from .types import AudioChunk, Outcome, Reply, SpeechActivity, State, Transcript, TurnTimeline, WakeEvent

log = logging.getLogger("magoo.engine")

#: the ``[engine.sounds]`` moment of a turn's end, by outcome (none for the others)
_SOUNDS = {Outcome.OK: "done", Outcome.ERROR: "error"}
FEED_DEPTH = 8  # chunks buffered towards STT from a source that can wait (lock-step)
LIVE_FEED_DEPTH = 1024  # ~80 s of 80 ms chunks: far beyond any healthy STT's lag


class AudioFeed:
    """Audio on its way from the capture loop to one speech-to-text stream.

    For a source that can wait, ``put`` waits when ``FEED_DEPTH`` chunks are queued (lock-step).
    For a live source ``put`` never waits: past ``LIVE_FEED_DEPTH`` chunks (an STT that stopped
    reading) the oldest chunk is dropped and counted in ``counters["stt_overflows"]``.
    ``close()`` ends the stream and unblocks ``put``.
    """

    def __init__(self, *, live: bool, counters: dict[str, float]) -> None:
        self._live = live
        self._counters = counters
        self._queue: asyncio.Queue[AudioChunk | None] = asyncio.Queue(LIVE_FEED_DEPTH if live else FEED_DEPTH)
        self.closed = False

    async def put(self, chunk: AudioChunk) -> None:
        if self.closed:
            return
        if self._live:
            if self._queue.full():
                self._queue.get_nowait()
                self._counters["stt_overflows"] += 1
            self._queue.put_nowait(chunk)
        else:
            await self._queue.put(chunk)

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        while not self._queue.empty():
            self._queue.get_nowait()
        self._queue.put_nowait(None)

    async def chunks(
        self,
        converter: AudioConverter,
        preroll: Iterable[AudioChunk] = (),
        max_seconds: float | None = None,
        clip: WakeClip | None = None,
    ) -> AsyncIterator[AudioChunk]:
        """Converted chunks: the pre-roll first, then live audio until closed or ``max_seconds``.

        ``clip``: where each live chunk also goes, as captured (``[engine] save_clips``).

        ``max_seconds`` counts audio (deterministic for files) and wall time (for a live source
        that stops delivering), whichever runs out first.
        """
        loop = asyncio.get_running_loop()
        deadline = None if max_seconds is None else loop.time() + max_seconds
        heard = 0.0
        for chunk in preroll:
            for frame in converter.convert(chunk):
                yield frame
        while True:
            try:
                async with asyncio.timeout_at(deadline):  # no task per chunk, unlike wait_for
                    chunk = await self._queue.get()
            except TimeoutError:
                return
            if chunk is None:
                for frame in converter.flush():
                    yield frame
                return
            if clip is not None:
                clip.add(chunk)
            for frame in converter.convert(chunk):
                yield frame
            heard += chunk.duration
            if max_seconds is not None and heard >= max_seconds:
                return


class Turns:
    """Opens, runs and closes turns, and holds the engine's state while they run.

    :param emit: how the turn's events reach the plugins.
    :param counters: the engine's counters (a feed counts ``stt_overflows`` in it).
    :param on_closed: called on the loop after each turn closed and its ``turn_end`` was emitted
        (the engine stops after ``max_turns`` there, or starts the turn a barge-in asked for).
    :param clips: where a wake word's turn keeps its audio (``[engine] save_clips``); None: nowhere.
    """

    def __init__(
        self,
        backends: Backends,
        speaker: Speaker,
        settings: EngineSettings,
        emit: Emit,
        counters: dict[str, float],
        on_closed: Callable[[], None],
        clips: Clips | None = None,
    ) -> None:
        self.state = State.LISTENING  # changed only through set_state, wake_up and close
        self.timelines: deque[TurnTimeline] = deque(maxlen=HISTORY)
        self.done = 0  # turns closed, any outcome
        self.feed: AudioFeed | None = None  # the wake-word (or follow-up) turn's audio, while it listens
        self.tasks: set[asyncio.Task] = set()
        self._backends = backends
        self._speaker = speaker
        self._settings = settings
        self._emit = emit
        self._counters = counters
        self._on_closed = on_closed
        self._clips = clips
        self.answers = Answers(backends, speaker, settings, emit, self.set_state)
        self._count = 0
        self._live = True
        self._idle: asyncio.Event | None = None

    def open(self) -> None:
        """Get ready on the running loop, before the first audio."""
        self._idle = asyncio.Event()
        self._idle.set()

    def set_live(self, live: bool) -> None:
        """Whether the source is live (see :class:`AudioFeed`); known once it has started."""
        self._live = live

    async def wait_idle(self) -> None:
        """Until no turn thinks or speaks (a lock-step source reads no audio meanwhile)."""
        await self._idle.wait()

    def busy(self) -> None:
        """A turn is about to think or speak: a lock-step source waits."""
        self._idle.clear()

    def new(self, *, wake: float | None = None, follow_up: bool = False) -> TurnTimeline:
        """A new turn; one that a wake word starts begins at the frame that woke us."""
        self._count += 1
        return TurnTimeline(self._count, time.monotonic() if wake is None else wake, wake=wake, follow_up=follow_up)

    def new_feed(self) -> AudioFeed:
        """An audio feed towards speech-to-text, as the source needs it."""
        return AudioFeed(live=self._live, counters=self._counters)

    def spawn(self, coro: Coroutine[Any, Any, None]) -> asyncio.Task:
        """Run a turn's work as a task the engine waits for at shutdown."""
        task = asyncio.get_running_loop().create_task(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        return task

    async def set_state(self, new: State, turn: TurnTimeline | None, *, old: State | None = None) -> None:
        old = self.state if old is None else old
        self.state = new
        if new in (State.THINKING, State.SPEAKING):
            self._idle.clear()
        if new is State.THINKING and old is not State.THINKING:
            self._speaker.chime("thinking")
        if old is not new:
            await self._emit("state_change", old=old, new=new, turn=turn.turn if turn else None)

    @contextlib.asynccontextmanager
    async def life(self, turn: TurnTimeline) -> AsyncIterator[None]:
        """Around a turn's work: a dropped turn ends quietly, a cancelled one says so, every turn closes."""
        try:
            yield
        except TurnDropped:
            pass
        except asyncio.CancelledError:
            turn.fail(Outcome.CANCELLED, "cancelled (shutdown)")
            raise
        finally:
            await self.close(turn)

    async def close(self, turn: TurnTimeline) -> None:
        timeline = turn.ended_at(time.monotonic())
        self.timelines.append(timeline)
        self.done += 1
        old = self.state
        if not (self.tasks - {asyncio.current_task()}):  # else the state is the running turn's (a wake ended a follow-up)
            self.state = State.LISTENING
            self._idle.set()
        log.info("turn %d %s", turn.turn, timeline.summary())
        if timeline.outcome in _SOUNDS:
            self._speaker.chime(_SOUNDS[timeline.outcome])
        with contextlib.suppress(Exception):
            if old is not self.state:
                await self._emit("state_change", old=old, new=State.LISTENING, turn=None)
            await self._emit("turn_end", timeline=timeline)
        self._on_closed()

    async def cancel(
        self, timeout: float, *others: asyncio.Task | None, then: Callable[[], Awaitable[None]] | None = None
    ) -> None:
        """Stopping: cancel the turns in progress (and ``others``), await ``then()``, and wait at
        most ``timeout`` s for them to end (each closes with ``cancelled``, unmuted)."""
        waiting = {task for task in (*self.tasks, *others) if task is not None and not task.done()}
        for task in waiting:
            task.cancel()
        if then is not None:
            await then()
        if waiting:
            await asyncio.wait(waiting, timeout=timeout)

    def abandon(self) -> None:
        """Stopping at once: cancel the turns without waiting for them; the state is listening,
        so the last status says so."""
        for task in self.tasks:
            task.cancel()
        self.state = State.LISTENING

    async def wait_no_turn(self) -> None:
        """Until no turn is in progress (awake, thinking or speaking): speech outside a turn waits here."""
        while self.tasks or self.state is not State.LISTENING:
            if self.tasks:
                await asyncio.wait(set(self.tasks))
            else:  # continuous mode: its turns run in the conversation's task
                await asyncio.sleep(0.05)

    async def drain(self) -> None:
        """Until no turn runs, including turns that finishing turns start (barge-in)."""
        while self.tasks:
            await asyncio.wait(set(self.tasks))

    # ---- the wake-word turn ---------------------------------------------------------------------

    def wake_up(self, wake: WakeEvent, preroll: list[AudioChunk]) -> None:
        """Switch to awake *now*, so the very next chunk already goes to this turn's feed."""
        self.state = State.AWAKE
        self.feed = self.new_feed()
        clip = self._clips.wake(wake, preroll) if self._clips is not None else None
        self.spawn(self._wake_turn(wake, self.feed, preroll, detected=time.monotonic(), clip=clip))

    async def _wake_turn(
        self, wake: WakeEvent, feed: AudioFeed, preroll: list[AudioChunk], detected: float, clip: WakeClip | None
    ) -> None:
        turn = self.new(wake=wake.timestamp)
        turn.detected = detected
        log.info(
            "turn %d: wake word %s (score %.2f ≥ %.2f), detected %.0f ms after its frame was captured",
            turn.turn, wake.label, wake.score, wake.threshold, (detected - wake.timestamp) * 1000,
        )
        async with self.life(turn):
            try:
                await self._emit("wake", wake=wake, turn=turn.turn)
                await self.set_state(State.AWAKE, turn, old=State.LISTENING)
                before_wake = sum(chunk.duration for chunk in preroll if chunk.timestamp <= wake.timestamp)
                final, reply = await self._listen(turn, feed, preroll, clip=clip, before_wake=before_wake)
                if clip is not None:
                    clip.close()  # the command has ended: saved while the reply is made
                await self.answer(turn, final, reply, wake=wake)
            finally:
                feed.close()
                if clip is not None:
                    clip.close()
                if self.feed is feed:
                    self.feed = None

    async def _listen(
        self, turn: TurnTimeline, feed: AudioFeed, preroll: list[AudioChunk], window: float = 0.0,
        clip: WakeClip | None = None, before_wake: float = 0.0,
    ) -> tuple[Transcript | None, Reply | None]:
        """Stream the utterance to STT until its final transcript (and its reply, if it replies).

        :param window: a follow-up window: the audio ends after ``window`` s unless speech started
            by then (it is ``awake`` from then on); the command may take ``capture_timeout`` s more.
        :param clip: the wake clip that keeps the command's audio too (closed by the caller).
        :param before_wake: seconds of ``preroll`` captured up to the wake word's frame (the
            stream's ``preroll``).
        """
        slot = self._backends.stt
        final: Transcript | None = None
        reply: Reply | None = None
        capture = self._settings.capture_timeout + window
        quiet = asyncio.get_running_loop().call_later(window, feed.close) if window else None
        async with self._backends.attempt(slot, turn, capture + self._settings.reply_timeout, "final transcript or reply"):
            stt = await self._backends.ready(slot)
            chunks = feed.chunks(AudioConverter(stt.input_format), preroll, capture, clip)
            audio = AudioStream(chunks, continuous=False, preroll=before_wake)
            async with contextlib.aclosing(stt.transcribe(audio)) as results:
                async for item in results:
                    if quiet is not None and _is_speech(item):  # the window becomes a turn that listens
                        quiet.cancel()
                        quiet = None
                        await self.set_state(State.AWAKE, turn)
                    done = await self.take(item, turn)
                    if isinstance(done, Transcript):
                        final = done
                        feed.close()
                        if not stt.replies:
                            break
                        await self.set_state(State.THINKING, turn)
                    elif isinstance(done, Reply):
                        reply = done
                        break
        if quiet is not None:
            quiet.cancel()
        return final, reply

    async def follow_up_turn(self, turn: TurnTimeline, feed: AudioFeed, window: float) -> None:
        """A turn without a wake word, in the follow-up window (see :mod:`magoo_core.follow_up`):
        nothing heard within ``window`` s ends it ``no_speech``, quietly."""
        async with self.life(turn):
            try:
                final, reply = await self._listen(turn, feed, [], window)
                if reply is None and (final is None or not final.text.strip()):
                    turn.fail(Outcome.NO_SPEECH, "nothing said in the follow-up window")
                await self.answer(turn, final, reply)
            finally:
                feed.close()
                if self.feed is feed:
                    self.feed = None

    # ---- what the STT says, for every mode ------------------------------------------------------

    async def take(self, item: Any, turn: TurnTimeline | None) -> Transcript | Reply | None:
        """Note one item of an STT stream for ``turn`` and emit its event.

        :param turn: the turn the item belongs to; None only for speech activity outside a turn.
        :returns: the final transcript or the final reply, when ``item`` is one; else None.
        :raises TypeError: the backend yielded something an STT may not.
        """
        if isinstance(item, SpeechActivity):
            number = turn.turn if turn else None
            if item.started:
                await self._emit("speech_start", timestamp=item.timestamp, turn=number)
            else:
                if turn is not None:
                    turn.speech_end = item.timestamp
                await self._emit("speech_end", timestamp=item.timestamp, turn=number)
            return None
        if isinstance(item, Transcript):
            await self._emit("transcript", transcript=item, turn=turn.turn)
            if not item.final:
                return None
            now = time.monotonic()
            turn.transcript = now
            if turn.speech_end is None:
                turn.speech_end = now
            log.info("turn %d: heard %r", turn.turn, item.text)
            return item
        if isinstance(item, Reply):
            if item.deltas is None:  # a streamed reply's events come as it is said (Answers)
                await self._emit("reply", reply=item, turn=turn.turn)
            return item if item.final else None
        raise unexpected(item, "Transcript, Reply or SpeechActivity")

    # ---- the answer -----------------------------------------------------------------------------

    async def answer(
        self, turn: TurnTimeline, final: Transcript | None, reply: Reply | None, *, wake: WakeEvent | None = None
    ) -> None:
        """From the final transcript to the end of the spoken reply: see :meth:`Answers.answer`."""
        await self.answers.answer(turn, final, reply, wake=wake)

    @property
    def asks_follow_up(self) -> bool | None:
        """The last reply's ``follow_up`` (None: the profile decides), for the follow-up window."""
        return self.answers.asks_follow_up


def _is_speech(item: Any) -> bool:
    """An STT item that says the user speaks: speech started, or words heard."""
    if isinstance(item, SpeechActivity):
        return item.started
    return isinstance(item, Transcript) and bool(item.text.strip())
