"""The sound server, the ALSA cards, the microphones each capture backend lists, and the profile's microphone."""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import signal
import sys
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from ..capture import PREFERRED_RATES, DeviceCapture, select_devices
from ..profile import BackendSpec
from ..types import DeviceInfo
from .context import Context
from .rows import Check, fail, ok, warn
from .running import run_command

PACTL_TIMEOUT = 2.0
#: `magoo devices` in a subprocess: starting Python and magoo, then PortAudio probing each rate
DEVICES_TIMEOUT = 8.0

ASOUND_CARDS = Path("/proc/asound/cards")
START_SOUND_SERVER = "systemctl --user start pipewire-pulse  (or: pulseaudio --start)"
PLUG_IN_MICROPHONE = f"plug in a USB microphone, or start PulseAudio or PipeWire: {START_SOUND_SERVER}"


async def check_sound(context: Context) -> list[Check]:
    server, listing = await asyncio.gather(_sound_server(), _list_devices(context))
    rows = [server, _alsa_cards()]
    needs_microphone = context.profile is None or _device_source(context) is not None
    if not listing:
        rows.append(warn(
            "microphones", "no installed backend can capture from a sound device",
            "uv pip install magoo-pyaudio  (or magoo-sounddevice)",
        ))
    backends: dict[Check, list[str]] = {}  # backends that see the same thing share a row
    for backend, (devices, problem) in listing.items():
        inputs = [d for d in devices if d.max_input_channels > 0]
        if inputs:
            row = ok("", "; ".join(_describe_input(d) for d in inputs))
            backends.setdefault(row, []).append(backend)
            continue
        found = f"no input device at all: {problem}" if problem else "no input device at all"
        install = re.search(r"Install it with: (.*)$", problem or "")
        fix = install.group(1) if install else PLUG_IN_MICROPHONE
        row = fail("", found, fix) if needs_microphone else warn("", f"{found} (the profile needs none)", fix)
        backends.setdefault(row, []).append(backend)
    rows.extend(replace(row, check=f"microphones ({', '.join(names)})") for row, names in backends.items())
    spec = _device_source(context)
    if spec is not None:
        rows.append(_profile_device(spec, listing.get(spec.backend)))
    return rows



async def _sound_server() -> Check:
    name = "sound server"
    if shutil.which("pactl") is None:
        found = "pactl is not installed, so no PulseAudio or PipeWire server can be asked"
        return warn(name, found, "sudo apt install pulseaudio-utils")
    try:
        code, out, err = await run_command(["pactl", "info"], PACTL_TIMEOUT)
    except TimeoutError:
        found = f"`pactl info` got no answer within {PACTL_TIMEOUT:g} s: the server hangs, and all sound through it"
        return fail(name, found, f"restart it: {START_SOUND_SERVER}")
    if code != 0:
        reason = (err.strip().splitlines() or ["no answer"])[0]
        fix = f"start it: {START_SOUND_SERVER}; without one (Pi OS Lite), name the USB card in [audio_source] device"
        return warn(name, f"no PulseAudio or PipeWire server answers ({reason})", fix)
    info = dict(line.split(": ", 1) for line in out.splitlines() if ": " in line)
    server = f"{info.get('Server Name', 'a server')} {info.get('Server Version', '')}".strip()
    found = f"{server} at {info.get('Server String', '?')}; default source {info.get('Default Source', '(none)')}"
    return ok(name, found)


def _alsa_cards() -> Check:
    name = "ALSA cards"
    try:
        text = ASOUND_CARDS.read_text()
    except OSError:
        text = ""
    cards = re.findall(r"^\s*(\d+)\s+\[([^\]]*?)\s*\]:\s*(.*?)\s*$", text, re.MULTILINE)
    if not cards:
        fix = "plug in a USB microphone; `arecord -l` lists the cards that capture"
        return warn(name, f"the kernel lists no sound card ({ASOUND_CARDS})", fix)
    return ok(name, "; ".join(f"{number} {card_id}: {description}" for number, card_id, description in cards))


