"""The satellite's side of Home Assistant's ``assist_satellite`` flow, across connections.

Home Assistant connects, sends ``run-satellite`` (from then on the satellite is *available*:
turns go to Home Assistant), ``describe`` before each pipeline loop, ``ping`` every 2 s after each
``pong``, and ``pause-satellite`` when it is muted or removed. A turn is a :class:`PipelineRun`;
sound outside one and timers go to :class:`OutsideTurns`; with remote wake, Home Assistant's
``detect`` and ``detection`` go to :class:`RemoteWake`, and a ``detection`` begins the turn's run.
A new connection that sends ``run-satellite`` replaces the old
one (Home Assistant reconnects after a timeout while the old socket may still look open). Lines a peer can
cause are logged at most once a minute per kind (a reconnect storm must not flood the journal); how
the link stands (connected, running, lost) is one kind, so a storm is one line a minute, the latest.

Not tied to Wyoming's transport beyond :class:`Link`: a second protocol (ESPHome's native API)
would drive the same calls. Everything here runs on the event loop.
"""

from __future__ import annotations

import asyncio
import logging

from wyoming.audio import AudioChunk as WyomingChunk
from wyoming.audio import AudioStart, AudioStop
from wyoming.event import Event
from wyoming.pipeline import PipelineStage, RunPipeline
from wyoming.snd import Played
from wyoming.wake import Detection

from magoo_core.types import AudioChunk

from .audio import IncomingSound
from .link import Link
from .outside import OutsideTurns
from .pipeline import PipelineRun
from .remote_wake import RemoteWake, Stage
from .throttle import Throttle

log = logging.getLogger("magoo.wyoming.satellite")

