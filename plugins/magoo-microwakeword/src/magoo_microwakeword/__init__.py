"""magoo-microwakeword: microWakeWord models through pymicro-wakeword, cheap enough for a Pi Zero 2.

pymicro-wakeword bundles its own ``libtensorflowlite_c`` and four models; its wheels need glibc
2.35 or later. It is imported when the backend starts, never when the plugin loads.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Self

from pydantic import Field, ValidationInfo, field_validator, model_validator

from magoo_core import AudioChunk, AudioFormat, Backend, BackendConfig, BackendError, WakeEvent, hookimpl, require
from magoo_core.fields import Ratio, Seconds
from magoo_core.roles import existing_file

if TYPE_CHECKING:
    from magoo_core.doctor import Check

INSTALL = "pip install magoo-microwakeword (pymicro-wakeword needs glibc 2.35+: Raspberry Pi OS bookworm or later)"

#: The models in the pymicro-wakeword wheel (``pymicro_wakeword.Model``), known without importing it.
BUILTIN_MODELS = ("alexa", "hey_jarvis", "hey_mycroft", "okay_nabu")

SAMPLE_RATE = 16000
#: Samples per 10 ms feature window; pymicro's front end turns each into one feature vector.
WINDOW_SAMPLES = 160


class ModelConfig(BackendConfig):
    """One wake word model to listen for."""

    name: str = Field(
        description="A built-in model (alexa, hey_jarvis, hey_mycroft, okay_nabu) or the path to a "
        "microWakeWord model's .json file (its .tflite next to it)."
    )
    label: str = Field("", description="What the profile calls this wake word; empty: the model's name.")
    probability_cutoff: Ratio(lo_open=True, hi_open=True) | None = Field(
        None, description="Fire when the model's averaged probability exceeds this; unset: the cutoff in the model's .json."
    )

    @field_validator("name")
    @classmethod
    def _builtin_or_json(cls, value: str, info: ValidationInfo) -> str:
        if value in BUILTIN_MODELS:
            return value
        if not value.endswith(".json"):
            raise ValueError(
                f"'{value}' is not a built-in model ({', '.join(BUILTIN_MODELS)}) "
                "nor the path to a microWakeWord model's .json file"
            )
        return str(existing_file(Path(value).expanduser(), info))  # a profile's missing file fails at load

    @property
    def key(self) -> str:
        """The model key reported in wake events: the built-in name, or the .json file's stem."""
        return self.name if self.name in BUILTIN_MODELS else Path(self.name).stem


