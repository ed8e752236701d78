"""``magoo doctor`` rows for the mpv player: the binary, and the start check against the configured output."""

from __future__ import annotations

import asyncio
import shutil
from typing import TYPE_CHECKING

from magoo_core.doctor import binary_version, fail, ok, warn
from magoo_core.errors import BackendError

from .output_check import SILENCE, SILENCE_OPTIONS, check_output
from .process import OUTPUT_FIX

if TYPE_CHECKING:
    from magoo_core.doctor import Check

    from . import MpvPlayer

#: seconds the sound output row may take: mpv starts, opens the output and plays 50 ms
OUTPUT_TIMEOUT = 4.0


def player_rows(player: MpvPlayer, section: str) -> list[Check]:
    """The binary's row, then (when mpv is there) whether 50 ms of silence plays through ``audio_device``."""
    config = player.config
    path, version = binary_version(config.mpv)
    if path is None:
        why = f"{section} mpv plays the replies"
        install = "sudo apt install mpv" if config.mpv == "mpv" else f"sudo apt install mpv, or fix mpv in {section}"
        if config.fallback == "mpg123" and shutil.which(config.mpg123):
            return [warn(config.mpv, f"not on PATH; {why}: mp3 plays through mpg123, other formats cannot", install)]
        return [fail(config.mpv, f"not on PATH, and {why}", install)]
    player._binary = path
    return [ok(config.mpv, f"{version or config.mpv} at {path}"), output_row(player, section)]


def output_row(player: MpvPlayer, section: str) -> Check:
    """The player's own start check, run once: mpv plays silence with a reply's output options."""
    name = f"{section} sound output"
    device = player.config.audio_device
    command = player._mpv_command(SILENCE_OPTIONS, SILENCE)
    try:
        asyncio.run(check_output(command, device, timeout=OUTPUT_TIMEOUT))
    except BackendError as exc:
        reason, fixed, _ = exc.message.rpartition(f": {OUTPUT_FIX}")
        if fixed:
            return fail(name, reason, OUTPUT_FIX)
        return fail(name, exc.message, f"fix mpv and extra_args in {section}")
    return ok(name, f"plays through '{device}' (50 ms of silence, with a reply's output options)")
