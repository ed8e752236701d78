"""A reply that arrives as it is written: cut into sentences, each spoken as soon as it is complete.

A responder may answer with an async iterator of text deltas (a language model's tokens).
:func:`sentences` cuts them into sentences, each made speakable on its own; :func:`pipelined` hands
each sentence to the TTS and yields one continuous audio stream for the player, synthesizing
sentence N+1 while sentence N plays, so the first sound waits only for the first sentence.
Runs on the event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

from .errors import BackendError
from .lifecycle import unexpected
from .roles import TTS_OUTPUTS
from .sentences import sentence_ends
from .speakable import speakable, terminal_safe
from .types import Reply

T = TypeVar("T")
log = logging.getLogger("magoo.engine")

#: what the probe appends to see whether the text so far ends a sentence: the start of a next one
_NEXT = "A"


class SentenceCutter:
    """Text deltas in, complete sentences out (the rules of :func:`magoo_core.sentences.split_sentences`).

    A sentence is complete once its end mark is followed by white space, or at a line break; the
    next word is not waited for, so "'Really?' she asked" arriving as it is written becomes two
    sentences (the cost of speaking the first sentence without waiting for the second). Not
    thread-safe; each call costs time linear in the unfinished sentence.
    """

    def __init__(self) -> None:
        self._rest = ""

    def feed(self, delta: str) -> list[str]:
        """The sentences that ``delta`` completes, stripped, in order (often none)."""
        self._rest += delta
        ends = [end for end in sentence_ends(self._rest + _NEXT) if end <= len(self._rest)]
        if not ends:
            return []
        done, self._rest = self._rest[: ends[-1]], self._rest[ends[-1] :]
        starts = [0, *ends[:-1]]
        return [s for s in (done[a:b].strip() for a, b in zip(starts, ends, strict=True)) if s]

    def finish(self) -> list[str]:
        """The end of the text: what remains is the last sentence (none when only white space)."""
        rest, self._rest = self._rest.strip(), ""
        return [rest] if rest else []


async def sentences(
    deltas: AsyncIterable[str | Reply],
    *,
    max_chars: int,
    clean: bool,
    timeout: float | None = None,
    heard: list[str] | None = None,
    closing: list[Reply] | None = None,
) -> AsyncIterator[str]:
    """The sentences to say for a streamed reply, as each becomes complete.

    :param deltas: the responder's text deltas; anything else than ``str`` raises TypeError,
        except, with ``closing``, a last ``Reply(text="")`` (its ``follow_up`` is the reply's).
    :param closing: the stream's closing ``Reply`` is appended to it; an item after it raises.
    :param max_chars: the bound on what is said (``[engine] max_reply_chars``); past it the rest
        of the reply is read (so ``heard`` is whole) but not said.
    :param clean: make each sentence speakable (:func:`magoo_core.speakable.speakable`), else only
        terminal-safe. Markup that spans sentences (a code fence) is cleaned per sentence.
    :param timeout: seconds the responder may take for each delta; TimeoutError past it.
    :param heard: the raw deltas are appended to it (the whole reply text, for the ``reply`` event).
    """
    cutter = SentenceCutter()
    said = 0
    iterator = aiter(deltas)
    while True:
        try:
            async with asyncio.timeout(timeout):
                delta = await anext(iterator)
        except StopAsyncIteration:
            done = cutter.finish()
            delta = None
        else:
            if closing:
                raise TypeError("a streamed reply's closing Reply(text=\"\") must be its last item")
            if isinstance(delta, Reply) and closing is not None:
                if delta.text or delta.audio is not None or delta.deltas is not None:
                    raise TypeError('a streamed reply may end with a Reply(text=""), not one with text or audio in it')
                closing.append(delta)
                continue
            if not isinstance(delta, str):
                raise TypeError(f"a streamed reply yields text (str), not {type(delta).__name__}")
            if heard is not None:
                heard.append(delta)
            done = cutter.feed(delta)
        for sentence in done:
            text = speakable(sentence) if clean else terminal_safe(sentence).strip()
            if text and said < max_chars:
                if len(text) > max_chars - said:  # the last words that fit, not half a word
                    cut = text[: max_chars - said + 1]
                    text = cut.rsplit(None, 1)[0] if " " in cut else cut[:-1]
                    log.warning("the streamed reply is longer than %d characters; the rest is not said ([engine] max_reply_chars)", max_chars)
                said += len(text) + 1
                if text:
                    yield text
        if delta is None:
            return


async def pipelined(
    items: AsyncIterable[str], synthesize: Callable[[str], AsyncIterator[T]], *, ahead: int = 1
) -> AsyncIterator[T]:
    """One stream of the audio of every item, in order; while item N's audio is consumed, the
    audio of up to ``ahead`` next items is synthesized into memory.

    :param items: the texts (sentences), as they come.
    :param synthesize: the TTS: a fresh async iterator of audio per text.
    :raises: whatever ``items`` or ``synthesize`` raised, once the audio before it was yielded.
    Closing the stream early cancels the synthesis in progress.
    """
    if ahead < 1:
        raise ValueError(f"ahead must be at least 1, not {ahead}")
    # one queue per item, in order; the bound on the outer queue is how far synthesis runs ahead
    pending: asyncio.Queue[asyncio.Queue | BaseException | None] = asyncio.Queue(ahead)

    async def produce() -> None:
        try:
            async for text in items:
                audio: asyncio.Queue = asyncio.Queue()
                await pending.put(audio)
                try:
                    async with contextlib.aclosing(synthesize(text)) as pieces:
                        async for piece in pieces:
                            audio.put_nowait(piece)
                finally:
                    audio.put_nowait(_Done)
        except asyncio.CancelledError:
            raise
        except BaseException as exc:  # handed to the consumer, raised after the audio before it
            await pending.put(exc)
            return
        await pending.put(None)

    producer = asyncio.get_running_loop().create_task(produce(), name="magoo-reply-tts")
    try:
        while (audio := await pending.get()) is not None:
            if isinstance(audio, BaseException):
                raise audio
            while (piece := await audio.get()) is not _Done:
                yield piece
    finally:
        producer.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await producer


class _Done:
    """The end of one item's audio."""


class SpokenSentences:
    """The audio of a streamed reply, for the Speaker: each sentence through the TTS, one ahead.

    :param sentences: what to say, as it comes (:func:`sentences`).
    :param tts: awaited before each sentence: the TTS instance to use now (after a restart).
    :param timeout: seconds the TTS may take for each piece of audio.

    A failure of the TTS ends the audio after the audio before it and is kept in :attr:`failure`
    (for the Speaker to report against the ``[tts]`` backend); the sentences after it are not
    read. :attr:`said` lists the sentences whose audio the player has started to take, in
    order (what a listener heard of a reply cut short). Runs on the event loop.
    """

    def __init__(self, sentences: AsyncIterable[str], tts: Callable[[], Awaitable[Any]], timeout: float) -> None:
        self._sentences = sentences
        self._tts = tts
        self._timeout = timeout
        #: the TTS's failure, if it failed
        self.failure: BaseException | None = None
        #: the sentences whose audio has gone to the player (at least its first piece)
        self.said: list[str] = []
        self.audio: AsyncIterator = self._noting(pipelined(self._until_failed(), self._synthesize))

    async def _noting(self, audio: AsyncIterator[Any]) -> AsyncIterator[Any]:
        """``audio`` without the sentence marks, each noted in :attr:`said` as the player reaches it."""
        async with contextlib.aclosing(audio):
            async for piece in audio:
                if isinstance(piece, _Said):
                    self.said.append(piece.text)
                else:
                    yield piece

    async def _until_failed(self) -> AsyncIterator[str]:
        async for sentence in self._sentences:
            if self.failure is not None:
                return
            yield sentence

    async def _synthesize(self, text: str) -> AsyncIterator[Any]:
        try:
            tts = await self._tts()
            yield _Said(text)
            async with contextlib.aclosing(tts.synthesize(text)) as pieces:
                while True:
                    try:
                        async with asyncio.timeout(self._timeout):
                            piece = await anext(pieces)
                    except StopAsyncIteration:
                        return
                    except TimeoutError:
                        raise BackendError(f"gave no audio within {self._timeout:.0f} s") from None
                    if not isinstance(piece, TTS_OUTPUTS):
                        raise unexpected(piece, "AudioChunk or EncodedAudio")
                    yield piece
        except (asyncio.CancelledError, GeneratorExit):
            raise
        except Exception as exc:
            self.failure = exc


class _Said:
    """In :class:`SpokenSentences`' audio, before a sentence's first piece: the player reached it."""

    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text
