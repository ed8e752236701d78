"""The general tools a voice assistant plays and speaks with; a profile's own binaries are its backends' rows."""

from __future__ import annotations

import asyncio
import re
import shutil
import subprocess

from .backends import backend_rows
from .context import Context
from .rows import Check, ok, warn

TOOL_TIMEOUT = 2.0
TOOLS = {tool: f"sudo apt install {tool}" for tool in ("mpv", "mpg123", "espeak-ng")}


async def check_tools(context: Context) -> list[Check]:
    """mpv, mpg123 and espeak-ng on PATH; a tool a backend of the profile already reports is left out."""
    reported = {row.check for row in await backend_rows(context)}
    tools = [tool for tool in TOOLS if tool not in reported]
    versions = await asyncio.gather(*(asyncio.to_thread(binary_version, tool) for tool in tools))
    rows = []
    for tool, (path, version) in zip(tools, versions, strict=True):
        if path is None:
            rows.append(warn(tool, "not on PATH", TOOLS[tool]))
        else:
            rows.append(ok(tool, f"{version or tool} at {path}"))
    return rows


def first_version_line(out: str) -> str:
    """The name and version from a ``--version`` output, without the copyright that follows."""
    first = out.strip().splitlines()[0] if out.strip() else ""
    return re.split(r"\s{2,}|\s+(?:Copyright|\(C\)|\()", first)[0][:80]


def binary_version(binary: str, timeout: float = TOOL_TIMEOUT) -> tuple[str | None, str]:
    """(path or None, the first line of ``--version``, or "" when it says nothing in time).
    Blocking: a backend's ``doctor`` runs in a thread; the core's check calls it through one."""
    path = shutil.which(binary)
    if path is None:
        return None, ""
    try:
        done = subprocess.run(
            [path, "--version"], stdin=subprocess.DEVNULL, capture_output=True, text=True, errors="replace",
            timeout=timeout,
        )
    except (subprocess.TimeoutExpired, OSError):
        return path, ""
    return path, first_version_line(done.stdout)
