"""Keep ALSA's and JACK's probing noise off stderr while PortAudio looks for devices.

PortAudio opens every ALSA device and asks for a JACK server each time it lists devices, and the
libraries print each failure straight to file descriptor 2: ~100 lines per listing on a machine
without a sound server, repeated each time the capture looks again for a missing microphone.
:func:`quiet_alsa_and_jack` gives both libraries an error handler that sends the lines to the
``magoo.portaudio`` logger at debug level instead (``-v`` shows them). It swaps no file
descriptor, so the log lines of other threads are never lost.
"""

from __future__ import annotations

import ctypes
import logging

log = logging.getLogger("magoo.portaudio")

# void handler(const char *file, int line, const char *function, int err, const char *fmt, ...):
# the variadic arguments are not read, so the format is logged as it is.
_ALSA_HANDLER = ctypes.CFUNCTYPE(None, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p)
_JACK_HANDLER = ctypes.CFUNCTYPE(None, ctypes.c_char_p)


def _alsa_said(file: bytes | None, line: int, function: bytes | None, err: int, fmt: bytes | None) -> None:
    log.debug("ALSA %s:%d (%s): %s", _text(file), line, _text(function), _text(fmt))


def _jack_said(message: bytes | None) -> None:
    log.debug("JACK: %s", _text(message))


def _text(raw: bytes | None) -> str:
    return raw.decode(errors="replace") if raw else ""


#: The C libraries keep pointers to these: they must live as long as the process.
_HANDLERS = {"alsa": _ALSA_HANDLER(_alsa_said), "jack": _JACK_HANDLER(_jack_said)}


def quiet_alsa_and_jack() -> list[str]:
    """Install the handlers (idempotent; process-wide; any thread) and return the libraries quieted.

    A library that is not installed is skipped: then it cannot print either. Call it before
    PortAudio starts (``PyAudio()``, importing sounddevice) and the handlers are in place when
    it loads the same libraries.
    """
    quieted = []
    for library, setters in (
        ("libasound.so.2", ("snd_lib_error_set_handler",)),
        ("libjack.so.0", ("jack_set_error_function", "jack_set_info_function")),
    ):
        try:
            handle = ctypes.CDLL(library)
        except OSError:
            continue
        handler = _HANDLERS["alsa" if library.startswith("libasound") else "jack"]
        for setter in setters:
            getattr(handle, setter)(handler)
        quieted.append(library)
    return quieted
