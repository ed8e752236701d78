"""The profile's own settings: ``[magoo]`` (who this assistant is) and ``[engine]`` (timing and
robustness of the turn loop, with its ``[engine.sounds]`` table).

Plain pydantic models with no knowledge of backends or plugins, so the engine's parts import
them without importing the profile loader. Every number is bounded (:mod:`magoo_core.fields`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator
from pydantic_core import PydanticCustomError

from .fields import Count, Milliseconds, Number, Seconds, StrictBool, Template, describe_ranges

__all__ = [
    "DuckingSettings", "EchoCancelSettings", "EngineSettings", "MagooSettings", "NoiseSettings", "SoundSettings", "StopWordSettings", "TimerSettings",
]


class MagooSettings(BaseModel):
    """The ``[magoo]`` section: who this assistant is."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field("magoo", max_length=100, description="name of this assistant, shown in logs and status")
    log_level: Literal["debug", "info", "warning", "error"] = Field(
        "info", description="least severe log messages that are written"
    )
    log_format: Literal["auto", "text", "journal", "json"] = Field(
        "auto",
        description=(
            "how the log is written to stderr: text, journal (priority prefixes for journald) or json"
            " (one object per line); auto: journal under systemd, else text"
        ),
    )


class SoundSettings(BaseModel):
    """The ``[engine.sounds]`` table: a short sound at each moment of a turn, or none.

    Each key is ``true`` (magoo's default sound, :mod:`magoo_core.sounds`), a path to a WAV file
    (relative to the profile's folder), or left out (no sound).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    wake: StrictBool | Path | None = Field(None, description="sound when the wake word is heard")
    listening: StrictBool | Path | None = Field(
        None, description="sound when the follow-up window opens (listening without the wake word)"
    )
    thinking: StrictBool | Path | None = Field(None, description="sound when the command was heard and the reply is awaited")
    done: StrictBool | Path | None = Field(None, description="sound when a turn ended well")
    error: StrictBool | Path | None = Field(None, description="sound when a turn failed (a backend error)")

    @field_validator("*", mode="after")
    @classmethod
    def _existing_wav(cls, value: Any, info: ValidationInfo) -> Any:
        base = (info.context or {}).get("base_dir")
        if not isinstance(value, Path) or base is None:  # a model built in code: checked when played
            return value
        path = (Path(base) / value).resolve()
        if not path.is_file():
            message = f"no file at {path}: give a WAV file (relative paths start at the profile's folder), or true for magoo's sound"
            raise PydanticCustomError("missing_file", "{message}", {"message": message})
        return path


class TimerSettings(BaseModel):
    """The ``[engine.timers]`` table: how a finished timer rings and where running timers are kept.

    The timers themselves are set by a language model through the ``timer_set`` tool
    (:mod:`magoo_core.timers`); these settings apply to every timer of the profile.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    say: Template("name") = Field(
        "The {name} timer is done.", description="what is said when a timer ends; {name} is its name (\"pasta\", \"5 minute\")"
    )
    say_late: Template("name", "ago") = Field(
        "The {name} timer ended {ago} ago, while I was off.",
        description="what is said at start for a timer that ended while magoo was not running; {ago}: how long ago",
    )
    sound: StrictBool | Path = Field(
        True, description="a sound before the words: true (magoo's timer beeps), a WAV path, or false (none)"
    )
    ring_for: Seconds(0, 3600) = Field(
        60.0, description="seconds a finished timer keeps ringing unless stopped; 0: it rings once"
    )
    ring_every: Seconds(1, 600) = Field(
        6.0, description="seconds from the start of one ring to the start of the next (with half a second of quiet at least)"
    )
    late_for: Seconds(0, 604800) = Field(
        900.0,
        description="a timer that ended while magoo was not running rings at start when it ended at most this many"
        " seconds ago; older ones are dropped with a log line",
    )
    max_timers: Count(1, 100) = Field(20, description="timers running at once, at most")
    store: StrictBool | Path = Field(
        True,
        description="where running timers are kept across restarts: true (next to the profile, named after it:"
        " kitchen.timers.json for kitchen.toml), a JSON file's path, or false (not kept)",
    )

    @field_validator("sound", "store", mode="after")
    @classmethod
    def _resolved(cls, value: Any, info: ValidationInfo) -> Any:
        base = (info.context or {}).get("base_dir")
        if not isinstance(value, Path) or base is None:
            return value
        path = (Path(base) / value).resolve()
        if info.field_name == "sound" and not path.is_file():
            message = f"no file at {path}: give a WAV file (relative paths start at the profile's folder), true or false"
            raise PydanticCustomError("missing_file", "{message}", {"message": message})
        return path


