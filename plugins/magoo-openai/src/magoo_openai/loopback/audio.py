"""OpenAI's audio endpoints on loopback, for tests: the real wire format, scripted answers, faults.

``POST /v1/audio/transcriptions`` takes the multipart upload the SDK sends, checks its fields
against the API (a WAV file, a model, known options only), decodes the WAV and answers JSON, or
server-sent events (``transcript.text.delta`` then ``transcript.text.done``) when ``stream=true``.
What it "hears" is scripted: :attr:`AudioLoopback.recognize` maps the decoded audio to text.

``POST /v1/audio/speech`` checks the JSON body and streams :attr:`AudioLoopback.speech` (PCM, or
opaque bytes for mp3/opus) in chunks, at ``pace`` times real time.

These routes are part of :class:`~.server.LoopbackOpenAIServer` (its :data:`~.server.ROUTES`),
which checks the key and answers the status faults of :meth:`~.server.LoopbackOpenAIServer.fail_next`
for every endpoint; the audio state is the server's :attr:`~.server.LoopbackOpenAIServer.audio`.
A :class:`~.records.Fault` with ``stream`` applies to a streamed transcript after ``after``
events and to speech after ``after`` chunks: ``stall``, ``drop``, or (transcripts) ``malformed``.

Needs ``aiohttp`` (the dev group); imported by tests only.
"""

from __future__ import annotations

import asyncio
import io
import json
import wave
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from aiohttp import web

from .errors import api_error
from .records import FAULT

if TYPE_CHECKING:
    from .server import LoopbackOpenAIServer

TRANSCRIPTION_FIELDS = {
    "file", "model", "language", "prompt", "response_format", "temperature", "stream", "include[]",
    "timestamp_granularities[]", "chunking_strategy",
}
STREAMING_MODELS = {"gpt-4o-transcribe", "gpt-4o-mini-transcribe"}
SPEECH_FIELDS = {"model", "input", "voice", "response_format", "speed", "instructions", "stream_format"}
SPEECH_FORMATS = {"mp3", "opus", "aac", "flac", "wav", "pcm"}
CONTENT_TYPES = {"pcm": "audio/pcm", "mp3": "audio/mpeg", "opus": "audio/ogg", "wav": "audio/wav", "aac": "audio/aac", "flac": "audio/flac"}
MAX_INPUT_CHARS = 4096


@dataclass
class Upload:
    """One transcription request as the server got it: its form fields and the decoded WAV."""

    fields: dict[str, str]
    filename: str
    sample_rate: int
    channels: int
    pcm: bytes

    @property
    def seconds(self) -> float:
        return len(self.pcm) / (2 * self.channels * self.sample_rate)


@dataclass
class AudioLoopback:
    """The state of the audio endpoints: what they answer, what they were sent, faults to come.

    :param recognize: the text heard in an upload; default: ``transcripts`` in turn, then "".
    :param transcripts: what the default ``recognize`` hears, one per upload.
    :param deltas: pieces a streamed transcript is cut into (words, by default).
    :param speech: what ``/v1/audio/speech`` answers: PCM for ``pcm``, the bytes as they are otherwise.
    :param pcm_rate: Hz of ``speech`` when it is PCM (paces the answer).
    :param pace: how many times faster than real time speech is sent (0: all at once).
    :param chunk_bytes: bytes per chunk of the speech answer.
    """

    recognize: Callable[[Upload], str] | None = None
    transcripts: list[str] = field(default_factory=list)
    speech: bytes = b"\x00\x00" * 24000
    pcm_rate: int = 24000
    pace: float = 4.0
    chunk_bytes: int = 2400
    uploads: list[Upload] = field(default_factory=list)
    speech_requests: list[dict[str, Any]] = field(default_factory=list)
    #: set when a speech answer was sent whole: a client that played sound before this streamed
    speech_sent: asyncio.Event = field(default_factory=asyncio.Event)

    def heard(self, upload: Upload) -> str:
        if self.recognize is not None:
            return self.recognize(upload)
        return self.transcripts.pop(0) if self.transcripts else ""


def add_routes(app: web.Application, server: LoopbackOpenAIServer) -> None:
    """Add ``/v1/audio/transcriptions`` and ``/v1/audio/speech``, served from ``server.audio``."""

    async def transcriptions(request: web.Request) -> web.StreamResponse:
        return await _transcriptions(request, server)

    async def speech(request: web.Request) -> web.StreamResponse:
        return await _speech(request, server)

    app.router.add_post("/v1/audio/transcriptions", transcriptions)
    app.router.add_post("/v1/audio/speech", speech)


def _bad(message: str, param: str | None = None) -> web.Response:
    return api_error(400, message, param=param)


# ---- transcriptions ---------------------------------------------------------------------------


