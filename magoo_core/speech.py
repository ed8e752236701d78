"""Speech outside a turn: what plugins use to make the assistant say something now.

An :class:`Utterance` is one thing to say (text through the TTS, audio played as is, or a sound
file), for a turn or for none; everything said goes through the :class:`~magoo_core.speaker.Speaker`'s
one queue (:class:`SpeakingGate`), so a reply and an announcement never talk over each other and
each gets the same muting, speak events and barge-in.

:class:`Speech` is the plugins' handle, handed to ``magoo_on_startup(profile, speech)``.
:class:`Sounds` finds and loads the ``[engine.sounds]`` files. Everything here runs on the event
loop, except :meth:`Speech.say_soon`, which any thread may call.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
from collections import deque
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol

from .audio import AudioConverter, read_wav
from .settings import SoundSettings
from .types import AudioChunk, AudioFormat, EncodedAudio, TurnTimeline

__all__ = ["DEFAULT_SOUNDS", "SOUND_NAMES", "Activity", "Saying", "SpeakingGate", "Speech", "SpeechResult", "Sounds", "Utterance"]

log = logging.getLogger("magoo.engine")

#: the moments that may have a sound, as ``[engine.sounds]`` names them
SOUND_NAMES = tuple(SoundSettings.model_fields)
#: magoo's own sounds (generated tones, see sounds/SOURCES.md), one per moment
DEFAULT_SOUNDS = Path(__file__).resolve().parent / "sounds"
SOUND_CHUNK = 0.02  # seconds per chunk handed to the player: a player reports levels per chunk
#: seconds of silence played after a sound: a player that ends its output stream as soon as it has
#: written the last piece may cut what the sound server still holds, and a chime is all end
SOUND_TAIL = 0.2

Kind = Literal["reply", "announcement", "sound"]
Priority = Literal["queue", "interrupt"]
Status = Literal["played", "interrupted", "failed", "dropped"]


@dataclass(frozen=True)
class SpeechResult:
    """How an utterance ended.

    :param status: ``played`` (to its end), ``interrupted`` (stopped: barge-in, :meth:`Speech.stop`,
        an utterance of priority ``interrupt``), ``failed`` (the TTS or the player failed; the
        failure was reported through ``magoo_on_error``), ``dropped`` (never started: the queue was
        cleared, the engine stopped, or there was nothing to play it with).
    :param reason: why, for every status but ``played``.
    """

    status: Status
    reason: str = ""

    @property
    def played(self) -> bool:
        return self.status == "played"


@dataclass(eq=False)
class Utterance:
    """One thing to say; exactly one of ``text``, ``audio``, ``sound``.

    :param text: spoken through the ``[tts]`` backend (and so its backup, when it failed).
    :param audio: played as is: an async iterable of AudioChunk or EncodedAudio.
    :param sound: a WAV file, played without the TTS.
    :param turn: the turn it belongs to; None for speech outside a turn (its speak events then
        carry ``turn=None``).
    :param kind: ``reply``, ``announcement`` or ``sound``.
    :param priority: ``queue`` waits behind what is playing or queued; ``interrupt`` stops what is
        playing and goes first.
    :param caption: what ``magoo_on_speak_start`` gets as ``text`` instead of :attr:`label`'s
        default (a streamed reply's first sentence, an audio reply's text).
    :param made_by: the backend slot whose audio ``audio`` is (the STT or responder that replied in
        audio): a failure of the iterator is reported against it; None: only logged.
    """

    text: str | None = None
    audio: AsyncIterable[AudioChunk | EncodedAudio] | None = None
    sound: Path | None = None
    turn: TurnTimeline | None = None
    kind: Kind = "announcement"
    priority: Priority = "queue"
    caption: str | None = None
    made_by: Any = None

    def __post_init__(self) -> None:
        given = [name for name in ("text", "audio", "sound") if getattr(self, name) is not None]
        if len(given) != 1:
            raise ValueError(f"say one thing: text, audio or sound (got {', '.join(given) or 'none'})")
        if self.priority not in ("queue", "interrupt"):
            raise ValueError(f"priority is 'queue' or 'interrupt', not {self.priority!r}")

    @property
    def label(self) -> str:
        """What ``magoo_on_speak_start`` gets as ``text``: the caption when given, else the text, or
        ``<sound NAME>`` / ``<audio>``."""
        if self.caption is not None:
            return self.caption
        if self.text is not None:
            return self.text
        return f"<sound {self.sound.stem}>" if self.sound is not None else "<audio>"


class Dropped(Exception):
    """The utterance left the queue before it started (:meth:`SpeakingGate.clear`)."""


class SpeakingGate:
    """The Speaker's queue: one utterance speaks at a time, the others wait in order.

    ``interrupt`` waiters go before ``queue`` waiters; :meth:`clear` drops the waiting utterances
    that are not replies. Runs on the event loop.
    """

    def __init__(self) -> None:
        self._busy = False
        self._waiting: deque[tuple[asyncio.Future, Utterance]] = deque()

    @property
    def busy(self) -> bool:
        return self._busy

    def join(self, utterance: Utterance) -> asyncio.Future:
        """Take ``utterance``'s place in the queue now; :meth:`enter` with the returned ticket waits
        for its turn (a sound asked for before a reply plays before it, whichever task runs first)."""
        ticket = asyncio.get_running_loop().create_future()
        if not self._busy and not self._waiting:
            self._busy = True
            ticket.set_result(None)
        elif utterance.priority == "interrupt":
            self._waiting.appendleft((ticket, utterance))
        else:
            self._waiting.append((ticket, utterance))
        return ticket

    async def enter(self, utterance: Utterance, ticket: asyncio.Future | None = None) -> None:
        """Wait for the turn of ``utterance`` (of its ``ticket`` from :meth:`join`, if it has one).

        :raises Dropped: it was cleared from the queue.
        """
        ticket = ticket if ticket is not None else self.join(utterance)
        entry = (ticket, utterance)
        try:
            await ticket
        except asyncio.CancelledError:
            if entry in self._waiting:
                self._waiting.remove(entry)
            elif ticket.done() and not ticket.cancelled() and ticket.exception() is None:
                self.leave()  # it was our turn already: pass it on
            raise

    def leave(self) -> None:
        """The utterance speaking has ended: the next one starts."""
        while self._waiting:
            ticket, _ = self._waiting.popleft()
            if not ticket.done():
                ticket.set_result(None)
                return
        self._busy = False

    def clear(self) -> int:
        """Drop every waiting utterance but replies; returns how many."""
        kept: deque[tuple[asyncio.Future, Utterance]] = deque()
        dropped = 0
        for ticket, utterance in self._waiting:
            if utterance.kind == "reply" or ticket.done():
                kept.append((ticket, utterance))
            else:
                ticket.set_exception(Dropped("the queue was cleared"))
                dropped += 1
        self._waiting = kept
        return dropped


class Sounds:
    """The ``[engine.sounds]`` files, loaded once and kept in the player's format.

    :param settings: which moments have a sound (``True``: magoo's own, a path: that file);
        None: none has.
    """

    def __init__(self, settings: SoundSettings | None) -> None:
        self._paths: dict[str, Path] = {}
        self._loaded: dict[tuple[Path, AudioFormat | None], list[AudioChunk]] = {}
        self.use(settings)

    def use(self, settings: SoundSettings | None) -> None:
        """From now on, the sounds of ``settings`` (a reload); each is read again when first played."""
        settings = settings if settings is not None else SoundSettings()
        self._paths = {}
        for name in SOUND_NAMES:
            value = getattr(settings, name)
            if value is True:
                self._paths[name] = DEFAULT_SOUNDS / f"{name}.wav"
            elif isinstance(value, Path):
                self._paths[name] = value
        self._loaded = {}

    def path(self, name: str) -> Path | None:
        """The file of moment ``name`` (``wake``, ``listening`` ...); None when it has no sound."""
        return self._paths.get(name)

    @staticmethod
    def find(sound: str | Path) -> Path:
        """A sound given to :meth:`Speech.say`: one of magoo's by name (``"wake"``), or a WAV path.

        :raises ValueError: no such sound.
        """
        if isinstance(sound, str) and sound in SOUND_NAMES:
            return DEFAULT_SOUNDS / f"{sound}.wav"
        path = Path(sound)
        if not path.is_file():
            raise ValueError(f"no sound {str(sound)!r}: give one of {', '.join(SOUND_NAMES)} or the path of a WAV file")
        return path

    async def load(self, path: Path, target: AudioFormat | None) -> list[AudioChunk]:
        """The sound as chunks of :data:`SOUND_CHUNK` s, converted to ``target`` (the format the
        player is ready for) when given. Read in a thread the first time, then kept.

        :raises ValueError: not a 16-bit PCM WAV file (the message says how to convert it).
        """
        key = (path, target)
        if key not in self._loaded:
            self._loaded[key] = await asyncio.to_thread(_chunks, path, target)
        return self._loaded[key]

    async def native_format(self) -> AudioFormat | None:
        """The format of the first configured sound's file (a player without a TTS gets ready for
        it); None without sounds or when it cannot be read."""
        for path in self._paths.values():
            try:
                return (await asyncio.to_thread(read_wav, path))[0]
            except (OSError, ValueError):
                continue
        return None

    async def preload(self, target: AudioFormat | None) -> None:
        """Load every configured sound now, so the first chime does not wait for the disk."""
        for path in self._paths.values():
            try:
                await self.load(path, target)
            except (OSError, ValueError) as exc:
                log.warning("sound %s cannot be played: %s", path, exc)


def _chunks(path: Path, target: AudioFormat | None) -> list[AudioChunk]:
    fmt, pcm = read_wav(path)
    pcm += bytes(round(SOUND_TAIL * fmt.sample_rate) * fmt.channels * fmt.sample_width)
    step = max(1, round(SOUND_CHUNK * fmt.sample_rate)) * fmt.channels * fmt.sample_width
    chunks = [
        AudioChunk(pcm[i:i + step], fmt.sample_rate, fmt.channels, fmt.sample_width) for i in range(0, len(pcm), step)
    ]
    if target is None or target == fmt:
        return chunks
    converter = AudioConverter(target, max(1, round(SOUND_CHUNK * target.sample_rate)))
    out = [piece for chunk in chunks for piece in converter.convert(chunk)]
    return out + converter.flush(pad=True)


async def replay(chunks: list[AudioChunk]) -> AsyncIterator[AudioChunk]:
    """A loaded sound as the stream a player takes."""
    for chunk in chunks:
        yield chunk


class Saying(Protocol):
    """What :class:`Speech` needs of the :class:`~magoo_core.speaker.Speaker` (a Protocol, so this
    module does not import the Speaker, which imports it). Coroutines run on the event loop."""

    async def speak(self, utterance: Utterance) -> SpeechResult: ...

    async def stop(self) -> None: ...

    def clear(self) -> int: ...


class Activity(Protocol):
    """What :class:`~magoo_core.voice.Voice` tells the Speaker's progress of an utterance while it
    takes audio from the TTS (``speaker.Progress``); on the event loop."""

    waiting_for_tts: bool

    def touch(self) -> None: ...


class Speech:
    """The plugins' way to make the assistant say something now (``magoo_on_startup(speech)``).

    :param speaker: the one queue everything said goes through.
    :param sounds: the profile's sounds, and where named sounds are found.
    :param wait_for_turn: returns once no turn is in progress (an announcement of priority
        ``queue`` waits behind the turn, including its listening part).
    """

    def __init__(self, speaker: Saying, sounds: Sounds, wait_for_turn: Callable[[], Awaitable[None]]) -> None:
        self._speaker = speaker
        self._sounds = sounds
        self._wait_for_turn = wait_for_turn
        self._loop: asyncio.AbstractEventLoop | None = None
        #: how many times :meth:`stop` was called: something that repeats itself (a ringing
        #: timer) ends when this changes, even between two of its utterances
        self.stops = 0

    def open(self) -> None:
        """Called by the engine on its loop at the start of a run (``say_soon`` needs the loop)."""
        self._loop = asyncio.get_running_loop()

    def close(self) -> None:
        """The run has ended: ``say_soon`` now answers ``dropped``."""
        self._loop = None

    async def say(
        self,
        text: str | None = None,
        *,
        audio: AsyncIterable[AudioChunk | EncodedAudio] | None = None,
        sound: str | Path | None = None,
        priority: Priority = "queue",
    ) -> SpeechResult:
        """Say ``text`` through the TTS, play ``audio`` as is, or play ``sound`` (one of magoo's by
        name, ``"wake"``, ``"done"`` ..., or a WAV file's path); exactly one of them.

        Coroutine for the engine's loop; returns when it has been said (or not: see
        :class:`SpeechResult`). With ``priority="queue"`` it waits until no turn is in progress
        and nothing else is said; ``"interrupt"`` stops what is playing (a reply too) and speaks
        next. The microphone is muted as for a reply; the speak events carry ``turn=None``.

        :raises ValueError: not exactly one of text, audio, sound; an unknown sound or priority.
        """
        if self._loop is None:
            return SpeechResult("dropped", "the engine is not running")
        path = Sounds.find(sound) if sound is not None else None
        utterance = Utterance(
            text=text, audio=audio, sound=path, kind="sound" if path is not None else "announcement", priority=priority
        )
        if text is not None and not text.strip():
            return SpeechResult("dropped", "nothing to say")
        if priority == "queue":
            await self._wait_for_turn()
        else:
            await self._speaker.stop()
        return await self._speaker.speak(utterance)

    def say_soon(
        self,
        text: str | None = None,
        *,
        audio: AsyncIterable[AudioChunk | EncodedAudio] | None = None,
        sound: str | Path | None = None,
        priority: Priority = "queue",
    ) -> concurrent.futures.Future[SpeechResult]:
        """:meth:`say` from any thread (a plugin's own timer or network thread): returns at once;
        the future gets the :class:`SpeechResult`. When the engine does not run, the result is
        ``dropped``."""
        loop = self._loop
        if loop is None or loop.is_closed():
            done: concurrent.futures.Future[SpeechResult] = concurrent.futures.Future()
            done.set_result(SpeechResult("dropped", "the engine is not running"))
            return done
        return asyncio.run_coroutine_threadsafe(self.say(text, audio=audio, sound=sound, priority=priority), loop)

    async def stop(self) -> None:
        """Stop what is being said now (a reply too) and drop the announcements waiting.

        For a stop command (a stop word, a control API). A ringing timer stops ringing too."""
        self.stops += 1
        self._speaker.clear()
        await self._speaker.stop()

    def clear(self) -> int:
        """Drop the announcements and sounds waiting to be said (not what plays); returns how many."""
        return self._speaker.clear()
