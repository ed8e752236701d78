"""magoo-porcupine: Picovoice Porcupine wake words (pvporcupine 1.9.5 without a key, or 2+ with one)."""

from __future__ import annotations

import asyncio
import difflib
import logging
import math
import sys
import threading
from array import array
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import Field, SecretStr, field_validator, model_validator

from magoo_core import AudioChunk, AudioFormat, Backend, BackendConfig, BackendError, InputFile, WakeEvent, hookimpl
from magoo_core.fields import Ratio, Seconds
from magoo_core.audio import Rechunker

from ._library import KEY_HELP, Library, load_library, translate

if TYPE_CHECKING:
    from magoo_core.doctor import Check

__all__ = ["Library", "PorcupineDetector"]

log = logging.getLogger("magoo.porcupine")

#: What Porcupine takes in every version so far; the engine's handle confirms it at start.
FRAME_LENGTH = 512
SAMPLE_RATE = 16000
#: Silence fed through Porcupine by reset(): longer than any built-in keyword, so audio from
#: before the reset is out of its window and cannot fire (Porcupine has no reset of its own).
RESET_SILENCE = 1.0

Sensitivity = Ratio()


def keyword_name(path: Path) -> str:
    """``hey-magoo_en_raspberry-pi_v3_0_0.ppn`` -> ``hey-magoo`` (pvporcupine's own convention)."""
    return path.name.split("_")[0].removesuffix(".ppn")


@dataclass(frozen=True)
class _Keyword:
    model: str
    label: str
    sensitivity: float
    path: Path | None = None  # None: a built-in keyword


