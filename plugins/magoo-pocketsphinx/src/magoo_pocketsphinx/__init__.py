"""magoo-pocketsphinx: offline, streaming speech-to-text with pocketsphinx 5 and the model in its wheel.

Recognises a fixed list of commands (a JSGF grammar: fast and exact) or free English with the
full language model (slower, best effort). Where an utterance starts and ends is decided by
Silero VAD (:mod:`magoo_core.end_of_speech`, ``vad = "silero"``, the default) or by
pocketsphinx's own detector (``vad = "pocketsphinx"``). With Silero, a pause after words that
look unfinished (not yet a whole command) waits ``unfinished_silence`` instead of ``end_silence``.
pocketsphinx is imported when the backend starts, never when this module is imported.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import re
import time
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from pydantic import Field, field_validator, model_validator

from magoo_core import (
    AudioChunk,
    AudioFormat,
    Backend,
    BackendConfig,
    BackendError,
    InputFile,
    InputFolder,
    hookimpl,
    require,
)
from magoo_core.fields import Choice, Number, Seconds, StrictBool
from magoo_core.types import SpeechActivity, Transcript

from .dither import Dither
from .events import Event, WakeTail
from .pocketsphinx_utterances import FRAME_SECONDS, PRE_SPEECH, PocketsphinxUtterances
from .silero_utterances import SileroUtterances
from .unfinished import unfinished_test

if TYPE_CHECKING:
    from magoo_core.doctor import Check

INSTALL = "uv pip install magoo-pocketsphinx  (or: pip install 'pocketsphinx>=5.1,<6')"
SAMPLE_RATE = 16000
WORD = re.compile(r"[a-z']+")


def command_words(phrase: str) -> list[str]:
    """The words of a command as the dictionary spells them: lower case, punctuation dropped."""
    return WORD.findall(phrase.lower())


def commands_grammar(commands: list[str]) -> str:
    """A JSGF grammar whose one public rule is any of ``commands``, said whole."""
    alternatives = " | ".join(" ".join(command_words(c)) for c in commands)
    return f"#JSGF V1.0;\ngrammar magoo;\npublic <command> = {alternatives};\n"


class PocketsphinxSpeechToText(Backend):
    """Streams audio through one pocketsphinx decoder: partial transcripts while you speak, a
    final one when you stop.

    Pick what it can recognise with one of ``commands`` (a list of phrases), ``grammar`` (a JSGF
    file) or nothing (the full English language model, or your own ``lm``).
    """

    name: ClassVar[str] = "pocketsphinx"
    input_format = AudioFormat(SAMPLE_RATE)
    replies = False

    class Config(BackendConfig):
        commands: list[str] | None = Field(
            None,
            min_length=1,
            description=(
                "Phrases to recognise, said whole (a grammar is built from them): the most accurate"
                " mode. Every word must be in the dictionary. Unset: `grammar`, or the full language model."
            ),
        )
        grammar: InputFile | None = Field(
            None, description="A JSGF grammar file (its first public rule is used); relative paths start at the profile's folder."
        )
        lm: InputFile | None = Field(
            None, description="An n-gram language model (.lm or .lm.bin) for free speech; unset: the English model in the pocketsphinx wheel."
        )
        dictionary: InputFile | None = Field(
            None, description="A pronunciation dictionary; unset: the CMU dictionary in the pocketsphinx wheel."
        )
        hmm: InputFolder | None = Field(
            None, description="An acoustic model folder; unset: the US English model in the pocketsphinx wheel."
        )
        vad: Literal["silero", "pocketsphinx"] = Field(
            "silero",
            description=(
                "What finds the start and end of speech: Silero VAD (magoo's end of speech: its edges are"
                " exact, so end_silence can be short) or pocketsphinx's own detector (vad_mode; use"
                " end_silence = 0.6 with it)."
            ),
        )
        end_silence: Seconds(0, 5, lo_open=True) = Field(
            0.3, description="Seconds of non-speech that end an utterance whose words look finished."
        )
        unfinished_silence: Seconds(0, 10, lo_open=True) | None = Field(
            1.0,
            description=(
                "With vad = \"silero\": seconds of non-speech that end an utterance whose words look"
                " unfinished at end_silence (with commands: not yet a whole command; otherwise ending in"
                " and, for, the ...); at least end_silence. Unset: end_silence always."
            ),
        )
        max_seconds: Seconds(0.1, 600) = Field(10.0, description="Longest utterance in seconds; it is ended there.")
        partial_every: Seconds(0.01, 60) = Field(
            0.3, description="Seconds of audio between partial transcripts (only when the words changed)."
        )
        vad_mode: Choice(0, 1, 2, 3) = Field(
            3,
            description=(
                "With vad = \"pocketsphinx\": how strict its voice activity detector is, 0 (loose) to 3 (strict)."
                " Modes 0-2 take a faint hiss (white noise at -60 dBFS) for speech; 3 ignores noise up to about -50 dBFS."
            ),
        )
        dither: Number(0, 100) = Field(
            1.0,
            description=(
                "Standard deviation, in 16-bit steps, of a faint noise added to the audio; 0: none."
                " Exact digital silence (a muted or synthetic source) makes pocketsphinx drop the last words."
            ),
        )
        adapt_mean: StrictBool = Field(
            False,
            description=(
                "Carry pocketsphinx's cepstral mean (its estimate of the microphone's sound) from one"
                " utterance to the next. Off: every utterance starts from the model's mean, so the same"
                " words are heard the same way in the hundredth turn as in the first."
            ),
        )

        @field_validator("commands")
        @classmethod
        def _commands_have_words(cls, value: list[str] | None) -> list[str] | None:
            if value is not None:
                empty = [c for c in value if not command_words(c)]
                if empty:
                    raise ValueError(f"commands without words: {empty}")
            return value

        @model_validator(mode="after")
        def _one_search(self):
            chosen = [key for key in ("commands", "grammar", "lm") if getattr(self, key) is not None]
            if len(chosen) > 1:
                raise ValueError(f"give only one of commands, grammar and lm (got {', '.join(chosen)})")
            if self.unfinished_silence is not None and self.unfinished_silence < self.end_silence:
                raise ValueError(
                    f"unfinished_silence ({self.unfinished_silence:g} s) must be at least end_silence ({self.end_silence:g} s)"
                )
            return self

    @classmethod
    def doctor(cls, config: Config, section: str) -> list[Check]:
        """``magoo doctor``: the grammar, language model, dictionary and acoustic model exist; the module imports."""
        from .doctor import model_rows

        return model_rows(config, section)

    def __init__(self, config: Config) -> None:
        super().__init__(config)
        self._decoder: Any = None
        self._vad: Any = None
        self._start_mean: str | None = None  # the decoder's cepstral mean as loaded; None: it adapts
        self._worker: concurrent.futures.ThreadPoolExecutor | None = None
        self.utterances = 0
        self.empty = 0
        self.held = 0  # pauses that waited unfinished_silence (the words looked unfinished)
        self.wake_tails = 0  # utterances skipped as the wake word's own tail (see WakeTail)

    async def __aenter__(self):
        pocketsphinx = require("pocketsphinx", backend=self.name, install=INSTALL)
        # one thread owns the decoder: every call on it is serialised, even after a cancelled turn
        self._worker = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="magoo-pocketsphinx")
        try:
            self._decoder, self._vad = await self._call(self._load, pocketsphinx)
        except BaseException:
            self._worker.shutdown(wait=False)
            self._worker = None
            raise
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        if self._worker is not None:
            self._worker.shutdown(wait=True)
        self._worker = self._decoder = self._vad = None

    def _load(self, pocketsphinx: Any) -> tuple[Any, Any]:
        cfg = self.config
        options: dict[str, Any] = {"loglevel": "FATAL", "samprate": SAMPLE_RATE}
        for key, option in (("hmm", "hmm"), ("dictionary", "dict"), ("lm", "lm")):
            path = getattr(cfg, key)
            if path is not None:
                if not path.exists():
                    raise BackendError(f"pocketsphinx: the {key} {path} does not exist. Fix `{key}` in [stt].", retryable=False)
                options[option] = str(path)
        if cfg.grammar is not None:
            if not cfg.grammar.is_file():
                raise BackendError(f"pocketsphinx: the grammar {cfg.grammar} does not exist. Fix `grammar` in [stt].", retryable=False)
            options["jsgf"] = str(cfg.grammar)
        if cfg.commands is not None:
            options["lm"] = None
        try:
            decoder = pocketsphinx.Decoder(**options)
        except (RuntimeError, ValueError) as exc:
            what = f"the grammar {cfg.grammar}" if cfg.grammar is not None else "its model"
            raise BackendError(
                f"pocketsphinx could not load {what} ({exc}): check that every word is in the dictionary"
                " and the files are a pocketsphinx model.",
                retryable=False,
            ) from None
        if cfg.commands is not None:
            unknown = sorted({w for c in cfg.commands for w in command_words(c) if decoder.lookup_word(w) is None})
            if unknown:
                raise BackendError(
                    f"pocketsphinx: these command words are not in the dictionary: {', '.join(unknown)}."
                    " Spell them as ordinary English words, or give a `dictionary` that has them.",
                    retryable=False,
                )
            decoder.add_jsgf_string("commands", commands_grammar(cfg.commands))
            decoder.activate_search("commands")
        # pocketsphinx updates the mean after every utterance from all it heard, the quiet tail
        # included; over many turns that drift costs words (a clip heard whole once, then only
        # "what time"), so by default every utterance starts from this one
        self._start_mean = None if cfg.adapt_mean else decoder.get_cmn()
        if cfg.vad == "silero":
            from magoo_core.end_of_speech import load_vad

            return decoder, load_vad()
        return decoder, pocketsphinx.Vad(cfg.vad_mode, SAMPLE_RATE, FRAME_SECONDS)

    async def _call(self, function: Any, *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self._worker, function, *args)

    async def transcribe(self, audio: AsyncIterator[AudioChunk]) -> AsyncIterator[Transcript | SpeechActivity]:
        """Yield SpeechActivity at each start and end of speech, partial Transcripts while it
        lasts and one final Transcript per utterance ("" when nothing matched).

        After a wake word (``audio.continuous`` False) it returns after the first utterance, or
        when the audio ends; on a continuous stream it goes on, utterance after utterance. An
        utterance that began in the stream's pre-roll (``audio.preroll``) and matched nothing is
        the wake word's own tail: it is skipped, and the command is still awaited.
        """
        if self._decoder is None:
            raise BackendError("pocketsphinx: transcribe() before the backend was started")
        continuous = getattr(audio, "continuous", False)
        wake_tail = WakeTail(0.0 if continuous else getattr(audio, "preroll", 0.0), self._count_wake_tail)
        utterances = await self._call(self._utterances)
        await self._call(utterances.reset)
        async for chunk in audio:
            ended = chunk.timestamp or time.monotonic()
            events = wake_tail.drop(await self._call(utterances.feed, chunk.pcm))
            for item in self._items(events, ended, utterances.heard):
                yield item
                if isinstance(item, Transcript) and item.final and not continuous:
                    return
        events = wake_tail.drop(await self._call(utterances.finish))
        if not continuous and not any(event.kind == "final" for event in events):
            events.append(Event("final", utterances.heard, "", None))
        for item in self._items(events, time.monotonic(), utterances.heard):
            yield item

    def _utterances(self) -> PocketsphinxUtterances | SileroUtterances:
        """The voice activity and decoding of one stream, as ``vad`` says (on the decoder's thread:
        a Silero detector is reset there)."""
        cfg = self.config
        if cfg.vad == "pocketsphinx":
            return PocketsphinxUtterances(self._decoder, self._vad, cfg, self._start_mean)
        return SileroUtterances(
            self._decoder, self._vad, cfg, self._start_mean,
            unfinished=unfinished_test(cfg.commands, command_words), dither=Dither(cfg.dither), pre_speech=PRE_SPEECH,
            held=self._count_hold,
        )

    def _count_hold(self) -> None:
        self.held += 1  # on the decoder's thread; stats() reads a whole int

    def _count_wake_tail(self) -> None:
        self.wake_tails += 1

    def _items(self, events: list[Event], ended: float, heard: float) -> list[Transcript | SpeechActivity]:
        """Events in audio time → items in monotonic time (``ended`` is when audio time ``heard`` was captured)."""
        items: list[Transcript | SpeechActivity] = []
        for event in events:
            if event.kind in ("start", "end"):
                items.append(SpeechActivity(event.kind == "start", ended - (heard - event.at)))
            else:
                final = event.kind == "final"
                if final:
                    self.utterances += 1
                    self.empty += not event.text
                items.append(Transcript(event.text, final=final, confidence=event.confidence))
        return items

    def stats(self) -> Mapping[str, float]:
        return {"utterances": self.utterances, "empty": self.empty, "held": self.held, "wake_tails": self.wake_tails}


@hookimpl
def magoo_register_stt(register):
    register(PocketsphinxSpeechToText)
