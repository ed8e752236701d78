"""What a backend of each role must provide at run time.

A backend class has a short ``name``, a nested pydantic ``Config`` (a :class:`BackendConfig`:
extra keys forbidden, every field described) and takes that config in ``__init__``. Backends that
hold resources open them in ``__aenter__`` and release them in ``__aexit__``; the engine enters
each backend once before the first turn and leaves it at shutdown (and around a restart).

Subclassing :class:`Backend` gives the no-op defaults; the Protocols below are what the engine
actually relies on, so a plugin may also implement them from scratch.
"""

from __future__ import annotations

import enum
import functools
import inspect
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, ClassVar, Protocol, runtime_checkable

from pydantic import AfterValidator, BaseModel, ConfigDict, PrivateAttr, ValidationInfo, field_validator, model_validator
from pydantic_core import PydanticCustomError

from .fields import describe_ranges
from .types import AudioChunk, AudioFormat, EncodedAudio, Reply, SpeechActivity, Transcript, WakeEvent


class Role(enum.StrEnum):
    """The seven roles; the value is the profile section's name (``[[actuators]]`` for actuators).

    Everything else the core knows about a role is its row of :data:`ROLES`.
    """

    AUDIO_SOURCE = "audio_source"
    WAKE = "wake"
    STT = "stt"
    RESPONDER = "responder"
    TTS = "tts"
    PLAYER = "player"
    ACTUATOR = "actuators"

    @property
    def info(self) -> RoleInfo:
        """This role's row of :data:`ROLES`."""
        return _BY_ROLE[self]

    @property
    def title(self) -> str:
        """What messages call a backend of this role ("speech-to-text", "actuator")."""
        return self.info.title


