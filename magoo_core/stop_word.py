"""The stop word: "stop" said while the assistant speaks ends what it says, without the wake word.

:class:`StopWord` spots one word (``[engine.stop_word] word``, "stop" by default) in the microphone's
audio with pocketsphinx's keyword search (``kws``), the English model inside the ``pocketsphinx``
wheel (x86_64 and aarch64). No microWakeWord or openWakeWord "stop" model ships in a package
(``pymicro-wakeword`` 2.5 has alexa, hey_jarvis, hey_mycroft and okay_nabu; ``openwakeword`` 0.6
downloads its models at run time), so a keyword spotter that needs no model file is what runs here,
and any English word in pocketsphinx's dictionary can be the stop word.

It listens only while something plays (:meth:`StopWord.hear` is told so with every chunk), and
not during the first ``settle_s`` seconds of playing after it starts (echo cancellation converges on
the first replies, and its residue then is heard as "stop"); each
time the playing starts, the spotter starts afresh, so a word half heard during the last reply
cannot complete in the next. When the word is heard, ``on_stop`` runs on the event loop: the
engine passes :meth:`Speech.stop <magoo_core.speech.Speech.stop>`, which stops the reply, the
announcement or the ringing timer (a stopped reply ends its turn as ``interrupted``, with no new turn).

Threads: :meth:`hear` runs on the event loop and only hands the chunk over; the spotting runs on
one worker thread of its own (``magoo-stop-word``), in order. About 7 % of one core here while
something plays, nothing otherwise.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from .audio import AudioConverter
from .settings import StopWordSettings
from .types import AudioChunk, AudioFormat

__all__ = ["StopWord", "load_spotter"]

log = logging.getLogger("magoo.engine")

FORMAT = AudioFormat(16000)


def load_spotter(settings: StopWordSettings) -> Any:
    """A pocketsphinx decoder searching for ``settings.word`` (blocks ~0.3 s: the model is read).

    :raises ImportError: pocketsphinx is not installed.
    :raises ValueError: a word of ``settings.word`` is not in pocketsphinx's dictionary (the message
        names it and what to do).
    """
    import pocketsphinx

    settings = settings.resolved(echo_cancel=True) if settings.threshold is None else settings
    decoder = pocketsphinx.Decoder(keyphrase=settings.word, kws_threshold=settings.threshold, loglevel="FATAL", samprate=16000)
    unknown = [word for word in settings.word.split() if decoder.lookup_word(word) is None]
    if unknown:
        raise ValueError(
            f"[engine.stop_word] word: {', '.join(unknown)} is not in pocketsphinx's English dictionary; choose an ordinary English word"
        )
    return decoder


class StopWord:
    """Spots the stop word while something plays; calls ``on_stop`` on the loop when it is heard.

    :param settings: ``[engine.stop_word]``.
    :param on_stop: awaited on the event loop when the word is heard while playing (at most once per
        playing: the spotter starts afresh when the next one starts).
    :param spotter: a loaded decoder (:func:`load_spotter`); by default one is loaded now.
    :param echo_cancel: the microphone is echo-cancelled: the defaults of an unset ``threshold`` and
        ``settle_s`` (:meth:`StopWordSettings.resolved`).
    """

    def __init__(
        self, settings: StopWordSettings, on_stop: Callable[[], Awaitable[None]], spotter: Any = None, *, echo_cancel: bool = True
    ) -> None:
        self.settings = settings = settings.resolved(echo_cancel)
        self._on_stop = on_stop
        self._spotter = spotter if spotter is not None else load_spotter(settings)
        # pocketsphinx moves its cepstral mean after every utterance towards what it heard (mostly
        # the assistant's voice here); each playing starts from the model's own mean instead, which
        # hears "stop" far better (espeak-ng voices: 21 of 24 instead of 11)
        self._start_mean = self._spotter.get_cmn()
        self._converter = AudioConverter(FORMAT)
        self._worker = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="magoo-stop-word")
        self._loop: asyncio.AbstractEventLoop | None = None
        self._playing = False
        self._stopping: set[asyncio.Task] = set()
        self._closed = False
        self._in_utterance = False  # worker thread only
        self._fired = False  # worker thread only: the word was heard during this playing
        self._settling = float(settings.settle_s)  # worker thread only: seconds of playing still deaf
        #: how many times the word stopped something
        self.heard = 0

    @classmethod
    def of_settings(
        cls, settings: StopWordSettings | None, on_stop: Callable[[], Awaitable[None]], *, echo_cancel: bool = False
    ) -> StopWord | None:
        """The stop word a profile asks for; None when it asks for none, or (with one line saying
        what to do) when pocketsphinx is missing or the word is unknown: the run goes on without it."""
        if settings is None or not settings.enabled:
            return None
        try:
            return cls(settings, on_stop, echo_cancel=echo_cancel)
        except ImportError as exc:
            log.warning("[engine.stop_word] is off: %s. Install pocketsphinx (uv pip install magoo-pocketsphinx)", exc)
        except ValueError as exc:
            log.warning("%s; the stop word is off", exc)
        return None

    def hear(self, chunk: AudioChunk, playing: bool) -> None:
        """One chunk of the microphone, and whether something plays now. Call it on the event loop
        for every chunk; it returns at once (the spotting runs on the worker). Audio heard while
        nothing plays is not spotted."""
        if self._closed:
            return
        if self._loop is None:
            self._loop = asyncio.get_running_loop()
        if playing:
            self._worker.submit(self._spot, chunk)
        elif self._playing:
            self._worker.submit(self._end)
        self._playing = playing

    def _spot(self, chunk: AudioChunk) -> None:
        if self._fired:
            return
        if self._settling > 0:
            # the echo canceller's first seconds of playing leave residue the spotter hears as "stop"
            # (bench/duplex.py: every false stop on the cleaned signal came in the first ~25 s)
            self._settling -= chunk.duration
            return
        if not self._in_utterance:
            self._spotter.set_cmn(self._start_mean)
            self._spotter.start_utt()
            self._in_utterance = True
        for piece in self._converter.convert(chunk):
            self._spotter.process_raw(piece.pcm, False, False)
        if self._spotter.hyp() is not None:
            self._end()
            self._fired = True  # deaf until this playing ends
            self._loop.call_soon_threadsafe(self._stop)

    def _end(self) -> None:
        if self._in_utterance:
            self._spotter.end_utt()
            self._in_utterance = False
        self._converter.reset()
        self._fired = False

    def _stop(self) -> None:
        if not self._playing:  # it ended by itself meanwhile
            return
        self.heard += 1
        log.info("stop word '%s' heard: stopping what is said", self.settings.word)
        task = asyncio.get_running_loop().create_task(self._on_stop(), name="magoo-stop-word")
        self._stopping.add(task)
        task.add_done_callback(self._stopping.discard)

    async def close(self) -> None:
        """Wait for the stop in progress, if any, and the worker's last chunk; the spotter is freed
        after that (freeing it under a running search would crash the process). Once is enough."""
        if self._closed:
            return
        self._closed = True
        if self._stopping:
            await asyncio.wait(set(self._stopping))
        await asyncio.to_thread(self._worker.shutdown, wait=True)
        self._spotter = None
