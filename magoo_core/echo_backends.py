"""The echo cancellers themselves: each takes 10 ms of microphone and 10 ms of the aligned
far-end reference and returns 10 ms of microphone with the echo taken out.

Two methods, chosen by measurement (docs/duplex.md, ``bench/duplex.py``):

* ``webrtc``: WebRTC's audio processing module (AEC3 with its residual echo suppressor and a
  high-pass filter), through LiveKit's wheel (``livekit.rtc.AudioProcessingModule``), which ships
  the library for x86_64 and aarch64. Imported when a canceller is made, never at import time.
* ``speex``: speexdsp's multi-delay block filter plus its residual echo suppressor, through ctypes
  on Debian's ``libspeexdsp1`` (already there with PulseAudio): no wheel needed at all.

Contracts: :meth:`process` is synchronous pure CPU (tens of microseconds per frame), called from
one thread at a time; frames are int16 numpy arrays of exactly :attr:`frame` samples, mono.
Making a canceller raises :class:`EchoUnavailable` with one readable line when its library is
missing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
from typing import Any, Protocol

import numpy as np

__all__ = ["Canceller", "EchoUnavailable", "METHODS", "make_canceller"]

#: the sample rates both methods take
RATES = (8000, 16000, 32000, 48000)


class EchoUnavailable(RuntimeError):
    """The canceller cannot be made here (library missing, bad rate); the message says what to do."""


class Canceller(Protocol):
    frame: int

    def process(self, near: np.ndarray, far: np.ndarray) -> np.ndarray: ...

    def close(self) -> None: ...


class WebRtcCanceller:
    """WebRTC AEC3 via ``livekit.rtc.AudioProcessingModule`` (the far end is given already aligned,
    so the stream delay is 0; AEC3 still follows what is left with its own delay estimator)."""

    INSTALL = "uv pip install 'magoo[echo-cancel]'  (LiveKit's wheel carries WebRTC's audio processing)"

    def __init__(self, rate: int) -> None:
        try:
            from livekit import rtc
        except ImportError as exc:
            raise EchoUnavailable(f"method 'webrtc' needs the livekit package ({exc}): {self.INSTALL}") from None
        self._rtc = rtc
        self.rate = rate
        self.frame = rate // 100
        self._apm = rtc.AudioProcessingModule(echo_cancellation=True, high_pass_filter=True)
        self._apm.set_stream_delay_ms(0)

    def process(self, near: np.ndarray, far: np.ndarray) -> np.ndarray:
        reverse = self._rtc.AudioFrame(bytearray(far.astype("<i2").tobytes()), self.rate, 1, self.frame)
        self._apm.process_reverse_stream(reverse)
        frame = self._rtc.AudioFrame(bytearray(near.astype("<i2").tobytes()), self.rate, 1, self.frame)
        self._apm.process_stream(frame)
        return np.frombuffer(bytes(frame.data.cast("B")), dtype="<i2")

    def close(self) -> None:
        self._apm = None


# speex_echo.h / speex_preprocess.h request numbers
_SPEEX_ECHO_SET_SAMPLING_RATE = 24
_SPEEX_PREPROCESS_SET_ECHO_STATE = 24
_FAR_QUIET = 30  # int16 peak under which a far-end frame plays nothing (-60 dBFS)


def _speexdsp() -> Any:
    name = ctypes.util.find_library("speexdsp") or "libspeexdsp.so.1"
    try:
        lib = ctypes.CDLL(name)
    except OSError as exc:
        raise EchoUnavailable(f"method 'speex' needs libspeexdsp ({exc}): sudo apt-get install libspeexdsp1") from None
    lib.speex_echo_state_init.restype = ctypes.c_void_p
    lib.speex_echo_state_init.argtypes = [ctypes.c_int, ctypes.c_int]
    lib.speex_echo_ctl.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_void_p]
    lib.speex_echo_cancellation.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p]
    lib.speex_echo_state_destroy.argtypes = [ctypes.c_void_p]
    lib.speex_preprocess_state_init.restype = ctypes.c_void_p
    lib.speex_preprocess_state_init.argtypes = [ctypes.c_int, ctypes.c_int]
    lib.speex_preprocess_ctl.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_void_p]
    lib.speex_preprocess_run.argtypes = [ctypes.c_void_p, ctypes.c_void_p]
    lib.speex_preprocess_state_destroy.argtypes = [ctypes.c_void_p]
    return lib


class SpeexCanceller:
    """speexdsp's echo canceller (an adaptive filter ``tail`` seconds long) and its residual echo
    suppressor (the preprocessor given the echo state), the latter only while something played
    within the last ``tail`` seconds. The output lags the input by one frame (10 ms)."""

    def __init__(self, rate: int, tail: float) -> None:
        self._lib = _speexdsp()
        self.frame = rate // 100
        self._echo = self._lib.speex_echo_state_init(self.frame, int(tail * rate))
        value = ctypes.c_int(rate)
        self._lib.speex_echo_ctl(self._echo, _SPEEX_ECHO_SET_SAMPLING_RATE, ctypes.byref(value))
        self._pre = self._lib.speex_preprocess_state_init(self.frame, rate)
        self._lib.speex_preprocess_ctl(self._pre, _SPEEX_PREPROCESS_SET_ECHO_STATE, ctypes.c_void_p(self._echo))
        self._tail_frames = int(tail * 100)
        self._quiet = self._tail_frames + 1

    def process(self, near: np.ndarray, far: np.ndarray) -> np.ndarray:
        near = np.ascontiguousarray(near, dtype=np.int16)
        far = np.ascontiguousarray(far, dtype=np.int16)
        out = np.empty(self.frame, dtype=np.int16)
        self._lib.speex_echo_cancellation(self._echo, near.ctypes.data, far.ctypes.data, out.ctypes.data)
        self._quiet = 0 if np.abs(far).max(initial=0) > _FAR_QUIET else self._quiet + 1
        linear = out.copy()
        self._lib.speex_preprocess_run(self._pre, out.ctypes.data)  # run always: it keeps its estimates
        # With nothing played for longer than the filter's tail there is no echo to suppress, and
        # the suppressor's spectral gains (its denoiser) only cost speech-to-text words: the user's
        # command, said after the reply, goes through untouched.
        return linear if self._quiet > self._tail_frames else out

    def close(self) -> None:
        if self._echo:
            self._lib.speex_echo_state_destroy(self._echo)
            self._lib.speex_preprocess_state_destroy(self._pre)
            self._echo = self._pre = None


#: method name → how to make one (rate in Hz, tail in seconds)
METHODS = {
    "webrtc": lambda rate, tail: WebRtcCanceller(rate),
    "speex": lambda rate, tail: SpeexCanceller(rate, tail),
}


def make_canceller(method: str, rate: int, tail: float = 0.4) -> Canceller:
    """A canceller of ``method`` for mono int16 audio at ``rate`` Hz.

    :raises EchoUnavailable: unknown method, a rate it does not take, or its library is missing.
    """
    if rate not in RATES:
        raise EchoUnavailable(f"echo cancellation takes {', '.join(map(str, RATES))} Hz audio, not {rate} Hz: set the microphone's rate")
    if method not in METHODS:
        raise EchoUnavailable(f"no echo cancellation method {method!r}: use one of {', '.join(METHODS)}")
    return METHODS[method](rate, tail)