class BackendConfig(BaseModel):
    """Base of every backend's ``Config``: strict, frozen, and profile-aware.

    Type numbers, booleans and templates with :mod:`magoo_core.fields` (``Seconds(0.1, 300)``,
    ``StrictBool``, ``Template("text")``): strict, finite and bounded, with the range appended
    to the field's description.

    Fields typed ``pathlib.Path`` (alone, optional or in a list) are resolved against the
    profile's folder when they are relative, so ``path = "clips/hello.wav"`` means the file next
    to the profile wherever magoo is started from.

    :meth:`variable` names the environment variable a field was read from, for messages that must
    say which key to fix without showing it.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True, defer_build=True)

    _variables: dict[str, str] = PrivateAttr(default_factory=dict)

    @model_validator(mode="wrap")
    @classmethod
    def _remember_variables(cls, data: Any, handler: Any) -> Any:
        config = handler(data)
        if isinstance(data, BackendConfig):
            config._variables = dict(data._variables)
        elif isinstance(data, Mapping):
            config._variables = {name: value.variable for name, value in data.items() if getattr(value, "variable", "")}
        return config

    def variable(self, field: str) -> str:
        """The environment variable ``field`` was read from (``{ env = "NAME" }``); "" when the
        profile wrote the value itself, or the config was built in code."""
        return self._variables.get(field, "")

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        super().__pydantic_init_subclass__(**kwargs)
        describe_ranges(cls)  # `magoo backends --options` shows each number's bounds

    @field_validator("*", mode="after")
    @classmethod
    def _resolve_relative_paths(cls, value: Any, info: ValidationInfo) -> Any:
        base = (info.context or {}).get("base_dir")
        if base is None:
            return value
        if isinstance(value, Path) and not value.is_absolute():
            return (Path(base) / value).resolve()
        if isinstance(value, list) and any(isinstance(v, Path) for v in value):
            return [(Path(base) / v).resolve() if isinstance(v, Path) and not v.is_absolute() else v for v in value]
        return value


def _existing(value: Path, info: ValidationInfo, *, folder: bool) -> Path:
    context = info.context or {}
    base = context.get("base_dir")
    if base is None:  # a Config built in code, not from a profile: the backend checks when it starts
        return value
    exists = Path.is_dir if folder else Path.is_file
    path = value if value.is_absolute() else Path(base) / value
    try:
        path = path.resolve()
        if exists(path):
            return path
    except (OSError, ValueError):  # a name too long, a NUL byte: no such file either
        pass
    what = "folder" if folder else "file"
    message = f"no {what} at {path}"
    target = context.get("target_dir")
    if not value.is_absolute():
        message += f" (relative paths start at the profile's folder, {base})"
        if target is not None and exists(Path(target) / value):
            message += (
                f"; it is beside the file the profile links to, in {target}: write that path, absolute,"
                f" or copy the {what}"
            )
    raise PydanticCustomError(f"missing_{what}", "{message}", {"message": message})


def existing_file(value: Path, info: ValidationInfo) -> Path:
    """The check ``InputFile`` runs, for a validator that finds a path inside a longer value.

    :returns: the path resolved against the profile's folder, or ``value`` itself for a config
        built in code (no ``base_dir`` in the validation context).
    :raises PydanticCustomError: no file there; the message names the resolved path.
    """
    return _existing(value, info, folder=False)


def _existing_folder(value: Path, info: ValidationInfo) -> Path:
    return _existing(value, info, folder=True)


#: A path to a file the backend reads when it starts (a WAV file, a model): a profile that names a
#: missing file fails ``magoo check`` and ``magoo run`` at once, with the file's resolved path.
#: Relative paths resolve against the profile's folder, like every ``Path`` of a ``BackendConfig``.
InputFile = Annotated[Path, AfterValidator(existing_file)]

#: A folder the backend reads when it starts (an acoustic model's directory): like ``InputFile``,
#: a profile that names a missing folder (or a file where a folder belongs) fails at load.
InputFolder = Annotated[Path, AfterValidator(_existing_folder)]


class Backend:
    """Convenience base class: stores the config and provides no-op lifecycle methods."""

    name: ClassVar[str]
    Config: ClassVar[type[BackendConfig]] = BackendConfig

    def __init__(self, config: BackendConfig) -> None:
        self.config = config

    async def __aenter__(self):
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        return None

    def stats(self) -> Mapping[str, float]:
        """Counters for the heartbeat (frames, overflows, restarts ...); cheap, called on the loop."""
        return {}

    def describe_turn(self) -> str | None:
        """What this backend did since it was last asked, in a few words for ``magoo run``'s
        turn-by-turn story ("the reply (2.1 s) is in out/reply-1.wav"); None: nothing to tell.
        Called on the event loop when a turn ends, while ``magoo run`` shows the story."""
        return None


@runtime_checkable
class AudioSource(Protocol):
    """Delivers captured audio.

    ``stream()`` is an async generator that yields chunks until cancelled (a live device) or until
    the audio ends (a file). A device backend whose driver calls back from its own thread hands
    the buffer over with :class:`magoo_core.audio.CaptureQueue`, which never blocks that thread.
    Raising :class:`~magoo_core.errors.BackendError` from ``stream()`` makes the engine restart
    the source with backoff.

    Optional attributes the engine reads: ``live`` (default True) — audio arrives in real time;
    False lets the engine read the source in lock-step with turns (a file read as fast as
    possible). ``finite`` (default False) — the audio legitimately ends (a file); for a source
    that is not finite, the end of ``stream()`` is a failure and the source is reopened.
    ``healthy`` (default True) — read for each chunk after a failure: False while the source
    cannot yet tell its audio from a silent fallback, so that a reopen onto one (a USB microphone
    still unplugged) is not announced as a recovery.
    """

    name: ClassVar[str]

    def stream(self) -> AsyncIterator[AudioChunk]: ...


@runtime_checkable
class WakeDetector(Protocol):
    """Scores audio frames and reports detections.

    ``process()`` is synchronous CPU work: the engine calls it from its single wake worker thread,
    one frame at a time, in order, with chunks already in ``input_format`` and exactly
    ``frame_samples`` frames long (when that is not None). ``reset()`` is called on the same
    thread after a detection is handled and whenever the microphone is unmuted, so stale audio
    never fires twice.

    A detector that scores elsewhere (a Wyoming wake server, ``[wake] wyoming``) is *remote*: its
    ``process()`` must not wait for the network. It hands the frame to its own I/O (its event loop
    task, through ``loop.call_soon_threadsafe``) and returns a detection that arrived since the
    previous call, or None. The detection's ``WakeEvent.timestamp`` is the ``timestamp`` of the
    frame that held the wake word (not of the frame being processed when the answer came), so
    the engine anchors the pre-roll there and hands the STT all audio since, up to
    ``LATE_DETECTION`` seconds of audio late (:mod:`magoo_core.wake_worker`). ``reset()`` must
    drop detections still in flight. A lost connection is raised from the next ``process()`` as
    a ``BackendError``, so the engine restarts the detector (its ``__aenter__`` reconnects).

    Optional, so that ``magoo run`` can tell how near a wake word came (and the debug log can
    show it): ``scores`` — a ``Mapping[str, float]``, each model's score (0..1) in the last frame
    given to ``process()``, keyed by label (what the profile calls the wake word; the model's
    key when it has no label); empty before the first frame; None for a backend that has no
    scores (Porcupine answers yes or no). ``thresholds`` — a ``Mapping[str, float]``, the score
    each of those labels must reach to wake. Both are read on the wake worker thread right after
    each ``process()``, must be cheap, and are not kept past the next frame. A backend without
    them keeps working: it is told as one that reports no scores.

    Optional classmethod ``labels(config) -> Collection[str] | None``: every label the detector's
    ``WakeEvent``s can carry with ``config`` (None: it cannot tell before it runs). Called while the
    profile loads, from the config only; ``magoo check`` reports a ``by_wake`` table no label matches.
    """

    name: ClassVar[str]
    input_format: AudioFormat
    frame_samples: int | None

    def process(self, chunk: AudioChunk) -> WakeEvent | None: ...

    def reset(self) -> None: ...


class AudioStream(AsyncIterator[AudioChunk]):
    """The audio the engine hands to ``SpeechToText.transcribe``: an async iterator of chunks
    that also says what kind of stream it is.

    :param continuous: True with no wake detector: one endless stream that holds turn after
        turn. False after a wake word: one utterance (pre-roll first), ended by the engine when
        the turn's capture time is up or its final transcript arrived. A backend that streams
        to a server uses it to stop sending after the utterance was committed.
    :param preroll: seconds at the start of the stream captured up to the wake word's own frame
        (its tail may be in them: speech that starts there and matches nothing is the wake word,
        not the command); 0 on a continuous stream or in a follow-up window.
    """

    def __init__(self, chunks: AsyncIterator[AudioChunk], *, continuous: bool, preroll: float = 0.0) -> None:
        self._chunks = chunks
        self.continuous = continuous
        self.preroll = preroll

    def __aiter__(self) -> AudioStream:
        return self

    async def __anext__(self) -> AudioChunk:
        return await anext(self._chunks)

    async def aclose(self) -> None:
        close = getattr(self._chunks, "aclose", None)
        if close is not None:
            await close()


@runtime_checkable
class SpeechToText(Protocol):
    """Turns audio into transcripts (and, when ``replies`` is True, into replies as well).

    ``transcribe(audio)`` consumes chunks in ``input_format`` and yields :class:`Transcript`
    (partial, then final), optional :class:`SpeechActivity` boundaries and, for backends that
    answer by themselves, :class:`Reply`. ``audio`` is an :class:`AudioStream`. After a wake
    word the engine gives it one utterance (pre-roll first) and ends the iterator when the
    turn's capture time is up; it should then yield its final transcript. With no wake detector
    the engine gives it one endless stream (``audio.continuous``) and reads one turn after
    another from it. A backend that replies by itself yields the final transcript of a turn
    before its final reply; a final reply without any transcript is spoken too.

    A reply may be given as sound (``Reply(text, audio=...)``, played as is) or as it is written
    (``Reply("", deltas=...)``, spoken from its first sentence on). After a wake word the engine
    closes ``transcribe()`` as soon as it has the final reply, before it reads that reply's
    ``audio`` or ``deltas``: feed them from the connection's own reader, not from the
    ``transcribe()`` generator. The engine closes (``aclose()``) a reply's ``audio`` and
    ``deltas`` once it is done with them, also part-way (barge-in, a stop, shutdown): that is
    where a backend cancels the rest of the response on its server. A failure raised by them is
    reported against this backend.
    """

    name: ClassVar[str]
    input_format: AudioFormat
    replies: bool

    def transcribe(
        self, audio: AsyncIterator[AudioChunk]
    ) -> AsyncIterator[Transcript | Reply | SpeechActivity]: ...


@runtime_checkable
class Responder(Protocol):
    """Turns the user's final transcript into the text to say; None means "say nothing".

    ``respond`` returns a :class:`Reply`, None, or, for a reply that is spoken while it is being
    written (a language model's tokens), an async iterator of text deltas (``str``): an
    ``async def respond`` with ``yield`` in it, or one that returns such an iterator. The engine
    speaks a streamed reply from its first complete sentence on, the TTS one sentence ahead of the
    player (:mod:`magoo_core.reply_stream`); each delta may take up to ``reply_timeout`` seconds.
    A streamed reply may yield, as its LAST item, a ``Reply(text="")``: its ``follow_up`` (True
    asks for the follow-up window, False keeps it closed, None leaves it to the profile) is the
    reply's; a Reply with text, or anything after it, fails the responder. ``magoo_on_speak_start``
    gets the first sentence as the text being spoken.

    A :class:`Reply` may also carry ``audio`` (the reply as sound, played as is: muting, levels,
    barge-in; a failure of its iterator is reported against the responder) or ``deltas`` (the
    reply as it is written, spoken like a stream).

    A ``respond`` that has a parameter named ``context`` is called with ``context=`` the turn's
    :class:`TurnContext` (which wake word started it, its number, whether it is a follow-up);
    one without it is called with the transcript alone, as before.

    Optional, for a responder that remembers the conversation: ``heard(turn, text)`` (sync or
    async, at most 1 s) is called on the loop when a streamed reply of turn number ``turn`` was
    cut short (barge-in, a stop), after its deltas were read to their end, with ``text`` the
    sentences whose sound had started, as spoken (made speakable), joined by spaces; ``""``
    when none had. Raising is logged.
    """

    name: ClassVar[str]

    async def respond(self, transcript: Transcript) -> Reply | AsyncIterator[str | Reply] | None: ...


def takes_context(responder: object) -> bool:
    """Whether ``responder.respond`` has a parameter named ``context``;
    looked up once per ``respond`` function (``**kwargs`` does not count: it may forward them)."""
    return _takes_context(getattr(type(responder), "respond", None) or responder.respond)


@functools.cache
def _takes_context(respond: Callable[..., Any]) -> bool:
    try:
        parameters = inspect.signature(respond).parameters.values()
    except (TypeError, ValueError):  # a builtin or C function: called as before
        return False
    return any(p.name == "context" and p.kind is not inspect.Parameter.POSITIONAL_ONLY for p in parameters)


@runtime_checkable
class TextToSpeech(Protocol):
    """Turns reply text into audio as a stream, so playback can begin before synthesis ends.

    Optional attribute the engine reads once started: ``output_format`` — what ``synthesize()``
    yields, when known in advance: an :class:`AudioFormat` for PCM ``AudioChunk``s, or the codec
    name of its ``EncodedAudio`` (``"mp3"``, ``"opus"``). It is passed to the player's ``expect``.

    Optional classmethod ``output_kind(config) -> AudioFormat | str | None``: the same answer from
    the config alone, before anything starts (``None``: unknown until then). ``magoo check`` pairs
    it with the player's ``plays`` so a profile whose player cannot play this TTS's audio fails at
    load; when both exist it must equal the started backend's ``output_format``.
    """

    name: ClassVar[str]

    def synthesize(self, text: str) -> AsyncIterator[AudioChunk | EncodedAudio]: ...


class PlaybackProgress(Protocol):
    """What a player reports while it plays; provided by the engine. Safe to call from any thread."""

    def started(self) -> None:
        """Sound is really coming out of the speaker now (not: bytes were written)."""

    def played(self, level: float, duration: float) -> None:
        """A piece of audio of ``duration`` seconds with RMS ``level`` (0..1 of full scale) is audible now."""


@runtime_checkable
class Player(Protocol):
    """Plays a stream of audio and returns when the sound has really ended.

    ``play()`` must call ``progress.started()`` when sound begins and ``progress.played()`` as it
    goes (20–50 times a second is plenty). ``stop()`` interrupts the current ``play()`` at once
    (barge-in); ``play()`` then returns normally. A player that dies raises BackendError.

    Optional: ``async def expect(output)`` — called once on the loop after everything started,
    with the TTS's ``output_format``, so a player that starts a decoder per kind of audio can
    have the right one waiting before the first reply. Must return quickly (work may go on in
    the background).

    Optional classmethod ``plays(config, output) -> str | None``: can a player with ``config``
    play what a TTS announces with ``output_kind`` (an ``AudioFormat`` or a codec name)? ``None``
    when it can, else the reason in a few words ("it records only PCM or WAV audio"), which
    ``magoo check`` reports at the player's section for every TTS/player pair, backups included.
    Called while the profile loads, from the config only: it must not open devices or start processes.
    """

    name: ClassVar[str]

    async def play(
        self, audio: AsyncIterator[AudioChunk | EncodedAudio], progress: PlaybackProgress
    ) -> None: ...

    async def stop(self) -> None: ...


@runtime_checkable
class Actuator(Protocol):
    """Reacts to events: implements any ``magoo_on_*`` hooks as ``@hookimpl`` methods.

    The running instance is registered with the plugin manager, so its hooks see its own config.
    """

    name: ClassVar[str]


STT_OUTPUTS = (Transcript, Reply, SpeechActivity)
TTS_OUTPUTS = (AudioChunk, EncodedAudio)


@dataclass(frozen=True)
class RoleInfo:
    """What the core knows about one role: one row of :data:`ROLES`, read by the plugin loader
    (``register_hook``, ``methods``), the profile (sections, which are required, which repeat)
    and the engine's backends (one slot per backend, in table order).

    :param role: the role; its value is the profile section's name.
    :param title: what messages call a backend of it ("speech-to-text backend 'x'").
    :param protocol: what the engine relies on at run time (a ``runtime_checkable`` Protocol).
    :param methods: the methods a registered class must have (checked at registration).
    :param register_hook: the ``magoo_register_*`` hook in :mod:`magoo_core.hookspecs` that registers its backends.
    :param required: None when the section is optional; else what every profile needs it for, in
        the words of a missing section's message ("an audio source").
    :param many: its section is an array of tables (``[[actuators]]``), each a backend; else one table.
    :param words: what people may call its section, for the did-you-mean of an unknown one.
    :param by_wake: its section may have ``by_wake`` tables: other settings for the turns a given
        wake word starts (``[responder.by_wake.alexa]``), each its own backend instance.
    """

    role: Role
    title: str
    protocol: type
    methods: tuple[str, ...]
    register_hook: str
    required: str | None = None
    many: bool = False
    words: tuple[str, ...] = ()
    by_wake: bool = False

    @property
    def section(self) -> str:
        """The section as a profile writes it: ``[stt]``, ``[[actuators]]``."""
        return f"[[{self.role.value}]]" if self.many else f"[{self.role.value}]"


#: Every role, in the order backends start (actuators last) and profiles list them.
ROLES: tuple[RoleInfo, ...] = (
    RoleInfo(
        Role.AUDIO_SOURCE, "audio source", AudioSource, ("stream",), "magoo_register_audio_sources", required="an audio source",
        words=("audio", "mic", "microphone", "input", "capture", "recording"),
    ),
    RoleInfo(
        Role.WAKE, "wake detector", WakeDetector, ("process", "reset"), "magoo_register_wake_detectors",
        words=("wakeword", "hotword", "keyword", "trigger"),
    ),
    RoleInfo(
        Role.STT, "speech-to-text", SpeechToText, ("transcribe",), "magoo_register_stt",
        required="a speech-to-text backend",
        words=("speech", "transcribe", "transcription", "recognition", "recognizer", "asr", "listen"),
    ),
    RoleInfo(
        Role.RESPONDER, "responder", Responder, ("respond",), "magoo_register_responders",
        words=("reply", "answer", "llm", "chat", "brain", "ai", "bot", "intent"), by_wake=True,
    ),
    RoleInfo(
        Role.TTS, "text-to-speech", TextToSpeech, ("synthesize",), "magoo_register_tts",
        words=("speech", "voice", "speak", "say", "synthesis", "synthesizer"), by_wake=True,
    ),
    RoleInfo(
        Role.PLAYER, "player", Player, ("play", "stop"), "magoo_register_players",
        words=("speaker", "speakers", "output", "playback", "play", "sound"),
    ),
    RoleInfo(
        Role.ACTUATOR, "actuator", Actuator, (), "magoo_register_actuators", many=True,
        words=("actuator", "servo", "led", "gpio", "light", "motor"),
    ),
)
_BY_ROLE = {info.role: info for info in ROLES}
