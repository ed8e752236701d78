"""Where the audio of an utterance comes from: the TTS (or its backup), audio given as is, a sound.

:class:`Voice` turns an :class:`~magoo_core.speech.Utterance` into the stream the player plays,
held until the microphone has been muted ``mute_pre`` seconds. The
:class:`~magoo_core.speaker.Speaker` plays it. Runs on the event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

from .errors import BackendError
from .lifecycle import Backends, unexpected
from .settings import EngineSettings
from .roles import TTS_OUTPUTS
from .speech import Sounds, Utterance, replay
from .types import AudioChunk, AudioFormat, EncodedAudio

if TYPE_CHECKING:
    from .speaker import Progress


class Voice:
    """The audio of utterances, for the Speaker.

    :param sounds: the loaded ``[engine.sounds]`` and named sounds.
    """

    def __init__(self, backends: Backends, settings: EngineSettings, sounds: Sounds) -> None:
        self._backends = backends
        self._settings = settings
        self._sounds = sounds

    def player_format(self) -> AudioFormat | None:
        """The PCM format the player is ready for (the TTS's), so a sound needs no new decoder."""
        tts = self._backends.tts.instance if self._backends.tts is not None else None
        output = getattr(tts, "output_format", None)
        return output if isinstance(output, AudioFormat) else None

    async def stream(
        self, utterance: Utterance, muted_at: float, failure: list[BaseException], progress: Progress
    ) -> AsyncIterator[AudioChunk | EncodedAudio]:
        """What the player plays for ``utterance``: the TTS's audio, the given audio, or the sound.

        A failure of the TTS or of given audio ends the stream (what came before still plays) and
        is kept in ``failure``; the stream touches ``progress`` as pieces arrive.

        A sound starts at once (muting takes no time; ``mute_pre`` would only delay the chime);
        given audio waits ``mute_pre`` like a reply."""
        if utterance.text is not None:
            return self._synthesize(utterance.text, muted_at, failure, progress, backup=utterance.turn is None)
        if utterance.sound is not None:
            chunks = await self._sounds.load(utterance.sound, self.player_format())
            return self._given(replay(chunks), None, failure, progress)
        return self._given(aiter(utterance.audio), muted_at, failure, progress)

    async def _given(
        self, pieces: AsyncIterator, muted_at: float | None, failure: list[BaseException], progress: Progress
    ) -> AsyncIterator[AudioChunk | EncodedAudio]:
        """Audio given as is: checked, held ``mute_pre`` when ``muted_at`` is given; a failure of
        the iterator ends the stream and is kept in ``failure``. The iterator is closed when the
        stream ends, also early (barge-in, a stop): a backend that streams its reply from a server
        learns there to cancel the rest."""
        first = True
        try:
            async for piece in pieces:
                progress.touch()
                if not isinstance(piece, TTS_OUTPUTS):
                    raise unexpected(piece, "AudioChunk or EncodedAudio")
                if first and muted_at is not None:
                    wait = muted_at + self._settings.mute_pre - time.monotonic()
                    if wait > 0:
                        await asyncio.sleep(wait)
                first = False
                yield piece
        except (asyncio.CancelledError, GeneratorExit):
            raise
        except Exception as exc:
            failure.append(exc)
        finally:
            progress.touch()
            await close_quietly(pieces)

    async def _synthesize(
        self, text: str, muted_at: float, failure: list[BaseException], progress: Progress, *, backup: bool = False
    ) -> AsyncIterator[AudioChunk | EncodedAudio]:
        """The TTS stream as the player sees it: held until the mic has been muted ``mute_pre``
        seconds; a TTS failure ends the stream (what was synthesized still plays) and is kept in
        ``failure`` so it is reported against the TTS backend, not the player. A TTS that gives
        no next piece within ``reply_timeout`` seconds has failed.

        :param backup: when the TTS fails for good before its first piece and its section has a
            ``backup``, report the failure now (the backup takes over) and synthesize again with it.
        """
        first = True
        limit = self._settings.reply_timeout
        slot = self._backends.tts
        try:
            while True:
                try:
                    progress.waiting_for_tts = True  # also while a restarting TTS comes back
                    tts = await self._backends.ready(slot)
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
                    return
                except BackendError as exc:
                    if not (backup and first and not exc.retryable and slot.spec.backup is not None):
                        raise
                    backup = False
                    await self._backends.report(slot, exc)  # hands the section over to its backup
        except (asyncio.CancelledError, GeneratorExit):
            raise
        except Exception as exc:
            failure.append(exc)
        finally:
            progress.waiting_for_tts = False
            progress.touch()  # the player now has until reply_timeout to finish what it holds


async def close_quietly(iterator: object) -> None:
    """``iterator.aclose()`` when it has one; what it raises is no longer anyone's business."""
    close = getattr(iterator, "aclose", None)
    if close is not None:
        with contextlib.suppress(Exception):
            await close()
