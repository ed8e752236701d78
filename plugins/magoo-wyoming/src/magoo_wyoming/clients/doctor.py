"""``magoo doctor`` rows of the Wyoming client backends: what the server said in ``describe``."""

from __future__ import annotations

import asyncio
from typing import Any

from magoo_core import BackendError
from magoo_core.doctor.rows import Check, fail, ok

from .service import AUTO_FIX, Service, offers

#: seconds a doctor row may take, under the doctor's own 8 s per backend (zeroconf browses first)
DOCTOR_SECONDS = 6.5


def server_rows(cls: Any, config: Any, section: str) -> list[Check]:
    """One row: the server answers ``describe`` and has a program that fits the config (its
    models, languages and version), or why not. Blocking: runs its own event loop (the doctor
    calls it in a worker thread)."""
    check = f"{section} {cls.name} server"
    service = Service(config, section, cls.wanted(config), cls.picker(config))

    async def ask() -> Any:
        async with asyncio.timeout(DOCTOR_SECONDS):
            return await service.describe()

    try:
        info = asyncio.run(ask())
    except TimeoutError:
        return [fail(check, f"no answer from {config.uri} within {DOCTOR_SECONDS:g} s", "start the server, or set uri to where it runs")]
    except BackendError as exc:
        fix = AUTO_FIX if config.uri == "auto" else "start the server, or fix uri"
        if not exc.retryable:
            fix = "set the model/voice/language to one the server offers"
        found = exc.message.removesuffix(f"; {AUTO_FIX}")
        return [fail(check, found, fix)]
    return [ok(check, f"{service.address}: {describe_program(service.program)}; {offers(info)}")]


def describe_program(program: Any) -> str:
    """A program's name, version and what it streams, in a few words."""
    words = [program.name + (f" {program.version}" if getattr(program, "version", None) else "")]
    for flag, said in (("supports_transcript_streaming", "streams transcripts"), ("supports_synthesize_streaming", "streams speech"),
                       ("supports_handled_streaming", "streams answers")):
        if getattr(program, flag, False):
            words.append(said)
    if getattr(program, "requires_external_vad", False):
        words.append("needs magoo to end utterances")
    languages = sorted({lang for item in (getattr(program, "models", None) or []) for lang in (item.languages or [])})
    if languages:
        words.append("languages " + ", ".join(languages[:8]) + (" ..." if len(languages) > 8 else ""))
    return ", ".join(words)