async def _list_devices(context: Context) -> dict[str, tuple[list[DeviceInfo], str | None]]:
    """What ``magoo devices --json`` lists, per capture backend: (devices, problem or None).

    In a subprocess: PortAudio can hang on a stalled sound server, and it writes ALSA's and
    JACK's complaints straight to file descriptor 2.
    """
    expected = [name for name, _ in context.plugins.device_listers()]
    if not expected:
        return {}
    try:
        devices = [sys.executable, "-m", "magoo_core.cli", "devices", "--json"]
        code, out, err = await run_command(devices, DEVICES_TIMEOUT)
    except TimeoutError:
        problem = f"listing the devices took over {DEVICES_TIMEOUT:g} s (a hung sound server?)"
        return {name: ([], problem) for name in expected}
    if code < 0:  # PortAudio aborts when ALSA has no device at all, rather than listing none
        last = err.strip().splitlines()[-1] if err.strip() else ""
        problem = f"`magoo devices` crashed ({signal.Signals(-code).name}){f': {last}' if last else ''}"
        return {name: ([], problem) for name in expected}
    try:
        listed = json.loads(out) if out.strip() else {}
    except json.JSONDecodeError:
        listed = {}
    errors = dict(re.findall(r"^(\S+): could not list devices: (.*)$", err, re.MULTILINE))
    result = {}
    for name in expected:
        if name in listed:
            result[name] = ([_device(d) for d in listed[name]], None)
        else:
            result[name] = ([], f"could not list devices: {errors.get(name, 'no answer from `magoo devices`')}")
    return result


def _device(data: Mapping[str, Any]) -> DeviceInfo:
    rates = {key: tuple(data[key]) for key in ("input_rates", "output_rates")}
    return DeviceInfo(**{**data, **rates})


def _describe_input(device: DeviceInfo) -> str:

    default = ", default" if device.default_input else ""
    rates = f"{DeviceInfo.khz(device.input_rates)} kHz" if device.input_rates else "no rate opens"
    return f"[{device.index}] {device.name}{default}: {rates}"


def _device_source(context: Context) -> BackendSpec | None:
    spec = context.profile.audio_source if context.profile else None
    return spec if spec is not None and issubclass(spec.info.cls, DeviceCapture) else None


def _profile_device(spec: BackendSpec, listed: tuple[list[DeviceInfo], str | None] | None) -> Check:
    """The profile's microphone, found by the rule the capture uses, and whether its rate opens."""
    wanted = spec.config.device
    name = f"{spec.section} device"
    shown = "the default input" if wanted is None else repr(wanted)
    devices, problem = listed or ([], f"{spec.backend} listed nothing")
    inputs = [d for d in devices if d.max_input_channels > 0]
    choose = "set [audio_source] device to a part of one of their names; `magoo devices` lists them"
    if problem:
        return fail(name, f"{shown}: {problem}", "fix the microphone rows above first")
    matches = select_devices(devices, wanted)
    if not matches:
        found = ", ".join(f"[{d.index}] {d.name}" for d in inputs) or "none"
        return fail(name, f"no input matches {shown}; inputs: {found}", choose if inputs else "plug in the microphone")
    rate = spec.config.sample_rate
    for device in matches:
        if rate == "auto" and device.input_rates:
            return ok(name, f"{shown} is [{device.index}] {device.name}; opens at {_first_rate(device)} Hz (auto)")
        if rate in device.input_rates:
            return ok(name, f"{shown} is [{device.index}] {device.name}; opens at {rate} Hz")
    device = matches[0]
    chosen = f"{shown} is [{device.index}] {device.name}"
    if rate != "auto" and rate not in PREFERRED_RATES:
        found = f"{chosen}; {rate} Hz was not tried (magoo probes only {_hz(PREFERRED_RATES)})"
        return warn(name, found, 'set sample_rate = "auto" unless the device needs exactly this rate')
    opens = _hz(device.input_rates) or "no rate"
    return fail(name, f"{chosen}; it does not open at {rate} Hz (it opens at {opens})", 'set sample_rate = "auto"')


def _first_rate(device: DeviceInfo) -> int:
    return next(rate for rate in PREFERRED_RATES if rate in device.input_rates)


def _hz(rates: tuple[int, ...]) -> str:
    return ", ".join(map(str, rates))
