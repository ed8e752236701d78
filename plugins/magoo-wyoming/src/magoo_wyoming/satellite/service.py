"""``[services.NAME] backend = "homeassistant"``: magoo as a Home Assistant satellite over Wyoming.

The service is magoo's speech-to-text that *replies*: after the local wake word it streams the
command to Home Assistant's pipeline (which runs its STT, its agent and its TTS) and yields the
transcript and the reply as sound, which magoo's speaker plays (muting, levels, barge-in);
``played`` goes back once the speaker has really finished. While Home Assistant is not connected
(or has paused the satellite) the service says it is not ``available``, so the role's
``[stt.backup]`` (with the profile's own responder and TTS) answers; it takes over again when Home
Assistant runs the satellite again.

With ``wake = "remote"`` it is the wake detector too (:mod:`.remote_wake`): the microphone streams
to Home Assistant's wake stage while magoo listens, and its ``detection`` starts the turn
(``[wake.backup]`` answers while it is away). Without ``[tts]`` in the profile the pipeline ends at
``handle`` and the transcript is the turn (:meth:`HomeAssistantSatellite.handle_only`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Mapping
from importlib import metadata
from typing import Any, ClassVar

from wyoming.info import Attribution, Info, Satellite, WakeModel, WakeProgram
from wyoming.pipeline import PipelineStage

from magoo_core.errors import BackendError
from magoo_core.plugins import hookimpl
from magoo_core.roles import Backend, Role
from magoo_core.types import AudioChunk, AudioFormat, Reply, Transcript, WakeEvent

from .advertise import Advertiser, record_address
from .config import SatelliteConfig, is_local_only
from .pipeline import PipelineRun
from .server import Listener
from .session import Session

log = logging.getLogger("magoo.wyoming.satellite")

ATTRIBUTION = Attribution(name="magoo", url="https://github.com/magoo-voice/magoo")
#: what magoo streams to Home Assistant: what its pipeline takes without converting
STREAM_FORMAT = AudioFormat(16000)


def _version() -> str:
    try:
        return metadata.version("magoo-wyoming")
    except metadata.PackageNotFoundError:
        return "0"


def info_event(config: SatelliteConfig):
    """The ``info`` answered to ``describe``: a satellite that is ``installed`` (Home Assistant's
    config flow needs it), its area, and the local wake words as a wake program whose models carry
    the phrase (Home Assistant maps a ``detection``'s name to it); none with remote wake."""
    version = _version()
    words = list(config.wake_words) if config.wake == "local" else []
    wake = [WakeProgram(
        name="magoo-local-wake", attribution=ATTRIBUTION, installed=True, description="magoo's local wake word",
        version=version,
        models=[WakeModel(name=w, attribution=ATTRIBUTION, installed=True, description=w, version=version,
                          languages=[], phrase=w) for w in words],
    )] if words else []
    satellite = Satellite(
        name=config.name, attribution=ATTRIBUTION, installed=True, description="magoo voice assistant",
        version=version, area=config.area, has_vad=False,
        active_wake_words=words or None, max_active_wake_words=len(words) or None, supports_trigger=False,
    )
    return Info(satellite=satellite, wake=wake).event()


class HomeAssistantSatellite(Backend):
    """Home Assistant's Assist pipeline over Wyoming: magoo is the satellite (local wake word,
    microphone, speaker), Home Assistant does speech-to-text, the answer and its speech."""

    name: ClassVar[str] = "homeassistant"
    roles: ClassVar[frozenset[Role]] = frozenset({Role.STT, Role.WAKE})
    Config = SatelliteConfig
    input_format = STREAM_FORMAT
    replies = True
    frame_samples = None  # remote wake: the captured chunks as they come, no waiting for a full frame
    scores = None  # Home Assistant says yes, not how near

    config: SatelliteConfig

    def __init__(self, config: SatelliteConfig) -> None:
        super().__init__(config)
        self.session = Session(info_event(config), f"Home Assistant ({config.name})")
        self.listener = Listener(config, self.session)
        self.advertiser: Advertiser | None = None
        self._wake_word = ""
        self._owed: PipelineRun | None = None  # the run whose reply is playing: a played is owed
        self._answered = 0  # turns Home Assistant answered since describe_turn
        self.remote = self.session.hear_remotely() if config.wake == "remote" else None
        self._loop: asyncio.AbstractEventLoop | None = None

    @classmethod
    def check_roles(cls, config: SatelliteConfig, roles: frozenset[Role]) -> str | None:
        """The profile: ``[wake]`` names this service exactly when ``wake = "remote"``."""
        if config.wake == "remote" and Role.WAKE not in roles:
            return 'wake = "remote" needs [wake] to name this service (service = "NAME", with a [wake.backup])'
        if config.wake == "local" and Role.WAKE in roles:
            return '[wake] names this service, but its wake = "local": set wake = "remote" to let Home Assistant detect the wake word'
        return None

    @classmethod
    def doctor(cls, config: SatelliteConfig, section: str) -> list:
        """``magoo doctor``: who can reach the satellite's microphone."""
        from magoo_core.doctor import ok, warn

        where = f"{config.host}:{config.port}"
        streams = "; wake = remote: the microphone streams whenever magoo listens" if config.wake == "remote" else ""
        if is_local_only(config.host):
            return [ok("satellite address", f"{where}: this machine only (Home Assistant must run here){streams}")]
        if config.allow:
            return [ok("satellite address", f"{where}, only for {', '.join(config.allow)}{streams}")]
        return [warn(
            "satellite address",
            f"{where} is open to the network without an allow list: Wyoming has no password, and anyone who "
            f"reaches it can run the microphone{streams}",
            f"set allow = [\"<Home Assistant's address>\"] in {section}",
        )]

    # ---- life ----

    async def __aenter__(self) -> HomeAssistantSatellite:
        """Listen (and advertise). :raises BackendError: the address cannot be bound (not retryable
        by a restart alone when it is not this machine's)."""
        self._loop = asyncio.get_running_loop()
        try:
            await self.listener.start()
        except OSError as exc:
            raise BackendError(
                f"cannot listen on {self.config.host}:{self.config.port} ({exc.strerror or exc}): "
                "give host one of this machine's addresses and a free port"
            ) from None
        if self.config.zeroconf:
            address = record_address(self.config.host, self.config.advertise_address)
            self.advertiser = Advertiser(self.config.name, address, self.listener.port, list(self.config.zeroconf_interfaces) or None)
            await self.advertiser.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        if self.advertiser is not None:
            await self.advertiser.stop()
        await self.listener.stop()

    @property
    def available(self) -> bool:
        """Home Assistant is connected and runs the satellite: the service answers (else the backups)."""
        return self.session.available

    async def until_available(self) -> None:
        await self.session.until_available()

    @property
    def healthy(self) -> bool:
        return self.session.available

    # ---- a turn ----

    async def transcribe(self, audio: AsyncIterator[AudioChunk]) -> AsyncIterator[Transcript | Reply]:
        """Stream the command to Home Assistant until its ``transcript``; yield that, then the
        reply: ``synthesize``'s text with the TTS audio as it arrives.

        :raises BackendError: Home Assistant is not connected, said ``error`` (its line), or went away.
        """
        session = self.session
        if not session.available:
            raise BackendError("Home Assistant is not connected", restart=False)
        if self.remote is None:
            run = await session.start_run(self._wake_word, (STREAM_FORMAT.sample_rate, 2, 1))
        elif (run := session.remote_run()) is None:
            raise BackendError('with wake = "remote" only Home Assistant\'s wake word starts its turns (not a follow-up '
                               "window, nor the backup's wake word as Home Assistant came back)", restart=False)
        pump = asyncio.ensure_future(self._pump(audio, run))
        try:
            text = await run.transcript()
        finally:
            if not pump.done():
                pump.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await pump
        if not self.replies:  # handle: Home Assistant acts and says nothing back over Wyoming
            session.finish(run)
            self._answered += 1
            yield Transcript(text, final=True)
            return
        yield Transcript(text, final=True)
        sound = await run.reply()
        self._owed = run
        self._answered += 1
        yield Reply(run.text, audio=sound.chunks())

    async def _pump(self, audio: AsyncIterator[AudioChunk], run: PipelineRun) -> None:
        """The microphone's audio to Home Assistant, first chunk (the pre-roll) at once, until it
        has the transcript; when the engine ends the capture first, ``audio-stop``."""
        async for chunk in audio:
            if run.heard or run.failed is not None:
                return
            if self.remote is not None:  # one stream since the wake stage: what it sent already is cut off
                self.remote.offer(chunk)
            elif not await self.session.send_audio(chunk):
                return
        if not run.heard:
            await self.session.end_audio()

    def handle_only(self) -> None:
        """A profile without ``[tts]`` (so without a speaker): Home Assistant's pipeline ends at
        ``handle`` (its agent acts, no speech is made), and the transcript is the turn's product.

        Stock Home Assistant sends a Wyoming satellite nothing of the agent's answer then: its
        ``assist_satellite.py`` forwards no ``INTENT_END`` (only ``transcript`` for ``STT_END``,
        ``synthesize`` for ``TTS_START``, ``error``) and no ``RUN_END``; so the turn ends with the
        transcript, and an ``error`` that comes after it is logged.
        """
        self.session.end_stage = PipelineStage.HANDLE
        self.replies = False

    # ---- the wake word, when Home Assistant detects it (wake = "remote") ----

    def process(self, chunk: AudioChunk) -> WakeEvent | None:
        """Hand ``chunk`` to the loop for Home Assistant's wake stage (never blocks); the detection
        Home Assistant sent since the last call. Wake worker thread.

        :raises BackendError: ``[wake]`` uses this service with ``wake = "local"`` (the profile check
            catches it first).
        """
        if self.remote is None:
            raise BackendError('[wake] uses the Home Assistant satellite, but its wake = "local"', restart=False)
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self.remote.offer, chunk)
        return self.remote.take()

    def reset(self) -> None:
        """Nothing to forget. A detection Home Assistant sent is never dropped: its pipeline has
        moved on to speech-to-text by then, and would take the next audio as the command."""

    # ---- engine events (the running instance is registered as a plugin) ----

    @hookimpl
    def magoo_on_startup(self, profile: Any, speech: Any, timers: Any) -> None:
        if profile.tts is None:
            self.handle_only()
        self.session.outside.speech = speech
        self.session.outside.timers = timers

    @hookimpl
    def magoo_on_wake(self, wake: Any, turn: int) -> None:
        self._wake_word = wake.label or wake.model

    @hookimpl
    async def magoo_on_speak_end(self, turn: int | None, interrupted: bool) -> None:
        run = self._owed
        if run is not None and turn is not None and run.sound is not None and run.sound.closed:
            self._owed = None
            await self.session.played(run)

    @hookimpl
    async def magoo_on_turn_end(self, timeline: Any) -> None:
        run, self._owed = self._owed, None
        if run is not None:  # its sound never reached the speaker's end (a failure): Home Assistant must not wait
            await self.session.played(run)

    # ---- status ----

    def stats(self) -> Mapping[str, float]:
        counters = self.session.counters
        return {
            "connected": 1.0 if self.session.available else 0.0,
            "pipelines": counters["pipelines"],
            "announcements": self.session.outside.announcements,
            "timers": len(self.session.outside.running_timers()),
            "timers_finished": self.session.outside.timers_finished,
            "refused": self.listener.allow.refusals,
            "malformed": counters["malformed"],
            **({"remote_wakes": self.remote.counters["detections"], "remote_requests": self.remote.counters["requests"]}
               if self.remote is not None else {}),
        }

    def describe_turn(self) -> str | None:
        lines = self.session.outside.take_notes()
        if self._answered:
            lines.insert(0, "Home Assistant answered" if self.replies else "Home Assistant handled it")
            self._answered = 0
        timers = self.session.outside.running_timers()
        if timers:
            lines.append("timers: " + ", ".join(f"{t.name} {t.seconds_left(time.time()):.0f} s" for t in timers))
        return "; ".join(lines) or None
