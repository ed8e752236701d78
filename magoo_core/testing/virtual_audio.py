"""A real, headless PulseAudio server with a virtual microphone, for tests that need real audio I/O.

The device graph (made by ``pulse/pulse-up.sh``, shipped in this package):

* ``virtmic`` — the **default source**, the app's microphone. It is a remap of ``micfeed.monitor``.
* ``micfeed`` — a 16 kHz mono null sink; :meth:`VirtualAudio.play` plays into it, so what is played
  comes out of ``virtmic`` (bit for bit for 16 kHz mono int16 audio).
* ``speaker`` — the **default sink**; the app's playback goes there, :meth:`VirtualAudio.record`
  of ``speaker.monitor`` hears it.

Contracts for the whole module:

* Every method blocks the calling thread until the server has done what was asked (bounded by a
  timeout; only ``play(wait=False)`` and ``record()`` leave something running) and raises
  :class:`RuntimeError` naming the command and its stderr when it could not. Call them from the
  test's thread, or through ``asyncio.to_thread`` from async code.
* :class:`VirtualAudio` is not thread-safe: one thread drives it.
* Times are seconds, rates Hz, audio is mono signed 16-bit little-endian PCM.

The fault helpers mirror what a USB microphone does under PulseAudio: a stream killed (a read
error), a stall (no data, no error), an unplug (open streams are silently moved to another source)
and the whole server dying. Tests normally get an instance from the ``virtual_audio`` or
``fresh_virtual_audio`` fixture (:mod:`magoo_core.testing.pytest_plugin`).
"""

from __future__ import annotations

import bisect
import json
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
import wave
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from ..audio import write_wav
from ..types import AudioFormat

__all__ = ["Recording", "VirtualAudio", "no_sound_environment"]

SCRIPTS = Path(__file__).parent / "pulse"
REQUIRED_TOOLS = ("pulseaudio", "pactl", "pacmd", "paplay", "parec", "pacat")
MIC = "virtmic"
MIC_FEED = "micfeed"
SPEAKER_MONITOR = "speaker.monitor"
RATE = 16000
_COMMAND_TIMEOUT = 10.0
_SCRIPT_TIMEOUT = 30.0
#: The server's unix sockets under its folder: the clients' (ci.pa) and the CLI's (PULSE_RUNTIME_PATH).
_SOCKETS = ("native", "run/pulse/cli")
_SOCKET_PATH_MAX = 107  # bytes: a unix socket address holds 108, the terminating NUL included


def no_sound_environment(folder: Path) -> dict[str, str]:
    """Environment variables under which a client finds no sound at all, whatever this machine has:
    no PulseAudio server, no PipeWire socket, and an ALSA configuration without cards or a default
    device. Files it needs are made in ``folder``; apply the result to a subprocess's environment
    (or with ``monkeypatch.setenv``)."""
    alsa = Path(folder) / "asound.conf"
    alsa.write_text("# no cards, no default device\n")
    runtime = Path(folder) / "runtime"
    runtime.mkdir(mode=0o700, exist_ok=True)
    return {
        "PULSE_SERVER": f"unix:{folder}/no-pulse-server",
        "ALSA_CONFIG_PATH": str(alsa),
        "XDG_RUNTIME_DIR": str(runtime),  # no PipeWire socket there
        "PIPEWIRE_REMOTE": f"{folder}/no-pipewire",
    }


def _run(args: Sequence[str], env: dict[str, str] | None = None, timeout: float = _COMMAND_TIMEOUT) -> str:
    """Run ``args`` to completion and return its stdout; any failure becomes a RuntimeError."""
    shown = " ".join(args)
    try:
        done = subprocess.run(
            list(args), env=env, capture_output=True, text=True, timeout=timeout, check=True, stdin=subprocess.DEVNULL
        )
    except subprocess.CalledProcessError as e:
        raise RuntimeError(f"`{shown}` failed (exit {e.returncode}): {e.stderr.strip() or '(no stderr)'}") from e
    except subprocess.TimeoutExpired as e:
        stderr = (e.stderr or b"").decode(errors="replace") if isinstance(e.stderr, bytes) else (e.stderr or "")
        raise RuntimeError(f"`{shown}` did not finish within {timeout} s: {stderr.strip() or '(no stderr)'}") from e
    return done.stdout


