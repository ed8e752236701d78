"""Saved clips: the audio around every wake word (and, optionally, every near miss) as WAV files.

``[engine] save_clips = "clips/"`` keeps, for each wake word, what the turn's speech-to-text heard:
the pre-roll and the command up to its final transcript (or ``capture_timeout``), at most
:data:`MAX_CLIP_SECONDS`. With ``save_near_misses = true`` it also keeps :data:`NEAR_BEFORE` +
:data:`NEAR_AFTER` seconds around the peak of every stretch in which a model scored at least
half its threshold without waking (the audio the detector scored, 16 kHz mono for openWakeWord).

Files are named so that they sort by time and say the wake word and its score:
``2026-12-07T08-01-02_hey_jarvis_0.93.wav``, ``2026-12-07T08-04-10_hey_jarvis_0.31_near.wav``
(local time; a second clip in the same second gets ``-2`` after the time). After each write the
oldest of these files are deleted until at most ``clips_max_files`` and ``clips_max_mb`` remain;
other files in the folder are never touched.

Threads: :class:`ClipWriter` owns one daemon thread that encodes, writes and rotates; nothing
else here touches the disk. :meth:`ClipWriter.submit` never blocks: past :data:`QUEUE` waiting
clips the newest is dropped and counted. A failing write (a full disk, a read-only folder) is
logged at most once a minute and the run goes on. :class:`WakeClip` lives on the event loop,
:class:`NearMisses` on the thread that scores wake words.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import queue
import re
import threading
import time
import wave
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from .output_files import WriteFailures, write_atomically
from .types import AudioChunk, WakeEvent
from .wake_scores import NEAR

log = logging.getLogger("magoo.clips")

#: the longest wake clip, in seconds of audio (pre-roll + command); the rest is not kept
MAX_CLIP_SECONDS = 60.0
#: seconds of audio kept before a near miss's peak score, and after it
NEAR_BEFORE = 2.0
NEAR_AFTER = 1.0
#: clips waiting for the writer thread, at most
QUEUE = 16
#: seconds between two log lines about the same trouble (failing writes, dropped clips)
SAY_EVERY = 60.0

#: what a clip's file name looks like: time[-n]_label_score[_near].wav
CLIP_NAME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d-\d\d-\d\d(-\d+)?_.+_\d\.\d\d(_near)?\.wav$")


def clip_name(when: float, label: str, score: float, *, near: bool = False, repeat: int = 1) -> str:
    """The file name of a clip: ``2026-12-07T08-01-02_hey_jarvis_0.93.wav``.

    :param when: wall-clock seconds since the epoch (shown in local time).
    :param label: the wake word; characters other than letters, digits, ``-`` and ``_`` become ``_``.
    :param repeat: the how-many-th clip of that second (2 and more are written after the time).
    """
    stamp = datetime.fromtimestamp(when).strftime("%Y-%m-%dT%H-%M-%S")
    if repeat > 1:
        stamp += f"-{repeat}"
    word = re.sub(r"[^A-Za-z0-9_-]+", "_", label).strip("_")[:60] or "wake"
    score = min(max(score, 0.0), 9.99)
    return f"{stamp}_{word}_{score:.2f}{'_near' if near else ''}.wav"


def wall_clock(timestamp: float) -> float:
    """Wall-clock seconds of a monotonic capture ``timestamp`` (now when it is unknown, 0.0)."""
    now = time.time()
    return now - max(0.0, time.monotonic() - timestamp) if timestamp else now


@dataclass(frozen=True)
class Clip:
    """One clip on its way to the disk: its audio, all in one format, and what to call it."""

    chunks: tuple[AudioChunk, ...]
    when: float
    label: str
    score: float
    near: bool = False


class ClipWriter:
    """Writes :class:`Clip` values into ``folder`` on a thread of its own, and rotates them.

    :param folder: where the clips go (created when missing).
    :param max_bytes: the clips' total size kept, at most; the oldest go first.
    :param max_files: the clips kept, at most.
    """

    def __init__(self, folder: Path, max_bytes: int, max_files: int) -> None:
        self.folder = folder
        self.max_bytes = max_bytes
        self.max_files = max_files
        self.written = 0  # clips written since the start
        self.dropped = 0  # clips dropped because the writer was behind
        self._queue: queue.Queue[Clip | None] = queue.Queue(QUEUE)
        self._failures = WriteFailures("saved clips in", log, remind_every=SAY_EVERY)
        self._dropped_said = float("-inf")
        self._dropping = threading.Lock()  # submit() is called from the loop and the wake thread
        self._thread = threading.Thread(target=self._run, name="magoo-clips", daemon=True)
        self._thread.start()

    def submit(self, clip: Clip) -> bool:
        """Queue ``clip`` for writing; never blocks (any thread). False when it was dropped."""
        try:
            self._queue.put_nowait(clip)
            return True
        except queue.Full:
            with self._dropping:
                self.dropped += 1
                now = time.monotonic()
                say = now - self._dropped_said >= SAY_EVERY
                if say:
                    self._dropped_said = now
            if say:
                log.warning("the clip writer is behind (a slow disk?): %d clips not saved so far", self.dropped)
            return False

    def close(self, timeout: float = 5.0) -> None:
        """Write what is queued (waiting at most ``timeout`` seconds), then stop the thread. Blocking."""
        with contextlib.suppress(queue.Full):
            self._queue.put(None, timeout=timeout)
        self._thread.join(timeout)

    def _run(self) -> None:
        while (clip := self._queue.get()) is not None:
            try:
                self._write(clip)
            except Exception:  # a bug must not end the thread: later clips still go out
                log.exception("saving a clip failed")

    def _write(self, clip: Clip) -> None:
        data = wav_bytes(clip.chunks)
        if data is None:
            return
        repeat, path = 1, None
        while path is None or path.exists():
            path = self.folder / clip_name(clip.when, clip.label, clip.score, near=clip.near, repeat=repeat)
            repeat += 1
        try:
            write_atomically(path, data, base=self.folder)
            self.rotate(keep=path.name)
        except OSError as exc:
            self._failures.failed(self.folder, exc)
            return
        self._failures.succeeded(self.folder)
        self.written += 1
        log.debug("saved clip %s", path)

    def rotate(self, keep: str | None = None) -> list[str]:
        """Delete the oldest clips until at most ``max_files`` and ``max_bytes`` remain (never
        ``keep``, the newest); the names deleted. Blocking; only files named like clips go."""
        found = []
        with os.scandir(self.folder) as entries:
            for entry in entries:
                if CLIP_NAME.match(entry.name) and entry.is_file(follow_symlinks=False):
                    found.append((entry.name, entry.stat(follow_symlinks=False).st_size))
        found.sort()
        total = sum(size for _, size in found)
        deleted = []
        for name, size in found:
            if len(found) - len(deleted) <= self.max_files and total <= self.max_bytes:
                break
            if name == keep:
                continue
            with contextlib.suppress(FileNotFoundError):
                (self.folder / name).unlink()
            deleted.append(name)
            total -= size
        return deleted


def wav_bytes(chunks: tuple[AudioChunk, ...] | list[AudioChunk]) -> bytes | None:
    """A WAV file of ``chunks`` in the first one's format (chunks in another are left out); None
    for no audio."""
    if not chunks:
        return None
    first = chunks[0]
    fmt = first.format
    pcm = b"".join(chunk.pcm for chunk in chunks if chunk.format == fmt)
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as wav:
        wav.setnchannels(fmt.channels)
        wav.setsampwidth(fmt.sample_width)
        wav.setframerate(fmt.sample_rate)
        wav.writeframes(pcm)
    return buffer.getvalue()


class WakeClip:
    """The audio of one wake word's turn, gathered on the event loop, handed to the writer once.

    :param preroll: the audio before (and since) the wake word that the turn's STT hears first.
    """

    def __init__(self, writer: ClipWriter, wake: WakeEvent, preroll: list[AudioChunk]) -> None:
        self._writer = writer
        self._wake = wake
        self._when = wall_clock(wake.timestamp)
        self._chunks: list[AudioChunk] = []
        self._seconds = 0.0
        self._closed = False
        for chunk in preroll:
            self.add(chunk)

    def add(self, chunk: AudioChunk) -> None:
        """One more chunk of the command (ignored past :data:`MAX_CLIP_SECONDS` or after :meth:`close`)."""
        if not self._closed and self._seconds < MAX_CLIP_SECONDS:
            self._chunks.append(chunk)
            self._seconds += chunk.duration

    def close(self) -> None:
        """The command has ended: queue the clip for writing (once; never blocks)."""
        if self._closed:
            return
        self._closed = True
        wake = self._wake
        self._writer.submit(Clip(tuple(self._chunks), self._when, wake.label, wake.score))
        self._chunks = []


@dataclass
class _Stretch:
    score: float  # the highest so far
    at: float  # seconds of audio scored when it came
    when: float  # its wall-clock time


class NearMisses:
    """Finds near misses in the scored frames and saves the seconds around each one's peak.

    A stretch starts when a model scores at least :data:`~magoo_core.wake_scores.NEAR` times its
    threshold; it ends :data:`NEAR_AFTER` seconds of audio after its highest score, and its clip
    is queued. A wake word drops every stretch in progress (the wake clip holds that audio); a
    model must fall below the near line again before its next stretch. Called only on the thread
    that scores wake words, right after each ``process()``; never raises into it.
    """

    def __init__(self, writer: ClipWriter) -> None:
        self._writer = writer
        self._frames: deque[tuple[float, AudioChunk]] = deque()  # (seconds heard at its end, frame)
        self._heard = 0.0
        self._stretches: dict[str, _Stretch] = {}
        self._spent: set[str] = set()  # labels still near after their stretch was saved
        self.broken = False  # it raised once: no more near misses this run

    def frame(self, frame: AudioChunk, scores: Mapping[str, float] | None, thresholds: Mapping[str, float], fired: bool) -> None:
        """Take one scored ``frame`` with the detector's ``scores`` of it and its ``thresholds``."""
        self._heard += frame.duration
        self._frames.append((self._heard, frame))
        while self._frames and self._frames[0][0] < self._heard - NEAR_BEFORE - NEAR_AFTER - 0.5:
            self._frames.popleft()
        if fired:  # a wake, not a miss: its models must fall below the near line before the next stretch
            self._spent.update(self._stretches, scores or {})
            self._stretches.clear()
            return
        for label, score in (scores or {}).items():
            threshold = thresholds.get(label)
            if threshold is None:
                continue
            stretch = self._stretches.get(label)
            if stretch is not None:
                if score > stretch.score:
                    stretch.score, stretch.at, stretch.when = score, self._heard, wall_clock(frame.timestamp)
            elif score < NEAR * threshold:
                self._spent.discard(label)
            elif label not in self._spent:
                self._stretches[label] = _Stretch(score, self._heard, wall_clock(frame.timestamp))
        for label, stretch in list(self._stretches.items()):
            if self._heard - stretch.at >= NEAR_AFTER:
                del self._stretches[label]
                self._spent.add(label)
                self._save(label, stretch)

    def reset(self) -> None:
        """The microphone was muted: forget the audio and the stretches before it."""
        self._frames.clear()
        self._stretches.clear()
        self._spent.clear()

    def _save(self, label: str, stretch: _Stretch) -> None:
        start, end = stretch.at - NEAR_BEFORE, stretch.at + NEAR_AFTER
        chunks = tuple(frame for heard, frame in self._frames if start < heard <= end + 1e-6)
        self._writer.submit(Clip(chunks, stretch.when, label, stretch.score, near=True))