class PorcupineDetector(Backend):
    """Picovoice Porcupine: built-in keywords or .ppn files; pvporcupine 1.9.5 needs no AccessKey."""

    name: ClassVar[str] = "porcupine"

    class Config(BackendConfig):
        keywords: list[str] = Field(
            default_factory=list,
            description=(
                'Built-in keywords to listen for ("alexa", "jarvis", "computer", "porcupine", "bumblebee", '
                '"terminator", "picovoice", ...; the list depends on the pvporcupine version).'
            ),
        )
        keyword_paths: list[InputFile] = Field(
            default_factory=list,
            description=(
                "Keyword files (.ppn) made for this Porcupine version and platform, after the built-in "
                "keywords; relative paths are relative to the profile."
            ),
        )
        sensitivities: Sensitivity | list[Sensitivity] = Field(
            0.5,
            description=(
                "0..1, one for all keywords or a list with one per keyword (built-in first, then files); "
                "higher misses less and false-triggers more."
            ),
        )
        labels: list[str] = Field(
            default_factory=list,
            description="What to call each keyword in events and logs, one per keyword; empty uses the keyword names.",
        )
        access_key: SecretStr | None = Field(
            None,
            description=(
                'Picovoice AccessKey, needed by pvporcupine 2 and later (write { env = "PV_ACCESS_KEY" }); '
                "ignored by 1.9.5."
            ),
        )
        model_path: InputFile | None = Field(
            None, description="Porcupine model parameters (.pv) instead of the one bundled with pvporcupine."
        )
        library_path: InputFile | None = Field(
            None,
            description=(
                "Porcupine's native library instead of the one pvporcupine picks, for boards it does not "
                "recognise (pvporcupine 1.9.5 on a Raspberry Pi 5)."
            ),
        )
        refractory: Seconds(0, 60) = Field(
            2.0, description="Seconds of audio after a detection during which further detections are ignored."
        )

        @model_validator(mode="after")
        def _consistent(self) -> PorcupineDetector.Config:
            count = len(self.keywords) + len(self.keyword_paths)
            if count == 0:
                raise ValueError('name at least one keyword: keywords = ["jarvis"] or keyword_paths = ["x.ppn"]')
            if isinstance(self.sensitivities, list) and len(self.sensitivities) != count:
                raise ValueError(
                    f"sensitivities has {len(self.sensitivities)} values for {count} keywords: give one per keyword "
                    "(built-in first, then files) or a single number"
                )
            if self.labels and len(self.labels) != count:
                raise ValueError(f"labels has {len(self.labels)} values for {count} keywords: give one per keyword")
            names = [*self.keywords, *(keyword_name(p) for p in self.keyword_paths)]
            twice = sorted({n for n in names if names.count(n) > 1})
            if twice:
                raise ValueError(f"keyword {', '.join(map(repr, twice))} is listed twice (keywords, keyword_paths)")
            return self

        @field_validator("keyword_paths", mode="before")
        @classmethod
        def _no_empty_path(cls, value: Any) -> Any:
            # "" would resolve to the profile's folder and be reported as a keyword named after it
            if isinstance(value, list) and any(isinstance(item, str) and not item.strip() for item in value):
                raise ValueError("keyword_paths has an empty entry: name a .ppn keyword file")
            return value

    config: Config
    input_format: AudioFormat = AudioFormat(SAMPLE_RATE)  # per instance: what the handle reports at start
    frame_samples: int | None = FRAME_LENGTH

    @classmethod
    def labels(cls, config: Config) -> list[str]:
        """The label of each keyword (``labels``, else the keyword's name): what its wake events carry."""
        return list(config.labels) or [*config.keywords, *(keyword_name(path) for path in config.keyword_paths)]

    @classmethod
    def doctor(cls, config: Config, section: str) -> list[Check]:
        """``magoo doctor``: the keyword, model and library files exist; pvporcupine is installed."""
        from .doctor import file_rows

        return file_rows(config, section)

    def __init__(self, config: Config, *, library: Library | None = None) -> None:
        """:param library: the pvporcupine to use; None imports the installed one at start (tests inject fakes)."""
        super().__init__(config)
        self.input_format = AudioFormat(SAMPLE_RATE)
        self.frame_samples = FRAME_LENGTH  # the engine cuts frames of this size; process() re-cuts any others
        self._library = library
        self._handle: Any = None
        # The engine may leave (delete the native handle) while its wake worker still runs a queued
        # reset() or process(); a use after delete() crashes the process, so the two never overlap.
        self._lock = threading.Lock()
        self._keywords = self._describe_keywords()
        self._rechunker = Rechunker(FRAME_LENGTH)
        self._silence = array("h", bytes(2 * FRAME_LENGTH))
        self._heard = 0.0  # seconds of audio scored since start
        self._last_detection = -math.inf
        self._frames = 0
        self._detections = 0
        self._suppressed = 0

    def _describe_keywords(self) -> list[_Keyword]:
        config = self.config
        entries: list[tuple[str, Path | None]] = [(k, None) for k in config.keywords]
        entries += [(keyword_name(p), p) for p in config.keyword_paths]
        sensitivities = (
            config.sensitivities if isinstance(config.sensitivities, list) else [config.sensitivities] * len(entries)
        )
        labels = config.labels or [model for model, _ in entries]
        return [
            _Keyword(model, label, sensitivity, path)
            for (model, path), label, sensitivity in zip(entries, labels, sensitivities, strict=True)
        ]

    # ---- lifecycle ------------------------------------------------------------------------------

    async def __aenter__(self) -> PorcupineDetector:
        if self._library is None:
            self._library = await asyncio.to_thread(load_library, self.config.library_path)
        self._handle = await asyncio.to_thread(self._create, self._library)
        frame_length, sample_rate = int(self._handle.frame_length), int(self._handle.sample_rate)
        if sample_rate != self.input_format.sample_rate:
            self.input_format = AudioFormat(sample_rate)
        if frame_length != FRAME_LENGTH:
            self.frame_samples = frame_length
        self._rechunker = Rechunker(frame_length)
        self._silence = array("h", bytes(2 * frame_length))
        log.info(
            "[wake] porcupine: pvporcupine %s, keywords %s",
            self._library.version,
            ", ".join(f"{k.label} ({k.sensitivity:g})" for k in self._keywords),
        )
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await asyncio.to_thread(self._delete)

    def _delete(self) -> None:
        with self._lock:  # waits for a process() or reset() in flight on the wake worker
            handle, self._handle = self._handle, None
            if handle is not None:
                handle.delete()

    def _create(self, library: Library) -> Any:
        """Build the Porcupine handle (blocking; generation 2+ may go online to check the key)."""
        config = self.config
        key = self._access_key()
        kwargs: dict[str, Any] = {
            "keyword_paths": self._keyword_files(library),
            "sensitivities": [k.sensitivity for k in self._keywords],
            "library_path": str(config.library_path) if config.library_path else None,
            "model_path": str(config.model_path) if config.model_path else None,
        }
        if library.needs_access_key:
            if key is None:
                raise BackendError(
                    f"pvporcupine {library.version} (Porcupine 2 and later) needs a Picovoice AccessKey: {KEY_HELP}",
                    retryable=False,
                )
            kwargs["access_key"] = key
        elif key is not None:
            log.warning(
                "[wake] porcupine: pvporcupine %s needs no AccessKey; access_key is ignored", library.version
            )
        try:
            return library.create(**kwargs)
        except Exception as exc:
            error = translate(exc, library, key)
            if error is None:
                raise
            raise error from None

    def _access_key(self) -> str | None:
        secret = self.config.access_key
        return (secret.get_secret_value() or None) if secret is not None else None

    def _keyword_files(self, library: Library) -> list[str]:
        files: list[str] = []
        for keyword in self._keywords:
            if keyword.path is not None:
                if not keyword.path.is_file():
                    raise BackendError(f"[wake] porcupine: keyword file not found: {keyword.path}", retryable=False)
                files.append(str(keyword.path))
            elif keyword.model in library.keyword_paths:
                files.append(library.keyword_paths[keyword.model])
            else:
                raise BackendError(self._unknown_keyword(keyword.model, library), retryable=False)
        return files

    @staticmethod
    def _unknown_keyword(name: str, library: Library) -> str:
        known = sorted(library.keyword_paths)
        close = difflib.get_close_matches(name, known, n=1)
        guess = f" Did you mean {close[0]!r}?" if close else ""
        return (
            f"[wake] porcupine: {name!r} is not a built-in keyword of pvporcupine {library.version}.{guess} "
            f"Built-in: {', '.join(known) or 'none'}. Or give a .ppn file in keyword_paths"
        )

    # ---- the wake worker thread -----------------------------------------------------------------

    def process(self, chunk: AudioChunk) -> WakeEvent | None:
        """Score every whole Porcupine frame in ``chunk``; return the first detection, if any.

        After ``__aexit__`` (a frame still queued at shutdown) it scores nothing.
        """
        event = None
        with self._lock:
            if self._handle is None:
                return None
            for frame in self._rechunker.push(chunk):
                found = self._score(frame)
                event = event or found
        return event

    def _score(self, frame: AudioChunk) -> WakeEvent | None:
        samples = array("h", frame.pcm)
        if sys.byteorder == "big":
            samples.byteswap()
        index = self._call(samples)
        self._frames += 1
        self._heard += frame.duration
        if index < 0 or index >= len(self._keywords):
            return None
        if self._heard - self._last_detection < self.config.refractory:
            self._suppressed += 1
            return None
        self._last_detection = self._heard
        self._detections += 1
        keyword = self._keywords[index]
        return WakeEvent(
            model=keyword.model,
            score=1.0,  # Porcupine answers yes or no; the sensitivity is its threshold
            threshold=keyword.sensitivity,
            timestamp=frame.timestamp,
            label=keyword.label,
            scores={k.model: 1.0 if i == index else 0.0 for i, k in enumerate(self._keywords)},
        )

    @property
    def scores(self) -> None:
        """Porcupine reports no scores: it answers yes or no for each frame, and its sensitivity
        is no threshold on a score. None tells the engine so (see ``WakeDetector``)."""
        return None

    def _call(self, samples: array) -> int:
        try:
            return int(self._handle.process(samples))
        except Exception as exc:
            error = translate(exc, self._library, self._access_key()) if self._library is not None else None
            if error is None:
                raise
            raise error from None

    def reset(self) -> None:
        """Drop the partial frame and wash Porcupine's window with silence (it has no reset)."""
        with self._lock:
            self._rechunker.reset()
            if self._handle is None:
                return
            frames = math.ceil(RESET_SILENCE * self.input_format.sample_rate / len(self._silence))
            for _ in range(frames):
                self._call(self._silence)  # Porcupine does not fire on silence; the result is moot

    def stats(self) -> dict[str, float]:
        return {"frames": self._frames, "detections": self._detections, "suppressed": self._suppressed}


@hookimpl
def magoo_register_wake_detectors(register: Any) -> None:
    register(PorcupineDetector)
