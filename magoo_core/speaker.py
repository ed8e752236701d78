"""Saying something: the TTS into the player, with the microphone muted, and barge-in.

:class:`Speaker` is the one owner of muting (``mute_pre`` before the first sound, ``mute_post``
after the real end, unmuted on every way out: success, TTS error, player error, cancellation,
shutdown) and of barge-in (a wake word heard while speaking stops the player; the engine starts
the next turn from it). Everything that is said goes through :meth:`Speaker.say`, so later ways of
speaking (announcements, streamed sentences, sounds) get the same muting and events.
Runs on the event loop; a player may report progress from its own thread (:class:`Progress`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from .errors import BackendError
from .lifecycle import Backends, Emit, TurnDropped, unexpected
from .profile import EngineSettings
from .roles import TTS_OUTPUTS
from .types import AudioChunk, EncodedAudio, Outcome, TurnTimeline, WakeEvent

log = logging.getLogger("magoo.engine")


class Progress:
    """The speaker's side of :class:`~magoo_core.roles.PlaybackProgress`: thread-safe, ordered.

    Calls from any thread are moved to the loop; events are emitted by one pump task in the
    order the player reported them.
    """

    def __init__(self, emit: Emit, turn: TurnTimeline, text: str) -> None:
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
        self._turn.first_audio = time.monotonic()
        self._events.put_nowait(("speak_start", {"text": self._text, "turn": self._turn.turn}))

    def _on_played(self, level: float, duration: float) -> None:
        self.touch()
        if not self.has_started:
            self._on_started()
        self._events.put_nowait(("speak_chunk", {"level": level, "duration": duration, "turn": self._turn.turn}))

    async def _run(self) -> None:
        while (item := await self._events.get()) is not None:
            await self._emit(item[0], **item[1])

    async def flush(self) -> None:
        """Wait until every reported event has been emitted."""
        self._events.put_nowait(None)
        await self._pump


class Speaker:
    """Speaks text through the ``[tts]`` and ``[player]`` backends with the microphone muted.

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

    @property
    def muted(self) -> bool:
        """The microphone is muted: from the start of :meth:`say` until ``mute_post`` after the end."""
        return self._muted

    @property
    def can_speak(self) -> bool:
        """The profile has a TTS and a player."""
        return self._backends.tts is not None and self._backends.player is not None

    async def prepare(self) -> None:
        """Tell a player that can get ready for a kind of audio (start its decoder) what the TTS
        yields, so the first reply does not wait for that. Optional on both sides; a failure here
        is only logged: the player then gets ready at the first reply, as without it."""
        tts_slot, player_slot = self._backends.tts, self._backends.player
        tts = tts_slot.instance if tts_slot is not None else None
        player = player_slot.instance if player_slot is not None else None
        output, expect = getattr(tts, "output_format", None), getattr(player, "expect", None)
        if output is None or not callable(expect):
            return
        try:
            await asyncio.wait_for(expect(output), self._settings.hook_timeout)
        except Exception as exc:
            log.warning("%s %s could not get ready for %s: %s", player_slot.spec.section, player_slot.spec.backend, output, exc)

    async def say(self, turn: TurnTimeline, text: str, on_muted: Callable[[], Awaitable[None]]) -> None:
        """Synthesize and play ``text`` for ``turn`` with the microphone muted; unmute on every way out.

        :param on_muted: awaited right after muting, before anything is synthesized (the engine
            switches to ``speaking`` there).
        :raises TurnDropped: the TTS or the player failed; the failure has been reported.
        """
        backends = self._backends
        self.mute()
        muted_at = time.monotonic()
        self._barged = False
        await on_muted()
        tts_failure: list[BaseException] = []
        progress = Progress(self._emit, turn, text)
        interrupted = True
        cancelled = False
        try:
            player = await backends.ready_or_drop(backends.player, turn)
            audio = self._synthesize(text, muted_at, tts_failure, progress)
            try:
                await self._play(player, audio, progress)
            except asyncio.CancelledError:
                cancelled = True
                raise
            except Exception as exc:
                await backends.report(backends.player, exc, turn)
                raise TurnDropped from None
            finally:
                # A player that ended early (killed, stopped) leaves the stream suspended. Left to
                # the garbage collector, it and the TTS's generator inside it would each get an
                # aclose() task at once, and one of them fails with "already running".
                with contextlib.suppress(RuntimeError):  # a player still reading it from a task of its own
                    await audio.aclose()
            if tts_failure:
                await backends.report(backends.tts, tts_failure[0], turn)
                raise TurnDropped
            interrupted = self._barged
            if self._barged:
                turn.fail(Outcome.INTERRUPTED, "barge-in")
            await backends.succeeded(backends.player)
            await backends.succeeded(backends.tts)
        finally:
            await self._end(turn, progress, interrupted, immediate=cancelled or self._barged)

    async def barge_in(self, wake: WakeEvent) -> None:
        """A wake word was heard while speaking: stop the player; :meth:`take_barge_in` hands the
        wake to whoever starts the next turn."""
        log.info("barge-in: %s (%.2f) while speaking", wake.label, wake.score)
        self._barged = True
        self._barged_by = wake
        slot = self._backends.player
        player = slot.instance
        if player is not None:
            try:
                await player.stop()
            except Exception as exc:
                await self._backends.report(slot, exc)

    async def stop(self) -> None:
        """Stop what is being said now (shutdown): the player is stopped; :meth:`say` returns."""
        slot = self._backends.player
        if not self._muted or slot is None or slot.instance is None:
            return
        try:
            await slot.instance.stop()
        except Exception as exc:
            await self._backends.report(slot, exc)

    def take_barge_in(self) -> WakeEvent | None:
        """The wake word that interrupted the last reply, once; None when none did."""
        wake, self._barged_by = self._barged_by, None
        return wake

    def mute(self) -> None:
        """Mute the microphone until :meth:`release` (or the end of a :meth:`say`)."""
        self._muted = True

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

    async def _synthesize(
        self, text: str, muted_at: float, failure: list[BaseException], progress: Progress
    ) -> AsyncIterator[AudioChunk | EncodedAudio]:
        """The TTS stream as the player sees it: held until the mic has been muted ``mute_pre``
        seconds; a TTS failure ends the stream (what was synthesized still plays) and is kept in
        ``failure`` so it is reported against the TTS backend, not the player. A TTS that gives
        no next piece within ``reply_timeout`` seconds has failed."""
        first = True
        limit = self._settings.reply_timeout
        try:
            progress.waiting_for_tts = True  # also while a restarting TTS comes back
            tts = await self._backends.ready(self._backends.tts)
            async with contextlib.aclosing(tts.synthesize(text)) as pieces:
                while True:
                    progress.waiting_for_tts = True
                    try:
                        async with asyncio.timeout(limit):
                            piece = await anext(pieces)
                    except StopAsyncIteration:
                        break
                    except TimeoutError:
                        raise BackendError(f"gave no audio within {limit:.0f} s") from None
                    finally:
                        progress.waiting_for_tts = False
                    progress.touch()
                    if not isinstance(piece, TTS_OUTPUTS):
                        raise unexpected(piece, "AudioChunk or EncodedAudio")
                    if first:
                        first = False
                        wait = muted_at + self._settings.mute_pre - time.monotonic()
                        if wait > 0:
                            await asyncio.sleep(wait)
                    yield piece
        except (asyncio.CancelledError, GeneratorExit):
            raise
        except Exception as exc:
            failure.append(exc)
        finally:
            progress.waiting_for_tts = False
            progress.touch()  # the player now has until reply_timeout to finish what it holds

    async def _end(self, turn: TurnTimeline, progress: Progress, interrupted: bool, *, immediate: bool) -> None:
        try:
            await progress.flush()
            await self._emit("speak_end", turn=turn.turn, interrupted=interrupted)
            if not immediate:
                await asyncio.sleep(self._settings.mute_post)
        finally:
            self._unmute()

    def _unmute(self) -> None:
        self._muted = False
        self._on_unmute()