class NoiseSettings(BaseModel):
    """The ``[engine.noise]`` table: WebRTC noise suppression and automatic gain on the microphone,
    before wake scoring and speech-to-text (:mod:`magoo_core.noise`; needs ``webrtc-noise-gain``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: StrictBool = Field(True, description="clean the microphone; false: the table is kept but not used")
    suppression: Count(0, 4) = Field(2, description="noise suppression level: 0 off, 1 low ... 4 very high")
    auto_gain: Count(0, 31) = Field(
        0, description="automatic gain: its target level in dB below full scale (1-31); 0: off. Quiet speech comes out about 12 dB louder"
    )


class StopWordSettings(BaseModel):
    """The ``[engine.stop_word]`` table: a word that stops what is being said, without the wake word
    (:mod:`magoo_core.stop_word`; pocketsphinx keyword search)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: StrictBool = Field(True, description="listen for the stop word while something plays")
    word: str = Field(
        "stop", min_length=1, max_length=60, pattern=r"^[a-z' ]+$",
        description="the word (or short phrase) in lowercase English; every word must be in pocketsphinx's dictionary",
    )
    threshold: Number(1e-50, 1e50) | None = Field(
        None,
        description="pocketsphinx's keyword threshold: higher misses more and stops falsely less; unset: 1e-30 with"
        " [engine.echo_cancel] (measured on the cleaned signal), 1e-10 without",
    )
    settle_s: Number(0, 3600) | None = Field(
        None,
        description="seconds of playing after the start before the word is listened for (echo cancellation converges"
        " meanwhile); unset: 30 with [engine.echo_cancel], 0 without",
    )

    def resolved(self, echo_cancel: bool) -> StopWordSettings:
        """These settings with ``threshold`` and ``settle_s`` filled in for a microphone with or
        without echo cancellation (what ``bench/duplex.py`` and ``bench/stop_word.py`` measured)."""
        threshold = self.threshold if self.threshold is not None else (1e-30 if echo_cancel else 1e-10)
        settle_s = self.settle_s if self.settle_s is not None else (30.0 if echo_cancel else 0.0)
        return self.model_copy(update={"threshold": threshold, "settle_s": settle_s})


