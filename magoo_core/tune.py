"""``magoo tune``'s measurement: a profile's wake detector over recordings, thresholds swept over its scores.

Each file is scored once: the detector (the profile's own backend and models, its thresholds
raised so that it keeps scoring instead of firing and resetting, see :data:`NEVER_FIRES`) gives
every model's score of every frame. Recall and false wakes for each threshold are then computed
from those scores (:func:`sweep`), the way the detector decides: ``trigger_level`` frames in a row
at or over the threshold, then ``refractory`` seconds of audio in which the model does not fire
again. A detector that votes by its own voice check (openWakeWord's ``vad_threshold``) is
simulated without it, so a run may have fewer false wakes than the table says.

Everything here is blocking CPU work for the command line; numpy is imported by the caller.
"""

from __future__ import annotations

import itertools
import wave
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .audio import AudioConverter, silence
from .types import AudioChunk

#: thresholds swept (every hundredth), and those a table shows (every twentieth)
THRESHOLDS = tuple(round(0.01 * n, 2) for n in range(1, 100))
SHOWN = tuple(round(0.05 * n, 2) for n in range(1, 20))
#: seconds of silence around each positive, as a microphone that was listening before and after
PAD = 1.0
#: seconds of a file read at a time (hours of background never sit in memory whole)
BLOCK = 10.0
#: the seed of numpy's generator before each file: openWakeWord starts its features with noise
SEED = 0


class TuneError(Exception):
    """What is wrong with the command's input, in one line that says what to do."""


@dataclass(frozen=True)
class Tunable:
    """Where a wake backend keeps each model's threshold in its ``models`` list.

    :param key: the threshold's key in a model's table.
    :param never: a threshold its scores do not reach: scoring with it keeps the detector from
        firing and resetting, so every frame's score is its own.
    :param shorthand: the key a model written as a bare string stands for (``"hey_jarvis"`` is
        ``{ name = "hey_jarvis" }``).
    """

    key: str
    never: float
    shorthand: Any  # Callable[[str], str]


#: the wake backends whose thresholds ``magoo tune`` can write (others are measured only)
TUNABLE: dict[str, Tunable] = {
    "openwakeword": Tunable("threshold", 1.0, lambda name: "path" if name.endswith((".tflite", ".onnx")) else "name"),
    "microwakeword": Tunable("probability_cutoff", 0.9999, lambda name: "name"),
}


def never_firing(backend: str, config: Any) -> Any:
    """``config`` with every model's threshold at its backend's :attr:`Tunable.never`; as it is for
    a backend :data:`TUNABLE` does not know."""
    tunable = TUNABLE.get(backend)
    models = getattr(config, "models", None)
    if tunable is None or not isinstance(models, list):
        return config
    raised = [model.model_copy(update={tunable.key: tunable.never}) for model in models]
    return config.model_copy(update={"models": raised})


# ---- files ------------------------------------------------------------------------------------


def wav_files(path: Path, option: str) -> list[Path]:
    """The WAV files ``option`` names: the file itself, or every ``*.wav`` below the folder, sorted.

    :raises TuneError: nothing there, or no WAV file in the folder.
    """
    if not path.exists():
        raise TuneError(f"{option} {path}: no such file or folder")
    if path.is_file():
        return [path]
    found = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() == ".wav")
    if not found:
        others = sorted(p.name for p in path.rglob("*") if p.is_file())
        hint = (
            f"; found {len(others)} other files ({', '.join(others[:3])}{', ...' if len(others) > 3 else ''}):"
            " convert them to WAV, e.g. ffmpeg -i in.mp3 out.wav"
            if others else ""
        )
        raise TuneError(f"{option} {path}: no .wav files in it (subfolders included){hint}")
    return found


