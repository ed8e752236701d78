"""Saying something: the TTS into the player, with the microphone muted, and barge-in.

:class:`Speaker` is the one owner of muting (``mute_pre`` before the first sound, ``mute_post``
after the real end, unmuted on every way out: success, TTS error, player error, cancellation,
shutdown) and of barge-in (a wake word heard while speaking stops the player; the engine starts
the next turn from it). Everything that is said goes through :meth:`Speaker.speak` and its one
queue (:class:`~magoo_core.speech.SpeakingGate`): replies (:meth:`Speaker.say`), announcements and
sounds (:class:`~magoo_core.speech.Speech`) get the same muting and events.
Runs on the event loop; a player may report progress from its own thread (:class:`Progress`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable
from typing import Any

from .echo_cancel import EchoCancel
from .errors import BackendError
from .lifecycle import Backends, BackendSlot, Emit, TurnDropped
from .settings import EngineSettings
from .reply_stream import SpokenSentences
from .roles import Role
from .speech import Dropped, SpeakingGate, SpeechResult, Sounds, Utterance
from .types import Outcome, TurnTimeline, WakeEvent
from .voice import Voice

log = logging.getLogger("magoo.engine")


class Progress:
    """The speaker's side of :class:`~magoo_core.roles.PlaybackProgress`: thread-safe, ordered.

    Calls from any thread are moved to the loop; events are emitted by one pump task in the
    order the player reported them. ``turn`` is None for speech outside a turn.
    """

    def __init__(self, emit: Emit, turn: TurnTimeline | None, text: str) -> None:
        self._emit = emit
        self._turn = turn
        self._text = text
        self._loop = asyncio.get_running_loop()
        self._loop_thread = threading.get_ident()
        self._events: asyncio.Queue[tuple[str, dict[str, Any]] | None] = asyncio.Queue()
        self._pump = self._loop.create_task(self._run())
        self.has_started = False
        #: the last sign of life of the reply: a piece of audio taken from the TTS, or a report
        self.last_activity = time.monotonic()
        #: the TTS is working on its next piece: the player waits for it, and is not to blame
        self.waiting_for_tts = False

    def touch(self) -> None:
        self.last_activity = time.monotonic()

    def started(self) -> None:
        self._call(self._on_started)

    def played(self, level: float, duration: float) -> None:
        self._call(self._on_played, level, duration)

    def _call(self, fn: Any, *args: Any) -> None:
        if threading.get_ident() == self._loop_thread:
            fn(*args)
        else:
            with contextlib.suppress(RuntimeError):  # the loop has closed: nobody is listening
                self._loop.call_soon_threadsafe(fn, *args)

    def _on_started(self) -> None:
        self.touch()
        if self.has_started:
            return
        self.has_started = True
        if self._turn is not None:
            self._turn.first_audio = time.monotonic()
        self._events.put_nowait(("speak_start", {"text": self._text, "turn": self.turn}))

    @property
    def turn(self) -> int | None:
        return self._turn.turn if self._turn is not None else None

    def _on_played(self, level: float, duration: float) -> None:
        self.touch()
        if not self.has_started:
            self._on_started()
        self._events.put_nowait(("speak_chunk", {"level": level, "duration": duration, "turn": self.turn}))

    async def _run(self) -> None:
        while (item := await self._events.get()) is not None:
            await self._emit(item[0], **item[1])

    async def flush(self) -> None:
        """Wait until every reported event has been emitted."""
        self._events.put_nowait(None)
        await self._pump


class Speaker:
    """Says utterances one at a time through the ``[tts]`` and ``[player]`` backends, microphone muted.

    :param emit: how ``speak_start``, ``speak_chunk``, ``speak_end`` reach the plugins.
    :param on_unmute: called on the loop each time the microphone opens again (the engine drops
        its pre-roll and resets the wake detector, so the reply's echo cannot wake it).
    """

    def __init__(self, backends: Backends, settings: EngineSettings, emit: Emit, on_unmute: Callable[[], None]) -> None:
        self._backends = backends
        self._settings = settings
        self._emit = emit
        self._on_unmute = on_unmute
        self._muted = False
        self._barged = False
        self._barged_by: WakeEvent | None = None
        self._stopped = False
        self._current: Utterance | None = None
        self._gate = SpeakingGate()
        #: the ``[engine.sounds]`` files, loaded in the player's format
        self.sounds = Sounds(settings.sounds)
        self._voice = Voice(backends, settings, self.sounds)
        #: the microphone's echo-cancellation stage (``[engine.echo_cancel]``); off when unset
        self.echo = EchoCancel(settings.echo_cancel)
        self._chimes: set[asyncio.Task] = set()

    @property
    def muted(self) -> bool:
        """The microphone is muted: from the start of :meth:`say` until ``mute_post`` after the end."""
        return self._muted

    @property
    def playing(self) -> bool:
        """Something is being said or played now: a reply, an announcement or a sound (a timer's ring)."""
        return self._current is not None

    @property
    def announcing(self) -> bool:
        """An announcement (speech outside a turn, not a sound) is being said: barge-in may stop it."""
        return self._current is not None and self._current.kind == "announcement"

    @property
    def can_speak(self) -> bool:
        """The profile has a TTS and a player."""
        return self._backends.tts is not None and self._backends.player is not None

    async def prepare(self) -> None:
        """Tell a player that can get ready for a kind of audio (start its decoder) what the TTS
        yields (or, without a TTS, what the sounds are), so the first reply or chime does not wait
        for that; load the sounds. Optional on both sides; a failure here is only logged: the
        player then gets ready at the first reply, as without it."""
        tts_slot, player_slot = self._backends.tts, self._backends.player
        tts = tts_slot.instance if tts_slot is not None else None
        player = player_slot.instance if player_slot is not None else None
        output, expect = getattr(tts, "output_format", None), getattr(player, "expect", None)
        if output is None and tts is None:
            output = await self.sounds.native_format()
        if output is not None and callable(expect):
            try:
                await asyncio.wait_for(expect(output), self._settings.hook_timeout)
            except Exception as exc:
                log.warning("%s %s could not get ready for %s: %s", player_slot.spec.section, player_slot.spec.backend, output, exc)
        await self.sounds.preload(self._voice.player_format())

    async def say(self, turn: TurnTimeline, text: str, on_muted: Callable[[], Awaitable[None]]) -> None:
        """Synthesize and play the reply ``text`` of ``turn`` (see :meth:`speak`).

        :param on_muted: awaited right after muting, before anything is synthesized (the engine
            switches to ``speaking`` there).
        :raises TurnDropped: the TTS or the player failed; the failure has been reported.
        """
        result = await self.speak(Utterance(text=text, turn=turn, kind="reply"), on_muted)
        if result.status in ("failed", "dropped"):
            raise TurnDropped

    async def say_stream(
        self, turn: TurnTimeline, sentences: AsyncIterable[str], on_muted: Callable[[], Awaitable[None]], *, caption: str
    ) -> list[str]:
        """Say a streamed reply of ``turn`` sentence by sentence as one utterance: the TTS
        synthesizes the next sentence while the player plays the one before
        (:class:`~magoo_core.reply_stream.SpokenSentences`). Muting, events and barge-in as for
        :meth:`say`; ``speak_start`` gets ``text=caption``, the first sentence (the text is not
        whole yet).

        :returns: the sentences whose sound had started (all of them unless it was interrupted).
        :raises TurnDropped: the TTS or the player failed; the failure has been reported.
        """
        tts = self._backends.for_turn(Role.TTS, turn)  # the voice of the turn's wake word
        spoken = SpokenSentences(sentences, lambda: self._backends.ready(tts), self._settings.reply_timeout)
        try:
            utterance = Utterance(audio=spoken.audio, turn=turn, kind="reply", caption=caption)
            result = await self.speak(utterance, on_muted)
        finally:
            await spoken.audio.aclose()  # the synthesis one sentence ahead stops with the player
        if spoken.failure is not None:
            await self._backends.report(tts, spoken.failure, turn)
            raise TurnDropped
        if result.status in ("failed", "dropped"):
            raise TurnDropped
        await self._backends.succeeded(tts)
        return spoken.said

    async def say_audio(
        self, turn: TurnTimeline, audio: AsyncIterable[Any], on_muted: Callable[[], Awaitable[None]], *,
        caption: str, made_by: BackendSlot,
    ) -> None:
        """Play a reply of ``turn`` that a backend gave as sound (:attr:`Reply.audio
        <magoo_core.types.Reply.audio>`), as is: muting, levels, events and barge-in as for
        :meth:`say`; ``speak_start`` gets ``text=caption``. A failure of ``audio`` is reported
        against ``made_by`` (the STT or responder that replied), not the player.

        :raises TurnDropped: the audio or the player failed; the failure has been reported.
        """
        result = await self.speak(Utterance(audio=audio, turn=turn, kind="reply", caption=caption, made_by=made_by), on_muted)
        if result.status in ("failed", "dropped"):
            raise TurnDropped
        await self._backends.succeeded(made_by)

    async def speak(
        self, utterance: Utterance, on_muted: Callable[[], Awaitable[None]] | None = None, *, ticket: asyncio.Future | None = None
    ) -> SpeechResult:
        """Say ``utterance`` once what is queued before it has been said: muted from before its
        first sound until ``mute_post`` after its end, unmuted on every way out.

        A failure of the TTS or the player is reported (against ``utterance.turn``, which then
        fails) and returned as ``failed``. An announcement whose TTS fails for good before any
        sound is said again by the TTS's backup, when the section has one.

        :param on_muted: awaited right after muting, before anything is synthesized.
        :param ticket: its place in the queue, taken earlier (:meth:`SpeakingGate.join`).
        """
        try:
            await self._gate.enter(utterance, ticket)
        except Dropped as exc:
            return SpeechResult("dropped", str(exc))
        try:
            if self._backends.player is None or (utterance.text is not None and self._backends.tts is None):
                return SpeechResult("dropped", "the profile has no [tts] and [player] to say it with")
            return await self._speak(utterance, on_muted)
        finally:
            self._gate.leave()

    async def _speak(self, utterance: Utterance, on_muted: Callable[[], Awaitable[None]] | None) -> SpeechResult:
        backends, turn = self._backends, utterance.turn
        self._current = utterance
        self.mute()
        muted_at = time.monotonic()
        self._barged = self._stopped = False
        failure: list[BaseException] = []
        progress = Progress(self._emit, turn, utterance.label)
        interrupted = True
        cancelled = False
        try:
            if on_muted is not None:
                await on_muted()
            try:
                player = await backends.ready(backends.player)
                audio = await self._voice.stream(utterance, muted_at, failure, progress)
            except BackendError as exc:
                return SpeechResult("failed", (await backends.report(backends.player, exc, turn)).message)
            except (OSError, ValueError) as exc:
                log.warning("cannot play %s: %s", utterance.label, exc)
                return SpeechResult("failed", str(exc))
            try:
                await self._play(player, audio, progress)
            except asyncio.CancelledError:
                cancelled = True
                raise
            except Exception as exc:
                return SpeechResult("failed", (await backends.report(backends.player, exc, turn)).message)
            finally:
                # A player that ended early (killed, stopped) leaves the stream suspended. Left to
                # the garbage collector, it and the TTS's generator inside it would each get an
                # aclose() task at once, and one of them fails with "already running".
                with contextlib.suppress(RuntimeError):  # a player still reading it from a task of its own
                    await audio.aclose()
            blame = backends.for_turn(Role.TTS, turn) if utterance.text is not None else utterance.made_by
            if failure and blame is not None:
                return SpeechResult("failed", (await backends.report(blame, failure[0], turn)).message)
            if failure:
                log.warning("%s ended early: %s", utterance.label, failure[0])
                return SpeechResult("failed", str(failure[0]))
            interrupted = self._barged or self._stopped
            await backends.succeeded(backends.player)
            if utterance.text is not None:
                await backends.succeeded(backends.for_turn(Role.TTS, turn))
            if not interrupted:
                return SpeechResult("played")
            reason = "barge-in" if self._barged else "stopped"
            if turn is not None:
                turn.fail(Outcome.INTERRUPTED, reason)
            return SpeechResult("interrupted", reason)
        finally:
            self._current = None
            await self._end(turn, progress, interrupted, immediate=cancelled or self._barged or self._stopped)

    async def stop(self) -> None:
        """Stop what is being said now (a reply too): its ``speak`` returns ``interrupted``.
        For the stop command and for utterances of priority ``interrupt``."""
        if self._current is None:
            return
        log.info("stopping %s", "the reply" if self._current.turn is not None else self._current.label)
        self._stopped = True
        await self._stop_player()

    def clear(self) -> int:
        """Drop the announcements and sounds waiting in the queue; returns how many."""
        return self._gate.clear()

    def chime(self, moment: str) -> asyncio.Task | None:
        """Play the ``[engine.sounds]`` sound of ``moment`` (``wake``, ``listening``, ``thinking``,
        ``done``, ``error``) in the background, through the queue; None when it has none.
        Returns at once (the wake sound must not hold up the turn)."""
        path = self.sounds.path(moment)
        if path is None or self._backends.player is None:
            return None
        sound = Utterance(sound=path, kind="sound")
        ticket = self._gate.join(sound)  # now: the reply asked for next plays after it
        task = asyncio.get_running_loop().create_task(self.speak(sound, ticket=ticket), name=f"magoo-{moment}-sound")
        self._chimes.add(task)
        task.add_done_callback(self._chimes.discard)
        return task

    async def close(self) -> None:
        """Shutdown: drop what waits, cancel the sounds still playing; the microphone is unmuted."""
        self.clear()
        for task in list(self._chimes):
            task.cancel()
        if self._chimes:
            await asyncio.wait(set(self._chimes))
        self.release()
        self.echo.close()

    async def barge_in(self, wake: WakeEvent) -> None:
        """A wake word was heard while speaking: stop the player; :meth:`take_barge_in` hands the
        wake to whoever starts the next turn."""
        log.info("barge-in: %s (%.2f) while speaking", wake.label, wake.score)
        self._barged = True
        self._barged_by = wake
        await self._stop_player()

    async def _stop_player(self) -> None:
        slot = self._backends.player
        player = slot.instance
        if player is not None:
            try:
                await player.stop()
            except Exception as exc:
                await self._backends.report(slot, exc)

    def take_barge_in(self) -> WakeEvent | None:
        """The wake word that interrupted the last reply, once; None when none did."""
        wake, self._barged_by = self._barged_by, None
        return wake

    def mute(self) -> None:
        """Mute the microphone until :meth:`release` (or the end of a :meth:`say`), unless
        ``[engine] mute`` keeps it open: ``false``, or ``"auto"`` while echo cancellation runs."""
        policy = self._settings.mute
        self._muted = policy if isinstance(policy, bool) else not self.echo.active

    def release(self) -> None:
        """Unmute now if muted (shutdown: a reply cut off must not leave the microphone muted)."""
        if self._muted:
            self._unmute()

    async def _play(self, player: Any, audio: AsyncIterator, progress: Progress) -> None:
        """``player.play()``, given up on when it shows no sign of life for ``reply_timeout``
        seconds while it is not waiting for the TTS: no audio taken, no start or level reported,
        not returned (a player that hangs would otherwise keep the microphone muted for good)."""
        limit = self._settings.reply_timeout
        playing = asyncio.ensure_future(player.play(audio, progress))
        try:
            while not playing.done():
                await asyncio.wait({playing}, timeout=min(0.25, limit / 4))
                quiet = time.monotonic() - progress.last_activity
                if not playing.done() and not progress.waiting_for_tts and quiet > limit:
                    with contextlib.suppress(Exception):
                        await asyncio.wait_for(player.stop(), 1.0)
                    raise BackendError(f"showed no progress for {limit:.0f} s while playing the reply")
            playing.result()
        finally:
            if not playing.done():
                playing.cancel()
                await asyncio.gather(playing, return_exceptions=True)

    async def _end(self, turn: TurnTimeline | None, progress: Progress, interrupted: bool, *, immediate: bool) -> None:
        try:
            await progress.flush()
            await self._emit("speak_end", turn=progress.turn, interrupted=interrupted)
            if not immediate:
                await asyncio.sleep(self._settings.mute_post)
        finally:
            self._unmute()

    def _unmute(self) -> None:
        self._muted = False
        self._on_unmute()