class DuckingSettings(BaseModel):
    """The ``[engine.ducking]`` table: other programs' sound is lowered while the assistant listens
    to a command and while it speaks (:mod:`magoo_core.ducking`; PulseAudio or PipeWire, ``pulsectl``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: StrictBool = Field(True, description="lower other programs' sound; false: the table is kept but not used")
    amount_db: Number(0, 96) = Field(15.0, description="how much other streams are lowered, in dB")
class EchoCancelSettings(BaseModel):
    """The ``[engine.echo_cancel]`` table: the speaker's own sound taken out of the microphone
    (:mod:`magoo_core.echo_cancel`), so it can stay open while magoo speaks (``[engine] mute``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: StrictBool = Field(True, description="cancel the echo (the table's presence turns it on; false: off)")
    method: Literal["speex", "webrtc"] = Field(
        "speex",
        description="speex: speexdsp's filter (needs only libspeexdsp1; keeps the user's voice over a reply, see"
        " docs/duplex.md); webrtc: WebRTC's AEC3 (needs magoo[echo-cancel])",
    )
    reference: str = Field(
        "@DEFAULT_MONITOR@", min_length=1, max_length=200,
        description="the PulseAudio/PipeWire source that carries what the speaker plays: the output sink's monitor",
    )
    delay: Literal["auto"] | Milliseconds(0, 1000) = Field(
        "auto", description="ms the echo lags the reference; auto: measured by cross-correlation, and kept up to date"
    )
    max_delay: Seconds(0.01, 2) = Field(0.5, description="seconds the measured delay may reach, at most")
    tail: Seconds(0.02, 1) = Field(0.4, description="seconds of room echo the speex filter covers (speex only)")


class EngineSettings(BaseModel):
    """The ``[engine]`` section: timing and robustness of the turn loop.

    Every number is bounded (:mod:`magoo_core.fields`); the intervals' lower bounds are those of
    the tests, which tick fast: a heartbeat writes one log line, so real setups keep it at seconds.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    mute_pre: Seconds(0, 5) = Field(
        0.2, description="seconds the microphone is muted before the reply's first sound"
    )
    mute_post: Seconds(0, 10) = Field(
        0.5, description="seconds the microphone stays muted after the sound really ended"
    )
    mute: StrictBool | Literal["auto"] = Field(
        "auto",
        description="mute the microphone while speaking; auto: mute unless echo cancellation is on and running",
    )
    barge_in: StrictBool | Literal["voice"] = Field(
        False,
        description="a wake word while speaking stops the reply (the wake detector keeps listening while muted); "
        '"voice": the user speaking does too, while the microphone is open (echo cancellation running)',
    )
    barge_in_speech: Seconds(0.1, 2) = Field(
        0.5, description='seconds of speech over a reply that stop it, with barge_in = "voice"',
        json_schema_extra={"reload": "live"},
    )
    preroll: Seconds(0, 10) = Field(
        0.5, description="seconds of audio from before the wake word handed to speech-to-text"
    )
    follow_up: Seconds(0, 60) = Field(
        0.0,
        description="seconds after a reply during which speech is taken without the wake word; 0: off "
        "(a reply may still ask for a window, which then lasts 5 s)",
    )
    capture_timeout: Seconds(0.1, 300) = Field(
        10.0, description="seconds the engine listens for a command after the wake word, at most"
    )
    reply_timeout: Seconds(0.1, 600) = Field(
        30.0, description="seconds to wait for a reply after the final transcript, at most"
    )
    speakable_replies: StrictBool = Field(
        True,
        description="strip markdown, code fences, URLs and JSON punctuation from the reply before text-to-speech",
    )
    max_reply_chars: Count(1, 100_000) = Field(
        4000, description="characters of a reply spoken at most; the rest is dropped, with one log line"
    )
    muted_audio: Literal["silence", "drop"] = Field(
        "silence", description="what continuous speech-to-text gets while the microphone is muted"
    )
    heartbeat_interval: Seconds(0.01, 86400) = Field(60.0, description="seconds between two heartbeat events")
    status_file: Path | None = Field(
        None,
        description="write the status as JSON to this file (atomically) while running; relative to the profile's folder",
    )
    status_interval: Seconds(0.01, 3600) = Field(5.0, description="seconds between two writes of status_file")
    save_clips: Path | None = Field(
        None,
        description="keep the audio of every wake word (pre-roll and command) as WAV files in this folder, relative to"
        " the profile's folder (docs/tuning.md); unset: none kept",
    )
    save_near_misses: StrictBool = Field(
        False, description="with save_clips, also keep 3 s around every near miss (a score of half the threshold or more)"
    )
    clips_max_mb: Number(0.01, 1_000_000) = Field(
        100.0, description="megabytes of saved clips kept at most; the oldest are deleted first"
    )
    clips_max_files: Count(1, 1_000_000) = Field(500, description="saved clips kept at most; the oldest are deleted first")
    hook_timeout: Seconds(0.01, 300) = Field(5.0, description="seconds the engine waits for one async event hook")
    shutdown_timeout: Seconds(0.1, 300) = Field(
        5.0, description="seconds the engine waits for backends to stop at shutdown"
    )
    max_failures: Count(1, 1000) = Field(
        3, description="consecutive failures of a backend before it is restarted"
    )
    restart_backoff: Seconds(0.001, 3600) = Field(
        1.0, description="seconds before the first restart of a backend, doubled each time"
    )
    restart_backoff_max: Seconds(0.001, 86400) = Field(60.0, description="seconds between restarts, at most")
    exit_after_restarts: Count(0, 10000) = Field(
        10,
        description=(
            "backend restarts within restart_window that make magoo exit with an error, so its service"
            " manager starts it afresh; 0: never"
        ),
    )
    restart_window: Seconds(0.001, 604800) = Field(
        600.0, description="seconds over which exit_after_restarts counts"
    )
    watch_profile: StrictBool = Field(
        True,
        description="magoo run reloads the profile when its file (or the .env beside it) changes, as on SIGHUP;"
        " false: only on SIGHUP",
    )
    echo_cancel: EchoCancelSettings | None = Field(
        None, description="[engine.echo_cancel]: enabled, method, reference, delay; unset: no echo cancellation"
    )
    sounds: SoundSettings | None = Field(
        None,
        description="[engine.sounds]: wake, listening, thinking, done, error: true (magoo's sound), a WAV path, or unset",
    )
    timers: TimerSettings | None = Field(
        None,
        description="[engine.timers]: how a finished timer rings (say, sound, ring_for, ring_every) and where timers"
        " are kept (store); unset: the defaults",
    )
    noise: NoiseSettings | None = Field(
        None, description="[engine.noise]: noise suppression and automatic gain on the microphone (suppression, auto_gain); unset: off"
    )
    stop_word: StopWordSettings | None = Field(
        None, description="[engine.stop_word]: a word (word, threshold) that stops a reply, announcement or ring; unset: off"
    )
    ducking: DuckingSettings | None = Field(
        None, description="[engine.ducking]: other programs' sound lowered by amount_db while listening and speaking; unset: off"
    )

    @field_validator("save_clips", mode="after")
    @classmethod
    def _clips_folder(cls, value: Path | None, info: ValidationInfo) -> Path | None:
        base = (info.context or {}).get("base_dir")
        if value is None or base is None:  # a model built in code: relative to the working folder
            return value
        folder = (Path(base) / value).resolve()
        if folder.exists() and not folder.is_dir():
            message = f"{folder} is a file: give a folder for the clips (it is created when missing)"
            raise PydanticCustomError("not_a_folder", "{message}", {"message": message})
        return folder


describe_ranges(MagooSettings)
describe_ranges(TimerSettings)
describe_ranges(NoiseSettings)
describe_ranges(StopWordSettings)
describe_ranges(DuckingSettings)
describe_ranges(EchoCancelSettings)
describe_ranges(EngineSettings)