class Clips:
    """The saved clips of one run: what the wake worker and the turns hand over.

    :param settings: the ``[engine]`` settings (``save_clips`` set: see :meth:`of`).
    """

    def __init__(self, folder: Path, *, near_misses: bool, max_mb: float, max_files: int) -> None:
        self.writer = ClipWriter(folder, int(max_mb * 1_000_000), max_files)
        self.near = NearMisses(self.writer) if near_misses else None
        self._thresholds: tuple[Any, Mapping[str, float]] = (None, {})

    @classmethod
    def of(cls, settings: Any) -> Clips | None:
        """The clips ``[engine] save_clips`` asks for; None when it is unset."""
        folder = getattr(settings, "save_clips", None)
        if folder is None:
            return None
        return cls(
            Path(folder), near_misses=settings.save_near_misses, max_mb=settings.clips_max_mb,
            max_files=settings.clips_max_files,
        )

    def wake(self, wake: WakeEvent, preroll: list[AudioChunk]) -> WakeClip:
        """A clip for the turn ``wake`` starts, holding ``preroll``; the turn adds its command and closes it."""
        return WakeClip(self.writer, wake, preroll)

    def scored(self, detector: Any, frame: AudioChunk, fired: bool) -> None:
        """The wake detector just scored ``frame`` (``fired``: it woke); on the scoring thread, never raises."""
        near = self.near
        if near is None or near.broken:
            return
        try:
            cached, thresholds = self._thresholds
            if cached is not detector:
                thresholds = dict(getattr(detector, "thresholds", None) or {})
                self._thresholds = (detector, thresholds)
            near.frame(frame, getattr(detector, "scores", None), thresholds, fired)
        except Exception:
            near.broken = True
            log.warning("saving near misses failed; no more are saved this run", exc_info=True)

    def reset(self) -> None:
        """The wake detector was reset (the microphone unmuted): near misses start afresh. On the
        scoring thread, like :meth:`scored`."""
        if self.near is not None:
            self.near.reset()

    def close(self, timeout: float = 5.0) -> None:
        """Write what is queued (at most ``timeout`` seconds), then stop. Blocking: call it in a thread."""
        self.writer.close(timeout)
