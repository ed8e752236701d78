"""The engine's status for people and scripts: the input level, and the ``status.json`` file.

The file is rewritten every ``[engine] status_interval`` seconds while the engine runs and once
more when it stops, each time atomically (a temporary file in the same folder, then a rename),
so a reader never sees half a document. Its shape is :func:`status_document`.
"""

from __future__ import annotations

import json
import math
import os
import time
from collections import deque
from pathlib import Path
from typing import Any

from .audio import peak_level, rms_level
from .output_files import write_atomically
from .types import AudioChunk, EngineStatus

LEVEL_WINDOW = 1.0  # seconds of audio the input level is measured over


class InputLevel:
    """RMS level (0..1 of full scale) of the last :data:`LEVEL_WINDOW` seconds of microphone audio.

    ``add()`` runs for every captured chunk on the event loop, so it only keeps the chunk; the
    level is computed when someone asks (the heartbeat, the status file).
    """

    def __init__(self) -> None:
        self._chunks: deque[AudioChunk] = deque()
        self._seconds = 0.0

    def add(self, chunk: AudioChunk) -> None:
        self._chunks.append(chunk)
        self._seconds += chunk.duration
        while self._seconds - self._chunks[0].duration >= LEVEL_WINDOW:
            self._seconds -= self._chunks.popleft().duration

    def recent(self, seconds: float) -> tuple[float, float]:
        """``(rms, peak)`` of about the last ``seconds`` of audio (whole chunks, at least the last
        one), each 0..1 of full scale; ``(0.0, 0.0)`` before any audio. For a live meter."""
        chunks: list[AudioChunk] = []
        covered = 0.0
        for chunk in reversed(self._chunks):
            chunks.append(chunk)
            covered += chunk.duration
            if covered >= seconds:
                break
        if not chunks or covered <= 0:
            return 0.0, 0.0
        energy = sum(rms_level(chunk) ** 2 * chunk.duration for chunk in chunks)
        return math.sqrt(energy / covered), max(peak_level(chunk) for chunk in chunks)

    @property
    def value(self) -> float:
        chunks = list(self._chunks)
        seconds = sum(chunk.duration for chunk in chunks)
        if seconds <= 0:
            return 0.0
        energy = sum(rms_level(chunk) ** 2 * chunk.duration for chunk in chunks)
        return math.sqrt(energy / seconds)


def status_line(status: EngineStatus) -> str:
    """One line for the periodic log line and systemd's STATUS: the state and the counters that
    tell whether a box is healthy (``listening; up 2h03m; 41 turns, 0 errors, 0 restarts; ...``)."""
    counters = status.counters
    hours, rest = divmod(int(status.uptime), 3600)
    failing = sorted(key for key, health in status.health.items() if health != "ok")
    parts = [
        status.state.value,
        f"up {hours}h{rest // 60:02d}m",
        f"{status.turns} turns, {status.errors} errors, {int(counters.get('restarts', 0))} restarts",
        f"audio {counters.get('audio_seconds', 0.0):.0f} s, {int(counters.get('overflows', 0))} overflows",
        f"input {_dbfs(status.input_level)}",
    ]
    if failing:
        parts.append("not ok: " + ", ".join(f"{key} {status.health[key]}" for key in failing))
    return "; ".join(parts)


def _dbfs(level: float) -> str:
    return f"{20 * math.log10(level):.0f} dBFS" if level > 0 else "silent"


def status_document(status: EngineStatus, *, name: str, running: bool) -> dict[str, Any]:
    """The JSON document of ``status.json``; docs/architecture.md (Status) describes each key."""
    wake = status.last_wake
    return {
        "name": name,
        "running": running,
        "pid": os.getpid(),
        "updated": time.time(),
        "state": status.state.value,
        "uptime": round(status.uptime, 1),
        "turns": status.turns,
        "errors": status.errors,
        "input_level": round(status.input_level, 4),
        "last_wake": None
        if wake is None
        else {
            "label": wake.label,
            "model": wake.model,
            "score": round(wake.score, 3),
            "threshold": wake.threshold,
            "seconds_ago": round(max(0.0, time.monotonic() - wake.timestamp), 1),
        },
        "wakes": dict(status.wakes),
        "timers": [
            {"name": t.name, "ends_at": round(t.ends_at, 1), "remaining": round(t.seconds_left(time.time()), 1)}
            for t in status.timers
        ],
        "counters": {key: round(value, 3) for key, value in status.counters.items()},
        "backends": {
            key: {"health": status.health.get(key, "unknown"), "stats": dict(stats)}
            for key, stats in status.backends.items()
        },
    }


def write_status_file(path: Path, document: dict[str, Any]) -> None:
    """Replace ``path`` with ``document`` atomically (:func:`~magoo_core.output_files.write_atomically`:
    a regular file only, never a device node or a symbolic link). Blocking: call it through
    ``asyncio.to_thread``.

    :raises OSError: the folder cannot be written, or the path is not a regular file
        (:class:`~magoo_core.output_files.OutputError`).
    """
    write_atomically(path, (json.dumps(document, indent=1) + "\n").encode("utf-8"))