def _open(path: Path) -> wave.Wave_read:
    """The file opened for reading, its header checked.

    :raises TuneError: not a PCM WAV, not 16-bit, or empty.
    """
    try:
        wav = wave.open(str(path), "rb")  # noqa: SIM115 - the caller closes it
    except (wave.Error, EOFError, OSError) as exc:
        raise TuneError(
            f"{path}: not a PCM WAV file ({exc}); convert it: ffmpeg -i {path.name} -acodec pcm_s16le out.wav"
        ) from None
    width, total = wav.getsampwidth(), wav.getnframes()
    if width != 2 or total == 0:
        wav.close()
        if width != 2:
            raise TuneError(f"{path}: {8 * width}-bit WAV; magoo reads 16-bit PCM: sox {path.name} -b 16 out.wav")
        raise TuneError(f"{path}: holds no audio")
    return wav


def check_wavs(paths: Sequence[Path]) -> float:
    """Seconds of audio in ``paths``, every header checked before any scoring starts.

    :raises TuneError: see :func:`wav_blocks`.
    """
    seconds = 0.0
    for path in paths:
        with _open(path) as wav:
            seconds += wav.getnframes() / wav.getframerate()
    return seconds


def wav_blocks(path: Path, seconds: float = BLOCK) -> Iterator[AudioChunk]:
    """The file's audio in pieces of ``seconds``, in its own rate and channels (any rate, any
    channels: the scorer converts them with :class:`~magoo_core.audio.AudioConverter`).

    :raises TuneError: not a PCM WAV, not 16-bit, or empty.
    """
    with _open(path) as wav:
        rate, channels = wav.getframerate(), wav.getnchannels()
        step = max(1, int(rate * seconds))
        while pcm := wav.readframes(step):
            yield AudioChunk(pcm, rate, channels, 2)


# ---- scoring ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Scored:
    """One file's scores: each label's score of every frame, and how much audio it had.

    :param seconds: the file's own audio (padding left out).
    :param frame: seconds of audio per scored frame.
    """

    path: Path
    seconds: float
    frame: float
    scores: dict[str, np.ndarray]


class Scorer:
    """Runs a started wake detector over files, one file at a time, from a fresh state each.

    :param detector: entered (``__aenter__`` done), with thresholds it does not reach (:func:`never_firing`).
    :param name: how messages call it (``[wake] openwakeword``).
    """

    def __init__(self, detector: Any, name: str) -> None:
        self.detector = detector
        self.name = name

    def score(self, path: Path, *, pad: float = 0.0) -> Scored:
        """Every frame's scores of ``path``, with ``pad`` seconds of silence before and after.

        :raises TuneError: the file is unreadable, or the detector gives no scores.
        """
        detector = self.detector
        np.random.seed(SEED)
        detector.reset()
        converter = AudioConverter(detector.input_format, detector.frame_samples)
        rows: dict[str, list[float]] = {}
        heard = [0.0, 0]  # seconds scored, frames scored
        seconds = 0.0
        quiet = [silence(detector.input_format, pad)] if pad else []
        for chunk in itertools.chain(quiet, wav_blocks(path), quiet):
            if not quiet or chunk is not quiet[0]:
                seconds += chunk.duration
            for frame in converter.convert(chunk):
                self._frame(frame, converter, rows, heard)
        for frame in converter.flush(pad=True):
            self._frame(frame, converter, rows, heard)
        frame_seconds = heard[0] / heard[1] if heard[1] else 0.08
        return Scored(path, seconds, frame_seconds, {label: np.asarray(values) for label, values in rows.items()})

    def _frame(self, frame: AudioChunk, converter: AudioConverter, rows: dict[str, list[float]], heard: list) -> None:
        detector = self.detector
        event = detector.process(frame)
        scores = getattr(detector, "scores", None)
        if scores is None:
            raise TuneError(
                f"{self.name} reports no scores (it answers only yes or no), so there is nothing to sweep;"
                " magoo tune works with openwakeword and microwakeword"
            )
        for label in set(rows) | set(scores):
            rows.setdefault(label, [0.0] * heard[1]).append(float(scores.get(label, 0.0)))
        heard[0] += frame.duration
        heard[1] += 1
        if event is not None:  # a score at the top of the scale fired it anyway: as the engine, start afresh
            converter.reset()
            detector.reset()


