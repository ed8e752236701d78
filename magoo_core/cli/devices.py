"""``magoo devices``: the sound devices each audio backend sees, and plainly what that means.

Each backend is listed in a child process (:mod:`.device_probe`): PortAudio's probing noise stays
out of the output (``-v`` shows it) and a PortAudio crash is one line. Exit code 1 when a backend
could not list, or when no backend found any input device.
"""

# No `from __future__ import annotations`: typer reads these signatures at every start, and real
# annotations spare it an eval() of each.

import dataclasses
import json
import logging
from typing import Annotated

import typer

from .session import Session, say

NO_INPUT_HINT = (
    "is a sound server running? `pactl info` tells; start one with: systemctl --user start pipewire-pulse"
    " (or: pulseaudio --start). Without one, plug in a USB microphone: `arecord -l` lists the cards that capture"
)


def add_devices_command(app: typer.Typer, session: Session) -> None:
    """Register devices on ``app``."""

    @app.command()
    def devices(
        backend: Annotated[str | None, typer.Option(help="Only this backend (e.g. pyaudio).")] = None,
        probe: Annotated[bool, typer.Option(help="Try which sample rates open (slower).")] = True,
        as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
        verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Also print what ALSA and JACK said while probing.")] = False,
    ) -> None:
        """List sound devices as each installed audio backend sees them, with the rates that open."""
        from .device_probe import list_in_child

        if verbose:  # the libraries' lines reach the log (magoo_core.portaudio_quiet), and the log the child's stderr
            logging.basicConfig(level=logging.DEBUG, format="%(name)s: %(message)s")
        listers = session.plugins().device_listers(backend)
        if not listers:
            wanted = f"backend '{backend}'" if backend else "installed backend"
            say(f"no {wanted} can list sound devices; install magoo-pyaudio or magoo-sounddevice")
            raise typer.Exit(1)
        listings = {name: list_in_child(lambda cls=cls: cls.list_devices(probe_rates=probe)) for name, cls in listers}
        failed = False
        for name, listing in listings.items():
            if verbose:
                for line in listing.noise:
                    say(f"{name}: stderr: {line}")
            if listing.problem is not None:
                failed = True
                hint = f"; this happens when ALSA has no device at all: {NO_INPUT_HINT}" if listing.crashed else ""
                say(f"{name}: could not list devices: {listing.problem}{hint}")
            else:
                say(found_line(name, listing.devices, len(listing.noise)))
        if as_json:
            print(json.dumps({n: [dataclasses.asdict(d) for d in l.devices] for n, l in listings.items() if l.problem is None}))
        else:
            for name, listing in listings.items():
                if listing.devices:
                    session.out.print(_devices_table(name, listing.devices))
        inputs = any(d.max_input_channels > 0 for listing in listings.values() for d in listing.devices)
        raise typer.Exit(1 if failed or not inputs else 0)


def found_line(backend: str, devices: list, noise: int) -> str:
    """One line on what a backend found: how many devices and inputs, or what to do about none."""
    inputs = [d for d in devices if d.max_input_channels > 0]
    said = f" (PortAudio's probing printed {noise} lines; -v shows them)" if noise else ""
    if not devices:
        return f"{backend}: no sound devices found; {NO_INPUT_HINT}{said}"
    if not inputs:
        return f"{backend}: {len(devices)} devices, none of them an input (microphone); {NO_INPUT_HINT}{said}"
    default = next((d.name for d in inputs if d.default_input), None)
    default_text = f", default input: {default}" if default else ", no default input"
    return f"{backend}: {len(devices)} devices, {len(inputs)} of them inputs{default_text}{said}"


def _devices_table(backend: str, devices: list):
    from rich.markup import escape
    from rich.table import Table

    from ..types import DeviceInfo

    table = Table(title=f"{escape(backend)} (rates that open, kHz)", title_justify="left")
    for column in ("#", "name", "API", "in", "out", "default", "input rates", "output rates"):
        table.add_column(column, overflow="fold")
    for device in devices:
        defaults = [kind for kind, flag in (("input", device.default_input), ("output", device.default_output)) if flag]
        table.add_row(
            str(device.index),
            escape(device.name),
            escape(device.host_api),
            str(device.max_input_channels),
            str(device.max_output_channels),
            " ".join(defaults),
            DeviceInfo.khz(device.input_rates),
            DeviceInfo.khz(device.output_rates),
        )
    return table