class Session:
    """Home Assistant as the satellite sees it.

    :param info: the ``info`` event answered to every ``describe``.
    :param source: whose timers Home Assistant's are, for magoo's timers ("Home Assistant (kitchen)").
    """

    def __init__(self, info: Event, source: str) -> None:
        self.info = info
        self.link: Link | None = None
        self.running = False
        self.run: PipelineRun | None = None
        self.counters = {"connections": 0, "pipelines": 0, "malformed": 0}
        self._throttle = Throttle(log)
        self.outside = OutsideTurns(source, self._send_played, self._throttle)
        self._available = asyncio.Event()
        self._incoming: IncomingSound | None = None  # the sound Home Assistant is sending
        self._closing = False
        #: where Home Assistant's pipeline ends: ``tts`` (the answer comes back as sound), or
        #: ``handle`` for a satellite without a speaker (the pipeline stops after the agent acted)
        self.end_stage = PipelineStage.TTS
        #: with ``wake = "remote"``: Home Assistant's wake stage (see :meth:`hear_remotely`)
        self.remote: RemoteWake | None = None

    # ---- availability ----

    @property
    def available(self) -> bool:
        """Home Assistant is connected and has asked the satellite to run (not paused); with
        remote wake, its wake stage has not failed twice in a row either."""
        connected = self.link is not None and not self.link.closed and self.running
        return connected and (self.remote is None or self.remote.available)

    def hear_remotely(self) -> RemoteWake:
        """Let Home Assistant detect the wake word (``wake = "remote"``); call before it connects."""
        self.remote = RemoteWake(self._ask_wake, self.send_audio, self._changed, self._throttle.say)
        return self.remote

    async def _ask_wake(self) -> bool:
        link = self.link
        return link is not None and await link.send(RunPipeline(
            start_stage=PipelineStage.WAKE, end_stage=self.end_stage, restart_on_end=True).event())

    async def until_available(self) -> None:
        while not self.available:
            self._available.clear()
            await self._available.wait()

    def _changed(self) -> None:
        if self.available:
            self._available.set()
        else:
            self._available.clear()

    # ---- connections ----

    async def serve(self, link: Link) -> None:
        """Read ``link`` until it ends. It becomes Home Assistant's connection when it sends
        ``run-satellite`` (the old one is then closed); before that it is answered ``describe``
        and ``ping`` only (Home Assistant's discovery probe), so a peer that probes or sends
        garbage never takes the place of a working link."""
        why = await link.serve()
        if why.startswith("sent a malformed"):
            self.counters["malformed"] += 1
        if self.link is link:
            self.link = None
            self.running = False
            if self.remote is not None:
                self.remote.stop()
            self._changed()
            self._end_all(f"Home Assistant disconnected in the middle of the turn ({why})")
            if not self._closing:
                self._throttle.say("link", logging.WARNING, "Home Assistant at %s %s; the backups answer until it reconnects",
                                   link.peer, why)

    async def _adopt(self, link: Link) -> None:
        old, self.link = self.link, link
        self.running = False
        if self.remote is not None:
            self.remote.stop()
        self._changed()
        self.counters["connections"] += 1
        if old is not None:
            self._end_all("Home Assistant reconnected in the middle of the turn")
            await old.close("replaced by a new connection from Home Assistant")
        self._throttle.say("link", logging.INFO, "Home Assistant connected from %s", link.peer)

    def _end_all(self, why: str) -> None:
        if self.run is not None:
            self.run.fail(why)
        if self._incoming is not None:
            self._incoming.fail(why)
            self._incoming = None

    async def close(self) -> None:
        self._closing = True
        self._throttle.close()
        if self.link is not None:
            await self.link.close("magoo is stopping")
        await self.outside.close()
        if self.remote is not None:
            await self.remote.close()

    # ---- a turn ----

    async def start_run(self, wake_word: str, audio_format: tuple[int, int, int]) -> PipelineRun:
        """Tell Home Assistant the wake word was heard and a command follows: ``detection``,
        ``run-pipeline`` (asr → :attr:`end_stage`), ``audio-start``. The caller then streams with :meth:`send_audio`.

        :param audio_format: (rate, width, channels) of the audio that will be sent.
        """
        if self.run is not None:
            self.run.fail("a new turn started")
        run = self.run = PipelineRun(wake_word)
        self.counters["pipelines"] += 1
        rate, width, channels = audio_format
        link = self.link
        ok = link is not None and await link.send(Detection(name=wake_word or None).event())
        ok = ok and await link.send(RunPipeline(start_stage=PipelineStage.ASR, end_stage=self.end_stage,
                                                wake_word_name=wake_word or None, restart_on_end=False).event())
        ok = ok and await link.send(AudioStart(rate=rate, width=width, channels=channels).event())
        if not ok:
            run.fail("Home Assistant disconnected as the turn began")
        return run

    async def send_audio(self, chunk: AudioChunk) -> bool:
        link = self.link
        if link is None:
            return False
        return await link.send(WyomingChunk(rate=chunk.sample_rate, width=chunk.sample_width,
                                            channels=chunk.channels, audio=chunk.pcm).event())

    def finish(self, run: PipelineRun) -> None:
        """``run`` needs nothing more from Home Assistant (a ``handle`` run once it has the
        transcript): an ``error`` arriving later is logged, not given to it."""
        if self.run is run:
            self.run = None

    async def end_audio(self) -> None:
        if self.link is not None:
            await self.link.send(AudioStop().event())

    async def _send_played(self) -> None:
        if self.link is not None:
            await self.link.send(Played().event())

    async def played(self, run: PipelineRun) -> None:
        """The run's reply has really ended on the speaker: tell Home Assistant (once)."""
        if run.played_sent:
            return
        run.played_sent = True
        if self.link is not None:
            await self.link.send(Played().event())
        if self.run is run:
            self.run = None

    # ---- events from Home Assistant ----

    async def on_event(self, link: Link, event: Event) -> None:
        if link is not self.link:
            if event.type == "run-satellite":
                await self._adopt(link)
            elif event.type not in ("describe", "ping"):  # a discovery probe describes, and is no satellite session
                return
        kind, data = event.type, event.data
        try:
            handler = _HANDLERS.get(kind)
            if handler is None:
                log.debug("Home Assistant sent %s, which the satellite does not use", kind)
                return
            await handler(self, link, event)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            self.counters["malformed"] += 1
            log.debug("Home Assistant's %s event was not understood (%s): %s", kind, exc, str(data)[:200])

    async def _ping(self, link: Link, event: Event) -> None:
        text = event.data.get("text")
        await link.send(Event("pong", {"text": text} if isinstance(text, str) else {}))

    async def _describe(self, link: Link, event: Event) -> None:
        await link.send(self.info)

    async def _run_satellite(self, link: Link, event: Event) -> None:
        if not self.running:
            self._throttle.say("link", logging.INFO, "Home Assistant runs the satellite: it answers the turns now")
        self.running = True
        self._changed()
        if self.remote is not None and self.remote.stage is Stage.IDLE:
            await self.remote.start()

    async def _pause(self, link: Link, event: Event) -> None:
        self._throttle.say("pause", logging.INFO, "Home Assistant paused the satellite: the backups answer until it runs it again")
        self.running = False
        if self.remote is not None:
            self.remote.stop()
        self._changed()
        self._end_all("Home Assistant paused the satellite")

    async def _transcript(self, link: Link, event: Event) -> None:
        if self.run is not None:
            self.run.on_transcript(str(event.data["text"]))

    async def _synthesize(self, link: Link, event: Event) -> None:
        if self.run is not None:
            self.run.on_synthesize(str(event.data.get("text") or ""))

    async def _audio_start(self, link: Link, event: Event) -> None:
        if self._incoming is not None:  # a sound that never got its audio-stop
            self._incoming.end()
        if self.run is not None and self.run.wants_reply_audio:
            self._incoming = self.run.on_audio_start()
            return
        self._incoming = self.outside.announcement()

    async def _audio_chunk(self, link: Link, event: Event) -> None:
        if self._incoming is None or not event.payload:
            return
        chunk = WyomingChunk.from_event(event)
        if chunk.width not in (1, 2, 3, 4) or not 1 <= chunk.channels <= 8 or not 4000 <= chunk.rate <= 192000:
            raise ValueError(f"audio of {chunk.rate} Hz, {chunk.width} bytes, {chunk.channels} channels")
        self._incoming.add(chunk.audio, chunk.rate, chunk.width, chunk.channels)

    async def _audio_stop(self, link: Link, event: Event) -> None:
        if self._incoming is not None:
            self._incoming.end()
            self._incoming = None

    async def _error(self, link: Link, event: Event) -> None:
        text = str(event.data.get("text") or "no details").splitlines()[0][:300]
        code = event.data.get("code")
        line = f"Home Assistant: {text}" + (f" ({code})" if code else "")
        if self.run is not None and self.run.failed is None:
            self.run.fail(line)
        elif self.remote is None or self.remote.stage not in (Stage.ASKED, Stage.LISTENING):  # the wake stage's: said below
            self._throttle.say("error", logging.WARNING, "%s", line)
        if self.remote is not None:
            self.remote.on_error(line)

    async def _detect(self, link: Link, event: Event) -> None:
        if self.remote is not None:
            self.remote.on_detect()

    async def _detection(self, link: Link, event: Event) -> None:
        """Home Assistant's wake word engine heard it: the turn's run begins here (its
        ``transcribe``, ``transcript`` and reply may come before the engine's turn asks)."""
        if self.remote is None or not self.running:
            return
        name = str(event.data.get("name") or "wake word")
        at = event.data.get("timestamp")
        if self.run is not None and not self.run.heard:
            self.run.fail("Home Assistant heard the wake word again")
        self.run = PipelineRun(name)
        self.counters["pipelines"] += 1
        self.remote.on_detection(name, at if isinstance(at, int | float) else None)

    def remote_run(self) -> PipelineRun | None:
        """The run Home Assistant's last ``detection`` began, for the turn it woke (once)."""
        run = self.run
        if run is None or run.taken or run.failed is not None:
            return None
        run.taken = True
        return run

    async def _timer(self, link: Link, event: Event) -> None:
        await self.outside.timer_event(event.type, event.data)


_HANDLERS = {
    "ping": Session._ping,
    "describe": Session._describe,
    "run-satellite": Session._run_satellite,
    "pause-satellite": Session._pause,
    "transcript": Session._transcript,
    "synthesize": Session._synthesize,
    "audio-start": Session._audio_start,
    "audio-chunk": Session._audio_chunk,
    "audio-stop": Session._audio_stop,
    "error": Session._error,
    "detect": Session._detect,
    "detection": Session._detection,
    "timer-started": Session._timer,
    "timer-updated": Session._timer,
    "timer-cancelled": Session._timer,
    "timer-finished": Session._timer,
}