# ---- the sweep --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Row:
    """One threshold's result for one model.

    :param hits: positives it wakes on, of ``positives``.
    :param false_wakes: wakes in the background audio, ``per_hour`` of it.
    """

    threshold: float
    hits: int
    positives: int
    false_wakes: int
    per_hour: float

    @property
    def recall(self) -> float | None:
        """The share of positives it wakes on; None without positives."""
        return self.hits / self.positives if self.positives else None


def _runs(scores: np.ndarray, trigger: int) -> np.ndarray:
    """For each frame from the ``trigger``-th on, the lowest score of the ``trigger`` frames ending there."""
    if trigger <= 1 or len(scores) < trigger:
        return scores if trigger <= 1 else np.zeros(0)
    return np.lib.stride_tricks.sliding_window_view(scores, trigger).min(axis=1)


def wakes(scores: np.ndarray, threshold: float, *, trigger: int, quiet_frames: int) -> int:
    """How often a model with these frame ``scores`` wakes at ``threshold``: ``trigger`` frames in a
    row at or over it, then no wake for ``quiet_frames`` frames (and ``trigger`` new ones)."""
    ready = np.flatnonzero(_runs(scores, trigger) >= threshold)
    gap = max(quiet_frames, trigger, 1)
    count, at = 0, 0
    while at < len(ready):
        count += 1
        at = int(np.searchsorted(ready, ready[at] + gap))
    return count


def sweep(
    positives: Sequence[np.ndarray],
    background: Sequence[np.ndarray],
    *,
    background_hours: float,
    frame: float,
    trigger: int = 1,
    refractory: float = 0.0,
    thresholds: Sequence[float] = THRESHOLDS,
) -> list[Row]:
    """Each threshold's recall over ``positives`` and false wakes over ``background`` (one model's
    frame scores per file), from the scores alone."""
    peaks = np.asarray([_runs(scores, trigger).max(initial=0.0) for scores in positives])
    quiet = int(np.ceil(refractory / frame - 1e-9)) if frame > 0 else 0
    rows = []
    for threshold in thresholds:
        hits = int((peaks >= threshold).sum()) if len(peaks) else 0
        found = sum(wakes(scores, threshold, trigger=trigger, quiet_frames=quiet) for scores in background)
        per_hour = found / background_hours if background_hours > 0 else 0.0
        rows.append(Row(threshold, hits, len(positives), found, per_hour))
    return rows


def suggest(rows: Sequence[Row], target: float) -> Row | None:
    """The threshold to use: of those with at most ``target`` false wakes per hour, the ones with
    the best recall; of these, the middle one (as far from missing as from waking too often).
    None when no threshold keeps to ``target``, or there are no positives."""
    allowed = [row for row in rows if row.per_hour <= target and row.positives]
    if not allowed:
        return None
    best = max(row.hits for row in allowed)
    candidates = sorted((row for row in allowed if row.hits == best), key=lambda row: row.threshold)
    return candidates[(len(candidates) - 1) // 2]


# ---- which positive is whose --------------------------------------------------------------------


def _plain(text: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in text.lower())


def owner(path: Path, root: Path, labels: Sequence[str]) -> str | None:
    """The label a positive belongs to: the only one, or the longest one its folder or file name
    holds (``hey_jarvis/1.wav``, ``2026-12-07T08-01-02_hey_jarvis_0.93.wav``); None when none does."""
    if len(labels) == 1:
        return labels[0]
    try:
        relative = path.relative_to(root)
    except ValueError:
        relative = Path(path.name)
    where = _plain(str(relative) if relative.parts else path.name)  # --positives may name the file itself
    found = [label for label in labels if _plain(label) in where]
    return max(found, key=len) if found else None