async def _transcriptions(request: web.Request, server: LoopbackOpenAIServer) -> web.StreamResponse:
    loopback = server.audio
    if not request.content_type.startswith("multipart/form-data"):
        return _bad(f"expected a multipart/form-data upload, got {request.content_type}")
    fields: dict[str, str] = {}
    file: tuple[str, bytes] | None = None
    reader = await request.multipart()
    async for part in reader:
        name = part.name or ""
        if name not in TRANSCRIPTION_FIELDS:
            return _bad(f"Unrecognized request argument supplied: {name}", name)
        if name == "file":
            file = (part.filename or "", await part.read())
        else:
            fields[name] = await part.text()
    if file is None:
        return _bad("you must provide a file", "file")
    if not fields.get("model"):
        return _bad("you must provide a model parameter", "model")
    language = fields.get("language")
    if language is not None and not (len(language) == 2 and language.isalpha()):
        return _bad(f"Invalid language '{language}'. Language parameter must be specified in ISO-639-1 format.", "language")
    stream = fields.get("stream", "false")
    if stream not in ("true", "false"):
        return _bad("stream must be true or false", "stream")
    if stream == "true" and fields["model"] not in STREAMING_MODELS:
        return _bad(f"Streaming is not supported for the model {fields['model']}.", "stream")
    if fields.get("response_format", "json") not in ("json", "text", "verbose_json"):
        return _bad("response_format must be json, text or verbose_json here", "response_format")
    try:
        upload = _decode(fields, *file)
    except ValueError as exc:
        return _bad(f"Invalid file format: {exc}", "file")
    loopback.uploads.append(upload)
    text = loopback.heard(upload)
    if stream == "false":
        if fields.get("response_format") == "text":
            return web.Response(text=text + "\n", content_type="text/plain")
        return web.json_response({"text": text, "usage": {"type": "duration", "seconds": round(upload.seconds)}})
    return await _transcript_events(request, server, text)


def _decode(fields: dict[str, str], filename: str, data: bytes) -> Upload:
    if not filename.lower().endswith((".wav", ".mp3", ".m4a", ".ogg", ".webm", ".flac", ".mp4", ".mpeg", ".mpga", ".oga")):
        raise ValueError(f"file name {filename!r} has no supported extension")
    try:
        with wave.open(io.BytesIO(data)) as wav:
            if wav.getsampwidth() != 2:
                raise ValueError("not 16-bit PCM")
            return Upload(fields, filename, wav.getframerate(), wav.getnchannels(), wav.readframes(wav.getnframes()))
    except (wave.Error, EOFError) as exc:
        raise ValueError(f"not a WAV file ({exc})") from None


async def _transcript_events(request: web.Request, server: LoopbackOpenAIServer, text: str) -> web.StreamResponse:
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"})
    await response.prepare(request)
    pieces = [word + " " for word in text.split(" ")]
    if pieces:
        pieces[-1] = pieces[-1][:-1]
    fault = request[FAULT]
    for index, piece in enumerate(pieces):
        if fault is not None and fault.stream is not None and index == fault.after:
            if await server.stream_fault(request, fault):
                return response
            if fault.stream == "malformed":
                await response.write(b'data: {"type": "transcript.text.delta", "delta": \n\n')
        await _event(response, {"type": "transcript.text.delta", "delta": piece, "logprobs": None})
    done = {"type": "transcript.text.done", "text": text, "logprobs": None,
            "usage": {"type": "tokens", "input_tokens": 10, "output_tokens": len(pieces), "total_tokens": 10 + len(pieces)}}
    await _event(response, done)
    await response.write_eof()
    return response


async def _event(response: web.StreamResponse, event: dict[str, Any]) -> None:
    await response.write(f"data: {json.dumps(event)}\n\n".encode())


# ---- speech -----------------------------------------------------------------------------------


async def _speech(request: web.Request, server: LoopbackOpenAIServer) -> web.StreamResponse:
    loopback = server.audio
    try:
        body = await request.json()
    except ValueError:
        return _bad("We could not parse the JSON body of your request.")
    if not isinstance(body, dict):
        return _bad("the body must be a JSON object")
    unknown = sorted(set(body) - SPEECH_FIELDS)
    if unknown:
        return _bad(f"Unrecognized request argument supplied: {unknown[0]}", unknown[0])
    for key in ("model", "input", "voice"):
        if not isinstance(body.get(key), str) or not body[key]:
            return _bad(f"'{key}' is a required property and must be a non-empty string", key)
    if len(body["input"]) > MAX_INPUT_CHARS:
        return _bad(f"input is longer than {MAX_INPUT_CHARS} characters", "input")
    response_format = body.get("response_format", "mp3")
    if response_format not in SPEECH_FORMATS:
        return _bad(f"response_format must be one of {sorted(SPEECH_FORMATS)}", "response_format")
    speed = body.get("speed", 1.0)
    if isinstance(speed, bool) or not isinstance(speed, int | float) or not 0.25 <= speed <= 4.0:
        return _bad("speed must be a number from 0.25 to 4.0", "speed")
    if "instructions" in body and not isinstance(body["instructions"], str):
        return _bad("instructions must be a string", "instructions")
    loopback.speech_requests.append(body)
    response = web.StreamResponse(headers={"Content-Type": CONTENT_TYPES[response_format]})
    response.enable_chunked_encoding()
    await response.prepare(request)
    fault = request[FAULT]
    data = loopback.speech
    per_second = loopback.pcm_rate * 2
    for sent, offset in enumerate(range(0, len(data), loopback.chunk_bytes)):
        if fault is not None and fault.stream is not None and sent == fault.after and await server.stream_fault(request, fault):
            return response
        piece = data[offset : offset + loopback.chunk_bytes]
        await response.write(piece)
        if loopback.pace:
            await asyncio.sleep(len(piece) / per_second / loopback.pace)
    await response.write_eof()
    loopback.speech_sent.set()
    return response