class MicroWakeWordDetector(Backend):
    """microWakeWord models (okay_nabu, hey_jarvis, alexa, hey_mycroft or your own) via pymicro-wakeword."""

    name: ClassVar[str] = "microwakeword"
    input_format = AudioFormat(SAMPLE_RATE)
    # 60 ms: six feature windows, so every frame runs each model twice (its stride is 3 windows)
    frame_samples = 6 * WINDOW_SAMPLES

    class Config(BackendConfig):
        models: list[ModelConfig] = Field(
            default=["okay_nabu"],  # type: ignore[assignment]  # validated into ModelConfig (validate_default)
            min_length=1,
            description="Models to listen for, all at once: tables {name, label, probability_cutoff}, "
            "or just names.",
        )
        refractory: Seconds(0, 60) = Field(
            1.0, description="Seconds of audio after a detection during which no model fires again."
        )

        @field_validator("models", mode="before")
        @classmethod
        def _names_as_tables(cls, value: Any) -> Any:
            if isinstance(value, list):
                return [{"name": item} if isinstance(item, str) else item for item in value]
            return value

        @model_validator(mode="after")
        def _distinct(self) -> Self:
            keys = [model.key for model in self.models]
            twice = sorted({key for key in keys if keys.count(key) > 1})
            if twice:
                raise ValueError(f"model {', '.join(twice)} is listed more than once")
            return self

    @classmethod
    def labels(cls, config: Config) -> list[str]:
        """The label of each model (its ``label``, else its key): what its wake events carry."""
        return [model.label or model.key for model in config.models]

    @classmethod
    def doctor(cls, config: Config, section: str) -> list[Check]:
        """``magoo doctor``: each model given as a .json file exists (the built-in names always do)."""
        from magoo_core.doctor import fail, ok

        name = f"{section} microwakeword"
        missing = [m.name for m in config.models if m.name.endswith(".json") and not Path(m.name).is_file()]
        if missing:
            return [fail(name, f"no model file at {', '.join(missing)}", f"fix models in {section}")]
        return [ok(name, ", ".join(m.name for m in config.models))]

    def __init__(self, config: Config) -> None:
        super().__init__(config)
        self._features: Any = None
        self._models: list[tuple[ModelConfig, Any, float]] = []  # (config, MicroWakeWord, cutoff)
        self._windows: dict[str, int] = {}  # feature windows fed since the model's last reset
        self._scores: dict[str, float] = {}  # each model's latest averaged probability
        self._shown: dict[str, float] = {}  # the same after the last frame, by label (kept over a reset)
        self._since_detection: int | None = None  # samples heard since the last detection
        self.detections = 0
        self.frames = 0

    async def __aenter__(self) -> MicroWakeWordDetector:
        self._models, self._features = await asyncio.to_thread(self._load)
        self._clear()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        for _, model, _ in self._models:
            model.close()
        self._models, self._features = [], None

    def _load(self) -> tuple[list[tuple[ModelConfig, Any, float]], Any]:
        pmw = require("pymicro_wakeword", backend=self.name, install=INSTALL)
        loaded = []
        for spec in self.config.models:
            if spec.name in BUILTIN_MODELS:
                model = pmw.MicroWakeWord.from_builtin(pmw.Model(spec.name))
            elif not Path(spec.name).is_file():
                raise BackendError(f"microWakeWord model config {spec.name} does not exist", retryable=False)
            else:
                try:
                    model = pmw.MicroWakeWord.from_config(spec.name)
                except (OSError, KeyError, ValueError, RuntimeError) as exc:
                    raise BackendError(
                        f"cannot load the microWakeWord model {spec.name} ({type(exc).__name__}: {exc}); "
                        "it needs a 'model' (.tflite next to it) and a 'micro' table with "
                        "probability_cutoff and sliding_window_size",
                        retryable=False,
                    ) from exc
            cutoff = spec.probability_cutoff if spec.probability_cutoff is not None else model.probability_cutoff
            loaded.append((spec, model, cutoff))
        return loaded, pmw.MicroWakeWordFeatures()

    @property
    def cutoffs(self) -> dict[str, float]:
        """Each model's cutoff, by model key (after ``__aenter__``)."""
        return {spec.key: cutoff for spec, _, cutoff in self._models}

    def process(self, chunk: AudioChunk) -> WakeEvent | None:
        self.frames += 1
        if self._since_detection is not None:
            self._since_detection += chunk.frames
        # materialised: leaving pymicro's generator early would keep audio it already consumed
        windows = list(self._features.process_streaming(chunk.pcm))
        for features in windows:
            for spec, model, cutoff in self._models:
                key = spec.key
                probability = model.process_streaming_prob(features)
                self._windows[key] += 1
                if self._windows[key] % model.stride:
                    continue  # it only buffered the window; the 0.0 it returned is no score
                self._scores[key] = probability
                if probability > cutoff and not self._refractory():
                    event = WakeEvent(
                        key, probability, cutoff, chunk.timestamp, label=spec.label, scores=self._scores
                    )
                    self._show()
                    self.detections += 1
                    self._since_detection = 0
                    # the models share the features, which must start again: so must every model
                    self.reset()
                    return event
        self._show()
        return None

    def _show(self) -> None:
        self._shown = {spec.label or spec.key: self._scores[spec.key] for spec, _, _ in self._models}

    @property
    def scores(self) -> dict[str, float]:
        """Each model's latest averaged probability after the last frame processed, by label; empty
        before the first frame. A detection's frame keeps its scores (not the zeros of the reset)."""
        return self._shown

    @property
    def thresholds(self) -> dict[str, float]:
        """Each model's probability cutoff, by label (after ``__aenter__``)."""
        return {spec.label or spec.key: cutoff for spec, _, cutoff in self._models}

    def _refractory(self) -> bool:
        return self._since_detection is not None and self._since_detection < self.config.refractory * SAMPLE_RATE

    def reset(self) -> None:
        """Forget all audio heard (pymicro reloads each interpreter). The refractory time keeps running."""
        self._features.reset()
        for _, model, _ in self._models:
            model.reset()
        self._clear()

    def _clear(self) -> None:
        self._windows = {spec.key: 0 for spec, _, _ in self._models}
        self._scores = {spec.key: 0.0 for spec, _, _ in self._models}

    def stats(self) -> dict[str, float]:
        return {"frames": self.frames, "detections": self.detections}


@hookimpl
def magoo_register_wake_detectors(register):
    register(MicroWakeWordDetector)