def _parse_exports(text: str) -> dict[str, str]:
    """``export K='V'`` lines (as pulse-up.sh prints them) → ``{K: V}``; other lines are ignored."""
    env = {}
    for line in text.splitlines():
        if line.startswith("export ") and "=" in line:
            key, _, value = line[len("export ") :].partition("=")
            env[key.strip()] = value.strip().strip("'")
    return env


def _alive(pid: int) -> bool:
    """True if ``pid`` exists and is not a zombie (a slow-reaping PID 1 leaves zombies for a while)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    state = next((line for line in status.splitlines() if line.startswith("State:")), "State: ?")
    return not state.split(":", 1)[1].strip().startswith("Z")


def _wav_seconds(path: Path) -> float:
    with wave.open(str(path), "rb") as w:
        return w.getnframes() / w.getframerate()


_CLOCK_WINDOW = 0.5  # seconds of reads around a moment that place it (see Recording.index_at)


class Recording:
    """Raw int16 mono audio captured from one PulseAudio source by ``parec``, read in a thread.

    Made by :meth:`VirtualAudio.record`. :attr:`pcm` and :meth:`samples` may be read from any thread
    while recording; they return a snapshot. ``parec`` sends nothing until the server has connected
    the stream, so call :meth:`wait_for_data` before playing what the test wants to hear.
    """

    def __init__(self, args: list[str], env: dict[str, str], sample_rate: int) -> None:
        self.sample_rate = sample_rate
        self._chunks: list[bytes] = []
        self._lock = threading.Lock()
        self._first_data = threading.Event()
        # per read: its monotonic time minus the duration of the audio received up to it
        self._read_times: list[float] = []
        self._offsets: list[float] = []
        self._args = args
        self._proc = subprocess.Popen(
            args, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        self._reader = threading.Thread(target=self._read, name="parec-reader", daemon=True)
        self._reader.start()

    def _read(self) -> None:
        fd = self._proc.stdout.fileno()
        received = 0
        while chunk := os.read(fd, 4096):
            received += len(chunk)
            now = time.monotonic()
            with self._lock:
                self._chunks.append(chunk)
                self._read_times.append(now)
                self._offsets.append(now - received // 2 / self.sample_rate)
            self._first_data.set()

    @property
    def pid(self) -> int:
        """The ``parec`` process id (to find or kill its capture stream)."""
        return self._proc.pid

    def wait_for_data(self, timeout: float = 5.0) -> None:
        """Block until the first bytes arrived; RuntimeError (with parec's stderr) if none in ``timeout`` s."""
        if not self._first_data.wait(timeout):
            raise RuntimeError(f"`{' '.join(self._args)}` produced no audio within {timeout} s: {self._stderr()}")

    @property
    def pcm(self) -> bytes:
        """Everything captured so far, int16 little-endian mono bytes (whole frames only)."""
        with self._lock:
            data = b"".join(self._chunks)
        return data[: len(data) // 2 * 2]

    def samples(self) -> np.ndarray:
        """:attr:`pcm` as an int16 numpy array."""
        return np.frombuffer(self.pcm, dtype="<i2")

    def index_at(self, moment: float) -> int:
        """The sample index recorded at monotonic time ``moment`` (to about 10 ms, parec's latency).

        Lines up what a test saw happen (an event's time) with what came out of the speaker.
        The sound server's clock drifts against the monotonic clock (about 100 ppm here: 15 ms
        over two minutes), so the moment is placed by the reads around it, not the latest one.
        """
        return round((moment - self._offset(moment)) * self.sample_rate)

    def moment_of(self, index: int) -> float:
        """The monotonic time at which sample ``index`` was recorded (the inverse of :meth:`index_at`)."""
        rough = index / self.sample_rate + self._offset(None)
        return index / self.sample_rate + self._offset(rough)

    def drift_ppm(self) -> float:
        """How much faster the recording's clock ran than the monotonic clock, in parts per million."""
        with self._lock:
            first, last = self._read_times[0], self._read_times[-1]
        if last - first < 4 * _CLOCK_WINDOW:
            return 0.0
        early, late = first + _CLOCK_WINDOW, last - _CLOCK_WINDOW
        return (self._offset(early) - self._offset(late)) / (late - early) * 1e6

    def _offset(self, moment: float | None) -> float:
        """Read time minus recorded audio near ``moment`` (None: the latest): the smallest one, from
        the read that came soonest after its audio."""
        with self._lock:
            if not self._read_times:
                raise RuntimeError("nothing recorded yet: call wait_for_data() first")
            if moment is None:
                return self._offsets[-1]
            low = bisect.bisect_left(self._read_times, moment - _CLOCK_WINDOW)
            high = bisect.bisect_right(self._read_times, moment + _CLOCK_WINDOW)
            if low < high:
                return min(self._offsets[low:high])
            nearest = min(max(low, 0), len(self._read_times) - 1)
            return self._offsets[nearest]

    def stop(self) -> None:
        """Stop ``parec`` and wait for the reader; safe to call twice."""
        if self._proc.poll() is None:
            self._proc.terminate()
        try:
            self._proc.wait(timeout=_COMMAND_TIMEOUT)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()
        self._reader.join(timeout=_COMMAND_TIMEOUT)
        self._proc.stdout.close()
        self._proc.stderr.close()

    def _stderr(self) -> str:
        if self._proc.poll() is None:
            return "(parec still running, no stderr yet)"
        return self._proc.stderr.read().decode(errors="replace").strip() or "(no stderr)"


class VirtualAudio:
    """One headless PulseAudio server living in ``audio_dir``, plus helpers to feed and break it.

    Make one with :meth:`start`; :meth:`stop` ends it. While it runs, its client variables
    (``PULSE_SERVER`` and friends, see :attr:`env`) are set in ``os.environ``, so PortAudio, PyAudio
    and sounddevice imported later in this process, and any child process, reach this server.
    """

    def __init__(self, audio_dir: Path) -> None:
        """Use :meth:`start`; this only records where the server lives."""
        self.audio_dir = Path(audio_dir)
        #: The variables pulse-up.sh exported, as applied to ``os.environ``.
        self.env: dict[str, str] = {}
        #: True once a fault helper changed the device graph; :meth:`reset` clears it.
        self.graph_changed = False
        self._saved_environ: dict[str, str | None] = {}
        self._wav_count = 0

    # ---- availability and lifecycle ----------------------------------------------------------

    @staticmethod
    def unavailable_reason() -> str | None:
        """None when the PulseAudio tools this kit runs are on PATH, else why not and how to fix it."""
        missing = [tool for tool in REQUIRED_TOOLS if shutil.which(tool) is None]
        if not missing:
            return None
        return (
            f"virtual audio needs {', '.join(missing)}, not found on PATH: run ./scripts/setup.sh, which installs "
            "pulseaudio pulseaudio-utils libasound2-plugins"
        )

    @staticmethod
    def fits(audio_dir: Path) -> bool:
        """True when the server's unix sockets under ``audio_dir`` are short enough to be bound
        (107 bytes); a deep folder (a long ``--basetemp`` or ``TMPDIR``) is not."""
        return all(len(os.fsencode(Path(audio_dir) / name)) <= _SOCKET_PATH_MAX for name in _SOCKETS)

    @classmethod
    def start(cls, audio_dir: Path) -> VirtualAudio:
        """Start a server in ``audio_dir`` (created if needed) and point ``os.environ`` at it.

        Blocks for about 0.3 s. Raises RuntimeError with the tail of ``pulse.log`` when the server
        does not come up, and before trying when ``audio_dir`` is too deep (see :meth:`fits`).
        """
        audio = cls(audio_dir)
        audio._up()
        return audio

    @classmethod
    @contextmanager
    def temporary(cls, prefix: str = "magoo-audio-") -> Iterator[VirtualAudio]:
        """A server in a temporary directory for the ``with`` block (benches, tools), stopped after it.

        Raises RuntimeError, naming the reason or the server's log, when it cannot run here; a
        server that failed or was interrupted half-way up is stopped too.
        """
        reason = cls.unavailable_reason()
        if reason is not None:
            raise RuntimeError(reason)
        with tempfile.TemporaryDirectory(prefix=prefix) as audio_dir:
            try:
                audio = cls.start(Path(audio_dir))
            except BaseException:
                cls(Path(audio_dir)).stop()  # pulse-up.sh may have daemonized it before it failed
                raise
            try:
                yield audio
            finally:
                audio.stop()

    def stop(self) -> None:
        """Stop the server and keepalives; restore the ``os.environ`` values :meth:`start` changed."""
        try:
            self._script("pulse-down.sh")
        finally:
            for key, value in self._saved_environ.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value
            self._saved_environ.clear()

    def restart_server(self) -> None:
        """Bring a killed server (see :meth:`kill_server`) back, keepalives included (about 0.3 s).

        On a live server it only restarts missing keepalives; the device graph is left as it is.
        """
        self._up()

    def reset(self) -> None:
        """Stop and start again: a clean device graph, every stream gone (about 0.3 s)."""
        self._script("pulse-down.sh")
        self._up()

    def _up(self) -> None:
        if not self.fits(self.audio_dir):
            raise RuntimeError(
                f"cannot start PulseAudio in {self.audio_dir}: its socket {self.audio_dir / _SOCKETS[-1]} would be longer"
                f" than the {_SOCKET_PATH_MAX} bytes a unix socket path can have; use a shorter folder (for pytest,"
                " a shorter --basetemp or TMPDIR)"
            )
        self.audio_dir.mkdir(parents=True, exist_ok=True)
        try:
            out = self._script("pulse-up.sh", ALSA_MINIMAL="1")
        except RuntimeError as e:
            raise RuntimeError(f"{e}\n--- tail of {self.audio_dir / 'pulse.log'} ---\n{self._log_tail()}") from e
        self.env = _parse_exports(out)
        if "PULSE_SERVER" not in self.env:
            raise RuntimeError(f"pulse-up.sh printed no PULSE_SERVER export:\n{out}")
        for key, value in self.env.items():
            self._saved_environ.setdefault(key, os.environ.get(key))
            os.environ[key] = value
        self.graph_changed = False

    def _script(self, name: str, **extra: str) -> str:
        env = {**os.environ, **self.env, "AUDIO_DIR": str(self.audio_dir), **extra}
        return _run(["bash", str(SCRIPTS / name)], env=env, timeout=_SCRIPT_TIMEOUT)

    def _log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join((self.audio_dir / "pulse.log").read_text(errors="replace").splitlines()[-lines:])
        except OSError as e:
            return f"(no log: {e})"

    def _client_env(self) -> dict[str, str]:
        return {**os.environ, **self.env}

    def _pactl(self, *args: str) -> str:
        return _run(["pactl", *args], env=self._client_env())

    def _pactl_json(self, *args: str) -> Any:
        return json.loads(self._pactl("-f", "json", *args))

    # ---- feeding the microphone, hearing the speaker ----------------------------------------

    def play(self, source: Path | tuple[bytes, int], *, wait: bool = True) -> subprocess.Popen | None:
        """Play into the virtual microphone (``paplay --device=micfeed``), paced in real time.

        :param source: a WAV path, or ``(pcm, sample_rate)`` with mono int16 PCM bytes (written to a
            WAV in ``audio_dir``). 16 kHz mono reaches ``virtmic`` bit for bit; other rates are resampled.
        :param wait: block until played (about the sound's length), else return the running
            ``paplay`` process (stdout/stderr discarded); the caller waits for or kills it.
        """
        if isinstance(source, tuple):
            pcm, sample_rate = source
            self._wav_count += 1
            path = write_wav(self.audio_dir / f"play-{self._wav_count}.wav", pcm, AudioFormat(sample_rate))
        else:
            path = Path(source)
        args = ["paplay", f"--device={MIC_FEED}", str(path)]
        if not wait:
            return subprocess.Popen(
                args,
                env=self._client_env(),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        _run(args, env=self._client_env(), timeout=_wav_seconds(path) + _COMMAND_TIMEOUT)
        return None

    @contextmanager
    def record(self, device: str = SPEAKER_MONITOR, sample_rate: int = RATE) -> Iterator[Recording]:
        """Record ``device`` (default ``speaker.monitor``, what the app played) for the ``with`` block.

        Yields a :class:`Recording` that keeps growing until the block ends; call its
        :meth:`~Recording.wait_for_data` before starting the sound to be heard.
        """
        args = [
            "parec",
            "--raw",
            f"--device={device}",
            "--format=s16le",
            f"--rate={sample_rate}",
            "--channels=1",
            "--latency-msec=10",
        ]
        recording = Recording(args, self._client_env(), sample_rate)
        try:
            yield recording
        finally:
            recording.stop()

    # ---- fault injection ---------------------------------------------------------------------

    def my_source_outputs(self, pid: int | None = None) -> list[int]:
        """Indexes of the capture streams opened by process ``pid`` (default: this one)."""
        wanted = str(pid if pid is not None else os.getpid())
        outputs = self._pactl_json("list", "source-outputs")
        return [o["index"] for o in outputs if o["properties"].get("application.process.id") == wanted]

    def kill_capture_streams(self, pid: int | None = None) -> list[int]:
        """Kill ``pid``'s capture streams, like a USB read error: they die, the app must reopen.

        Returns the indexes killed (empty if the process had none).
        """
        killed = self.my_source_outputs(pid)
        for index in killed:
            _run(["pacmd", "kill-source-output", str(index)], env=self._client_env())
        return killed

    def stall(self, on: bool) -> None:
        """Suspend (``on``) or resume the microphone: no data and no error while suspended."""
        self._pactl("suspend-source", MIC, "1" if on else "0")
        if on:
            self.graph_changed = True

    def unplug(self) -> None:
        """Remove ``virtmic``; PulseAudio silently moves open capture streams to another source."""
        sources = self._pactl_json("list", "sources")
        module = next((s["owner_module"] for s in sources if s["name"] == MIC), None)
        if module is None:
            raise RuntimeError(f"cannot unplug: no source {MIC!r} (found {[s['name'] for s in sources]})")
        self._pactl("unload-module", str(module))
        self.graph_changed = True

    def replug(self) -> None:
        """Bring ``virtmic`` back as the default source; moved streams follow it back."""
        self._pactl(
            "load-module",
            "module-remap-source",
            f"source_name={MIC}",
            f"master={MIC_FEED}.monitor",
            "source_properties=device.description=VirtualMic",
        )
        self._pactl("set-default-source", MIC)
        self.graph_changed = True

    def kill_server(self, timeout: float = 5.0) -> None:
        """``kill -9`` the server and return once it is gone (a zombie counts as gone).

        Every stream dies with it; :meth:`restart_server` brings it back.
        """
        pid_file = Path(self.env["PULSE_RUNTIME_PATH"]) / "pid"
        try:
            pid = int(pid_file.read_text().split()[0])
        except (OSError, ValueError, IndexError) as e:
            raise RuntimeError(f"cannot kill the server: no usable pid file {pid_file}: {e}") from e
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        deadline = time.monotonic() + timeout
        while _alive(pid):
            if time.monotonic() > deadline:
                raise RuntimeError(f"pulseaudio ({pid}) still alive {timeout} s after SIGKILL")
            time.sleep(0.02)
        self.graph_changed = True

    # ---- inspection --------------------------------------------------------------------------

    def default_source(self) -> str:
        """The server's default source name (``virtmic`` unless a fault changed it)."""
        return self._pactl_json("info")["default_source_name"]

    def source_state(self, name: str = MIC) -> str | None:
        """``RUNNING``, ``IDLE`` or ``SUSPENDED`` for source ``name``; None if there is no such source."""
        return next((s["state"] for s in self._pactl_json("list", "sources") if s["name"] == name), None)
