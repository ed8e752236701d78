"""The start check: mpv plays 50 ms of silence with a reply's output options, run to its end.

A waiting mpv opens the audio device only when a reply's first bytes arrive, so without this a
machine with no sound output, or a wrong ``audio_device``, starts fine and then fails every
reply. Failing at start lets a profile fall back to another player and shows the fault at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import Sequence

from magoo_core.errors import BackendError

from .process import OUTPUT_FIX, exit_wording

#: what mpv plays: the source (in the place of a reply's "-") and its options
SILENCE = "av://lavfi:anullsrc=r=16000:cl=mono"
SILENCE_OPTIONS = ("--length=0.05",)
#: seconds the check may take; a hung sound server must not hang the start
TIMEOUT = 10.0

_DRIVER_LINE = re.compile(r"^\[ao/(\w+)\] ")  # [ao/alsa] Playback open error: No such file or directory
_ALSA_LINE = re.compile(r"^ALSA lib \S+:\(\w+\) ")  # ALSA lib pcm.c:2666:(snd_pcm_open_noupdate) Unknown PCM x
_NO_AUDIO = "Could not open/initialize audio device"


async def check_output(args: Sequence[str], audio_device: str, *, timeout: float | None = None) -> None:
    """Run mpv once on the silence, to its end, and say why the output did not open if it did not.

    :param args: the mpv command line playing :data:`SILENCE` with :data:`SILENCE_OPTIONS`.
    :param audio_device: the configured device, for the message.
    :param timeout: seconds it may take; None: :data:`TIMEOUT`.
    :raises BackendError: retryable when the output did not open or did not finish within
        the time limit (a device or a sound server may come back); not retryable when mpv could
        not run at all (its command line or binary is wrong).
    """
    try:
        proc = await asyncio.create_subprocess_exec(
            *args,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,  # mpv prints its own messages on stdout
            stderr=asyncio.subprocess.STDOUT,  # and the audio libraries theirs on stderr
            start_new_session=True,
        )
    except OSError as exc:
        raise BackendError(f"cannot start {args[0]}: {exc.strerror or exc}", retryable=False) from None
    limit = TIMEOUT if timeout is None else timeout
    try:
        output, _ = await asyncio.wait_for(proc.communicate(), limit)
    except TimeoutError:
        raise BackendError(
            f"mpv did not finish 50 ms of silence on the audio output '{audio_device}' within {limit:g} s"
            f" (a hung sound server or device): {OUTPUT_FIX}"
        ) from None
    finally:  # also when the start is cancelled: the check may not outlive it
        if proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await asyncio.shield(proc.wait())
    lines = [line.strip() for line in output.decode("utf-8", "replace").splitlines() if line.strip()]
    if proc.returncode == 0 and not any(_NO_AUDIO in line for line in lines):
        return
    if any(line.startswith("[ao") or _NO_AUDIO in line for line in lines):
        reasons = "; ".join(output_reasons(lines)) or "no reason given"
        raise BackendError(f"mpv cannot open the audio output '{audio_device}' ({reasons}): {OUTPUT_FIX}")
    tail = f" ({' | '.join(lines[-3:])})" if lines else ""
    raise BackendError(f"mpv {exit_wording(proc.returncode)} at start{tail}", retryable=False)


def output_reasons(lines: Sequence[str]) -> list[str]:
    """mpv's most telling lines about an output that did not open, trimmed.

    The drivers' own reasons (``alsa: Playback open error: ...``), else which driver failed,
    then ALSA's last word (``alsa-lib: Unknown PCM plughw:1``); mpv's generic advice is left out.
    """
    reasons = [f"{match[1]}: {line[match.end():]}" for line in lines if (match := _DRIVER_LINE.match(line))]
    if not reasons:
        reasons = [line.removeprefix("[ao] ") for line in lines if line.startswith("[ao] Failed")]
    alsa = [_ALSA_LINE.sub("alsa-lib: ", line) for line in lines if _ALSA_LINE.match(line)]
    return list(dict.fromkeys(reasons + alsa[-1:]))
