"""Which Wyoming server a client backend talks to, and what it said about itself.

:class:`ServerConfig` holds the settings every client shares (``uri``, ``timeout``, ``name``);
:class:`Service` turns them into an open :class:`~magoo_wyoming.connection.Connection`: a fixed
``tcp://host:port``, or ``uri = "auto"``, which browses zeroconf and keeps the first server whose
``describe`` has a program of the role wanted (and the model/voice/language the profile names).
An auto server that stops answering is forgotten, so the next try browses again.

Everything runs on the event loop; every failure is a :class:`~magoo_core.BackendError` in one
line, which sends the backend to the engine's restart machinery (its capped backoff).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from pydantic import Field, field_validator
from wyoming.event import Event
from wyoming.info import Describe, Info

from magoo_core import BackendConfig, BackendError
from magoo_core.fields import Seconds

from ..connection import Address, Connection, parse_uri

log = logging.getLogger("magoo.wyoming")

#: what to do when uri = "auto" finds nothing (the run's error line ends with it; doctor's fix column says it)
AUTO_FIX = 'start the server with --zeroconf, or set uri = "tcp://host:port"'


class ServerConfig(BackendConfig):
    """The settings of every Wyoming client backend."""

    uri: str = Field(
        "auto",
        description='Where the server listens: "tcp://host:port" (piper 10200, whisper 10300, openWakeWord 10400) or "auto" (found with zeroconf).',
    )
    name: str = Field(
        "", description='With uri = "auto": the zeroconf name or program name to prefer ("piper"); "" takes any that fits.'
    )
    timeout: Seconds(0.2, 120) = Field(10.0, description="Seconds to connect, and to wait for each answer of the server (its describe; speech: the first audio and each next chunk), at most.")
    browse_seconds: Seconds(0.2, 30) = Field(2.0, description='With uri = "auto": seconds to listen for zeroconf announcements.')

    @field_validator("uri")
    @classmethod
    def _uri(cls, value: str) -> str:
        if value != "auto":
            parse_uri(value)
        return value


#: picks the program of a role from an ``info``: None when it has none that fits
Picker = Callable[[Info], Any]


def parse_info(data: dict[str, Any]) -> Info:
    """An ``info`` event's data as :class:`wyoming.info.Info`.

    :raises ValueError: the data does not have the shape of an ``info`` (a broken server).
    """
    try:
        return Info.from_event(Event("info", data))
    except Exception as exc:  # the dataclasses_json decoder raises KeyError, TypeError, ...
        raise ValueError(f"an info event that does not parse ({type(exc).__name__}: {str(exc)[:80]})") from None


class Service:
    """Finds and connects to the server of one client backend.

    :param config: the backend's config.
    :param section: what messages call the backend (``"[stt] wyoming"``).
    :param wanted: what the server must offer, in words ("a speech-to-text program with model 'tiny'").
    :param pick: the program of this role in an ``info`` that fits the config, or None.
    """

    def __init__(self, config: ServerConfig, section: str, wanted: str, pick: Picker) -> None:
        self.config = config
        self.section = section
        self.wanted = wanted
        self.pick = pick
        self.address: Address | None = None if config.uri == "auto" else parse_uri(config.uri)
        self.info: Info | None = None  # the last describe's answer
        self.program: Any = None  # what ``pick`` chose from it

    async def connect(self) -> Connection:
        """An open connection to the server (browsing first with ``uri = "auto"``).

        :raises BackendError: nothing found, refused, unreachable (one line).
        """
        if self.address is None:
            await self._discover()
        try:
            return await Connection.open(self.address, self.config.timeout)
        except BackendError:
            if self.config.uri == "auto":
                self.address = None  # gone or moved: browse again next time
            raise

    async def describe(self) -> Info:
        """Ask the server what it offers; keeps ``info`` and ``program``.

        :raises BackendError: no answer, a malformed one, or no program that fits.
        """
        async with await self.connect() as connection:
            self.info, self.program = await self._describe(connection)
        return self.info

    async def _describe(self, connection: Connection) -> tuple[Info, Any]:
        await connection.send(Describe().event())
        while True:
            event = await connection.receive(self.config.timeout, "its describe answer (info)")
            if event.type == "info":
                break
        try:
            info = parse_info(event.data)
        except ValueError as exc:
            raise BackendError(f"{connection.address} sent {exc}") from None
        program = self.pick(info)
        if program is None:
            raise BackendError(f"{connection.address} has no {self.wanted}; {offers(info)}", retryable=False)
        return info, program

    async def _discover(self) -> None:
        from ..discovery import browse

        found = await browse(self.config.browse_seconds)
        preferred = sorted(found.items(), key=lambda item: item[0] != self.config.name)
        rejected: list[str] = []
        for name, address in preferred:
            try:
                async with await Connection.open(address, self.config.timeout) as connection:
                    info, program = await self._describe(connection)
            except BackendError as exc:
                rejected.append(f"{name} ({exc.message[:80]})")
                continue
            if self.config.name and self.config.name not in (name, getattr(program, "name", "")):
                rejected.append(f"{name} (not named {self.config.name!r})")
                continue
            self.address, self.info, self.program = address, info, program
            log.info("%s: found %s at %s", self.section, name, address)
            return
        seen = "; ".join(rejected) if rejected else "no Wyoming service answered"
        raise BackendError(
            f"no Wyoming server with {self.wanted} found by zeroconf in {self.config.browse_seconds:g} s"
            f" ({seen}); {AUTO_FIX}"
        )


def offers(info: Info) -> str:
    """What a server offers, in one short phrase for errors and ``magoo doctor``."""
    parts = []
    for role, programs in (("stt", info.asr), ("tts", info.tts), ("wake", info.wake), ("handle", info.handle), ("intent", info.intent)):
        for program in programs:
            items = getattr(program, "models", None) or getattr(program, "voices", None) or []
            names = [item.name for item in items if getattr(item, "installed", True)]
            shown = ", ".join(names[:5]) + (f" (+{len(names) - 5})" if len(names) > 5 else "")
            parts.append(f"{role} {program.name}" + (f" [{shown}]" if shown else ""))
    return "it offers " + ("; ".join(parts) if parts else "nothing")


def fits(artifact: Any, name: str, language: str) -> bool:
    """Whether a model or voice has ``name`` (or any, for "") and speaks ``language``
    ("en" matches "en_US" and "en-GB"; "" matches all)."""
    if name and artifact.name != name:
        return False
    if not language:
        return True
    languages = [lang.replace("-", "_").lower() for lang in (getattr(artifact, "languages", None) or [])]
    wanted = language.replace("-", "_").lower()
    return not languages or any(lang == wanted or lang.split("_")[0] == wanted for lang in languages)


def first_program(programs: list[Any], model: str, language: str) -> Any:
    """The first installed program with a model/voice that fits (or with none listed when neither
    ``model`` nor ``language`` is asked for)."""
    for program in programs:
        if not getattr(program, "installed", True):
            continue
        items = getattr(program, "models", None) or getattr(program, "voices", None) or []
        if not model and not language:
            return program
        if any(fits(item, model, language) for item in items):
            return program
    return None
