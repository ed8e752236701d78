"""The closest real Wyoming wake server that runs here: openWakeWord's models (pyopen-wakeword, what
wyoming-openwakeword 2.x scores with) behind the ``wyoming`` package's own server classes.

wyoming-openwakeword itself cannot be installed beside this plugin: the release on PyPI (1.8.2,
2023) pins ``wyoming==1.2.0`` and tflite-runtime; its 2.x (on pyopen-wakeword) is not on PyPI.
This server behaves as its handler is documented to: ``describe`` lists the built-in models,
``detect{names}`` picks the models of the connection, ``audio-start`` resets them, each
``audio-chunk`` is scored, a probability above the threshold sends ``detection{name, timestamp}``
(milliseconds of audio since ``audio-start``) and starts a refractory time, and ``audio-stop``
answers ``not-detected`` when nothing fired.
"""

from __future__ import annotations

import asyncio
import contextlib

from wyoming.audio import AudioChunk, AudioStart, AudioStop
from wyoming.event import Event
from wyoming.info import Attribution, Describe, Info, WakeModel, WakeProgram
from wyoming.server import AsyncEventHandler, AsyncTcpServer
from wyoming.wake import Detect, Detection, NotDetected

THRESHOLD = 0.5
REFRACTORY_SECONDS = 2.0


def info() -> Info:
    from pyopen_wakeword import Model

    attribution = Attribution(name="dscripka", url="https://github.com/dscripka/openWakeWord")
    models = [WakeModel(name=m.value, attribution=attribution, installed=True, description=m.value, version="1",
                        languages=["en"], phrase=m.value.replace("_", " ")) for m in Model]
    return Info(wake=[WakeProgram(name="openwakeword", attribution=attribution, installed=True, description="openWakeWord",
                                  version="pyopen-wakeword", models=models)])


class _Handler(AsyncEventHandler):
    def __init__(self, server: OpenWakeWordServer, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.server = server
        self.names: list[str] = ["okay_nabu"]
        self.models: dict = {}
        self.features = None
        self.heard_ms = 0
        self.quiet_until_ms = 0
        self.detected = False

    async def handle_event(self, event: Event) -> bool:
        self.server.received.append(event.type)
        if Describe.is_type(event.type):
            await self.write_event(info().event())
        elif Detect.is_type(event.type):
            self.names = Detect.from_event(event).names or self.names
        elif AudioStart.is_type(event.type):
            self._start()
        elif AudioChunk.is_type(event.type):
            if self.features is None:
                self._start()
            chunk = AudioChunk.from_event(event)
            found = await asyncio.to_thread(self._score, chunk.audio)
            for name, at in found:
                self.detected = True
                await self.write_event(Detection(name=name, timestamp=at).event())
            self.server.scored += 1
        elif AudioStop.is_type(event.type):
            if not self.detected:
                await self.write_event(NotDetected().event())
            self.features = None
        return True

    def _start(self) -> None:
        from pyopen_wakeword import Model, OpenWakeWord, OpenWakeWordFeatures

        self.features = OpenWakeWordFeatures.from_builtin()
        self.models = {name: OpenWakeWord.from_builtin(Model(name)) for name in self.names}
        self.heard_ms = self.quiet_until_ms = 0
        self.detected = False

    def _score(self, pcm: bytes) -> list[tuple[str, int]]:
        found = []
        self.heard_ms += len(pcm) * 1000 // 32000
        for embeddings in self.features.process_streaming(pcm):
            for name, model in self.models.items():
                for probability in model.process_streaming(embeddings):
                    if probability > THRESHOLD and self.heard_ms >= self.quiet_until_ms:
                        self.quiet_until_ms = self.heard_ms + round(REFRACTORY_SECONDS * 1000)
                        found.append((name, self.heard_ms))
        return found


class OpenWakeWordServer:
    """``async with OpenWakeWordServer() as server``: listening on 127.0.0.1 (port from the OS) at ``server.uri``."""

    def __init__(self) -> None:
        self.received: list[str] = []
        self.scored = 0  # audio chunks scored (and their detections sent), over all connections
        self._server = AsyncTcpServer("127.0.0.1", 0)

    @property
    def uri(self) -> str:
        return "tcp://127.0.0.1:%d" % self._server._server.sockets[0].getsockname()[1]

    async def __aenter__(self) -> OpenWakeWordServer:
        await self._server.start(lambda *args: _Handler(self, *args))
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self._server.stop(), 5)
