"""One connection of the loopback Realtime server: the GA event flow, and what tests can observe.

A :class:`LoopbackSession` owns one websocket. Client events are handled one at a time, in
order, by the reader; server events go out through an :class:`~.outbox.Outbox`.
Response and transcription streams run as tasks, so their events interleave as the real ones do.
"""

from __future__ import annotations

import asyncio
import base64
import copy
import json
import logging
import time
from collections import deque
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from websockets.exceptions import ConnectionClosed

from .events import (
    assistant_content,
    content_part,
    expiry_message,
    masked_key,
    message_item,
    new_id,
    word_audio,
    obfuscation,
    rate_limits,
    response_object,
    response_usage,
    text_pieces,
    transcription_usage,
    user_audio_item,
)
from .outbox import Outbox
from .vad import BYTES_PER_MS, MIN_COMMIT_MS, InputAudioBuffer
from .validate import (
    ClientEventError,
    check_item,
    check_response_create,
    check_truncate,
    decode_append,
    default_session,
    invalid_value,
    merged_session,
)

if TYPE_CHECKING:
    from websockets.asyncio.server import ServerConnection

    from .server import LoopbackRealtimeServer

log = logging.getLogger("magoo.realtime.loopback")

_INPUT_EVENTS = ("session.update", "input_audio_buffer.append", "input_audio_buffer.commit", "input_audio_buffer.clear")
_CONVERSATION_EVENTS = ("conversation.item.create", "response.create", "response.cancel",
                        "conversation.item.truncate")
# Real GA client events the loopback does not implement: named as such rather than "invalid".
_UNIMPLEMENTED = ("conversation.item.retrieve", "conversation.item.delete", "output_audio_buffer.clear")
DROP_POINTS = ("speech_started", "committed", "response")  # in the order a turn reaches them


@dataclass
class ConnectionRecord:
    """One accepted websocket connection, as the server saw it."""

    path: str
    query: dict[str, str]
    headers: dict[str, str]  # names lower-cased
    session_type: str  # "realtime" or "transcription", from the URL
    session: dict = field(default_factory=dict)  # current merged config, as session.updated carries it
    events: list[dict] = field(default_factory=list)  # client events; append audio as {"bytes": n}
    appended_bytes: int = 0
    opened_at: float = 0.0
    closed_at: float | None = None
    close_code: int | None = None  # from the client's close frame; None when there was none
    close_reason: str | None = None
    session_updates: int = 0


@dataclass
class TurnRecord:
    """One committed user turn.

    ``status`` is "in_progress" until its transcription and response (if any) are done, then
    "completed"; "cancelled" when its response was cancelled; "dropped" when the connection went
    away first.
    """

    item_id: str
    connection: int
    audio: bytes  # PCM16 LE mono 24 kHz
    audio_start_ms: int
    audio_end_ms: int
    transcript: str
    reply: str | None = None
    status: str = "in_progress"


@dataclass
class _Response:
    id: str
    item_id: str
    turn: TurnRecord | None
    modality: str  # "text" or "audio"
    text: str
    sent: str = ""
    item_added: bool = False
    task: asyncio.Task | None = None
    audio_ms: int = 0  # of the model's voice sent so far
    truncated_ms: int | None = None  # where the client cut the item (conversation.item.truncate)


class LoopbackSession:
    """Serves one connection until it closes. Not thread-safe; lives in the server's loop."""

    def __init__(self, server: LoopbackRealtimeServer, ws: ServerConnection, record: ConnectionRecord, index: int):
        self.server = server
        self.ws = ws
        self.record = record
        self.index = index
        self.closing = False
        self.outbox = Outbox(ws, server.flowing)
        self._tasks: set[asyncio.Task] = set()
        self._expiry: asyncio.TimerHandle | None = None
        self._conversation_id = new_id("conv")
        self._buffer = InputAudioBuffer()
        self._speech: tuple[str, int] | None = None  # (item_id, audio_start_ms) of speech in progress
        self._last_item_id: str | None = None
        self._last_user: tuple[str, TurnRecord | None] = ("", None)
        self._response: _Response | None = None
        self._queued: deque[tuple[str, TurnRecord | None, dict]] = deque()
        self._pending: dict[str, set[str]] = {}  # turn item_id -> parts still running
        self._turns: list[TurnRecord] = []
        self._assistant_items: dict[str, _Response] = {}  # item id -> the response that wrote it

    @property
    def session(self) -> dict:
        return self.record.session

    # ---- lifecycle ------------------------------------------------------------------------------

    async def run(self) -> None:
        sender = asyncio.create_task(self.outbox.run())
        try:
            if self._admit():
                await self._read_loop()
            else:
                await sender
                await self.ws.wait_closed()
        finally:
            self._end_work()
            sender.cancel()
            self.outbox.resolve_all()
            rcvd = self.ws.protocol.close_rcvd
            self.record.close_code = rcvd.code if rcvd else None
            self.record.close_reason = rcvd.reason if rcvd else None
            self.record.closed_at = time.monotonic()
            log.info("connection %d closed (client close code %s)", self.index, self.record.close_code)

    def _admit(self) -> bool:
        """Check key, API shape and intent; queue the rejection and return False if one fails."""
        headers = self.record.headers
        auth = headers.get("authorization", "")
        if auth != f"Bearer {self.server.api_key}":
            key = auth.removeprefix("Bearer ").strip()
            message = (
                f"Incorrect API key provided: {masked_key(key)}. You can find your API key at "
                "https://platform.openai.com/account/api-keys."
                if key
                else "You didn't provide an API key. You need to provide your API key in an Authorization header "
                "using Bearer auth (i.e. Authorization: Bearer YOUR_KEY)."
            )
            return self._reject_connection("invalid_api_key", message, None, 3000)
        if "realtime=v1" in headers.get("openai-beta", ""):
            return self._reject_connection(
                "beta_api_shape_disabled",
                "The Realtime Beta API is no longer supported. Please use /v1/realtime for the GA API.",
                None,
                4000,
            )
        query = self.record.query
        if "model" not in query and query.get("intent") != "transcription":
            return self._reject_connection(
                "missing_required_parameter", "Missing required parameter: 'model'.", "model", 3000
            )
        length = self.server.session_length
        self.record.session = default_session(
            self.record.session_type, new_id("sess"), int(time.time() + length), query.get("model")
        )
        self.emit("session.created", session=copy.deepcopy(self.session))
        self._expiry = asyncio.get_running_loop().call_later(length, self.expire)
        log.info("connection %d open: %s session", self.index, self.record.session_type)
        return True

    def _reject_connection(self, code: str, message: str, param: str | None, close_code: int) -> bool:
        error = ClientEventError(code, message, param)
        self.emit("error", error=error.error_object(None))
        self.end(close_code, f"invalid_request_error.{code}")
        log.info("connection %d refused after upgrade: %s", self.index, code)
        return False

    def expire(self) -> asyncio.Future:
        """Send ``session_expired`` and close 1001, as the real server does at the maximum duration."""
        message = expiry_message(self.server.session_length)
        self.emit("error", error={"type": "invalid_request_error", "code": "session_expired", "message": message,
                                  "param": None, "event_id": None})
        return self.end(1001, message)

    def end(self, code: int | None, reason: str = "") -> asyncio.Future:
        """Close with ``code`` (None: cut the TCP connection) after the events already queued.

        Work in flight stops now and its turns become "dropped". The future resolves once that
        is done (or the connection is gone).
        """
        self.closing = True
        self._end_work()
        return self.outbox.abort() if code is None else self.outbox.close(code, reason)

    def pause_reading(self) -> None:
        self.ws.transport.pause_reading()

    def resume_reading(self) -> None:
        self.ws.transport.resume_reading()

    def _end_work(self) -> None:
        if self._expiry:
            self._expiry.cancel()
        for task in self._tasks:
            task.cancel()
        if self._response and self._response.task:
            self._response.task.cancel()
        self._response = None
        self._queued.clear()
        for turn in self._turns:
            if turn.status == "in_progress":
                self._set_status(turn, "dropped")

    # ---- sending --------------------------------------------------------------------------------

    def emit(self, event_type: str, **fields: Any) -> None:
        self.outbox.emit(event_type, **fields)

    def error(self, error: ClientEventError, client_event: dict | None) -> None:
        """Answer an invalid client event; the session stays open."""
        known = client_event if isinstance(client_event, dict) else {}
        self.emit("error", error=error.error_object(known.get("event_id")))
        self.server.protocol_errors.append(f"{known.get('type') or '<no type>'}: {error.message}")

    # ---- reading --------------------------------------------------------------------------------

    async def _read_loop(self) -> None:
        try:
            while True:
                await self.server.flowing.wait()
                message = await self.ws.recv()
                if not self.closing:
                    self._handle(message)
        except ConnectionClosed:
            pass

    def _handle(self, message: str | bytes) -> None:
        event = self._parse(message)
        if event is None:
            return
        try:
            if event["type"] == "input_audio_buffer.append":
                self._append(event)
            else:
                self.record.events.append(event)
                self._dispatch(event["type"], event)
        except ClientEventError as error:
            self.error(error, event)

    def _parse(self, message: str | bytes) -> dict | None:
        """The event in a frame, or None after answering a frame that holds none."""
        if isinstance(message, bytes):
            self.record.events.append({"binary": len(message)})
            self.error(ClientEventError("invalid_json", "Binary frames are not supported; send JSON text."), None)
            return None
        try:
            event = json.loads(message)
        except ValueError as exc:
            self.record.events.append({"invalid_json": message[:200]})
            self.error(ClientEventError("invalid_json", f"The event is not valid JSON ({exc})."), None)
            return None
        if not isinstance(event, dict) or not isinstance(event.get("type"), str):
            self.record.events.append({"invalid_event": event})
            self.error(ClientEventError("missing_required_parameter", "Missing required parameter: 'type'.", "type"),
                       event)
            return None
        return event

    def _dispatch(self, event_type: str, event: dict) -> None:
        allowed = _INPUT_EVENTS + (_CONVERSATION_EVENTS if self.record.session_type == "realtime" else ())
        if event_type in _UNIMPLEMENTED and self.record.session_type == "realtime":
            raise ClientEventError("unsupported_event",
                                   f"'{event_type}' is a valid client event, but the magoo loopback server does "
                                   "not implement it.", "type")
        if event_type not in allowed:
            raise invalid_value("type", event_type, allowed)
        getattr(self, "_on_" + event_type.replace(".", "_"))(event)

    # ---- client events --------------------------------------------------------------------------

    def _on_session_update(self, event: dict) -> None:
        merged = merged_session(self.session, event.get("session"), self.record.session_type)
        self.record.session = merged
        self.record.session_updates += 1
        if merged["audio"]["input"]["turn_detection"] is None:
            self._buffer.vad.reset()
            self._speech = None
        self.emit("session.updated", session=copy.deepcopy(merged))

    def _append(self, event: dict) -> None:
        """Add audio to the input buffer and run the VAD over it; never acknowledged."""
        try:
            pcm = decode_append(event)
        except ClientEventError:
            self.record.events.append({**event, "audio": {"bytes": None}})
            raise
        self.record.events.append({**event, "audio": {"bytes": len(pcm)}})
        self.record.appended_bytes += len(pcm)
        vad = self._turn_detection()
        for change, ms in self._buffer.append(pcm, vad):
            if change == "started":
                self._speech_started(ms, vad)
            else:
                self._speech_stopped(ms)
            if self.closing:
                break

    def _on_input_audio_buffer_commit(self, event: dict) -> None:
        size = len(self._buffer.data)
        if size < MIN_COMMIT_MS * BYTES_PER_MS:
            raise ClientEventError(
                "input_audio_buffer_commit_empty",
                "Error committing input audio buffer: buffer too small. Expected at least 100ms of audio, "
                f"but buffer only has {size / BYTES_PER_MS:.2f}ms of audio.",
            )
        item_id = self._speech[0] if self._speech else new_id("item")
        self._buffer.vad.reset()
        self._speech = None
        self._commit(item_id, self._buffer.start, self._buffer.start + size)

    def _on_input_audio_buffer_clear(self, event: dict) -> None:
        self._buffer.clear()
        self._speech = None
        self.emit("input_audio_buffer.cleared")

    def _on_conversation_item_create(self, event: dict) -> None:
        item = check_item(event, new_id("item"))
        previous = event.get("previous_item_id", self._last_item_id)
        self._last_item_id = item["id"]
        if item["role"] == "user":
            self._last_user = (" ".join(part["text"] for part in item["content"]), None)
        echoed = {**item, "object": "realtime.item"}
        self.emit("conversation.item.added", previous_item_id=previous, item=echoed)
        self.emit("conversation.item.done", previous_item_id=previous, item=echoed)

    def _on_response_create(self, event: dict) -> None:
        options = check_response_create(event)
        if self._response is not None:
            raise ClientEventError(
                "conversation_already_has_active_response",
                f"Conversation already has an active response in progress: {self._response.id}. "
                "Wait until the response is finished before creating a new one.",
            )
        text, turn = self._last_user
        self._start_response(text, turn, options)

    def _on_conversation_item_truncate(self, event: dict) -> None:
        """Cut an assistant audio item at ``audio_end_ms`` (what the user heard), as the real server does."""
        item_id, end_ms = check_truncate(event)
        response = self._assistant_items.get(item_id)
        if response is None:
            raise ClientEventError("item_not_found", f"Item with item_id not found: {item_id}", "item_id")
        if response.modality != "audio" or event["content_index"] != 0:
            raise ClientEventError("invalid_value", "Only audio content of an assistant message can be truncated.",
                                   "content_index")
        if end_ms > response.audio_ms:
            raise ClientEventError("invalid_value", f"Audio content of {response.audio_ms}ms is already shorter "
                                   f"than {end_ms}ms", "audio_end_ms")
        response.truncated_ms = end_ms
        self.server.truncations.append((item_id, end_ms))
        self.emit("conversation.item.truncated", item_id=item_id, content_index=0, audio_end_ms=end_ms)

    def _on_response_cancel(self, event: dict) -> None:
        wanted = event.get("response_id")
        if self._response is None or (wanted is not None and wanted != self._response.id):
            raise ClientEventError("response_cancel_not_active", "Cancellation failed: no active response found.")
        self._cancel_response("client_cancelled")

    # ---- turns ----------------------------------------------------------------------------------

    def _turn_detection(self) -> dict | None:
        return self.session["audio"]["input"]["turn_detection"]

    def _speech_started(self, first_loud_ms: int, vad: dict) -> None:
        buffer_start_ms = -(-self._buffer.start // BYTES_PER_MS)
        start_ms = max(first_loud_ms - vad.get("prefix_padding_ms", 300), buffer_start_ms, 0)
        item_id = new_id("item")
        self._speech = (item_id, start_ms)
        self.emit("input_audio_buffer.speech_started", audio_start_ms=start_ms, item_id=item_id)
        if self._drop_here("speech_started"):
            return
        if self._response is not None and vad.get("interrupt_response", True):
            self._cancel_response("turn_detected")

    def _speech_stopped(self, end_ms: int) -> None:
        item_id, start_ms = self._speech
        self._speech = None
        self.emit("input_audio_buffer.speech_stopped", audio_end_ms=end_ms, item_id=item_id)
        self._commit(item_id, start_ms * BYTES_PER_MS, end_ms * BYTES_PER_MS)

    def _commit(self, item_id: str, start: int, end: int) -> None:
        """Commit session bytes ``start:end`` of the input buffer as a user turn."""
        audio = self._buffer.take(start, end)
        previous, self._last_item_id = self._last_item_id, item_id
        turn = TurnRecord(item_id, self.index, audio, start // BYTES_PER_MS, end // BYTES_PER_MS,
                          self.server.next_transcript(audio))
        self.server.turns.append(turn)
        self._turns.append(turn)
        self._pending[item_id] = set()
        self.emit("input_audio_buffer.committed", previous_item_id=previous, item_id=item_id)
        if self._drop_here("committed"):
            return
        user_item = user_audio_item(item_id)
        self.emit("conversation.item.added", previous_item_id=previous, item=user_item)
        self.emit("conversation.item.done", previous_item_id=previous, item=user_item)
        self._last_user = (turn.transcript, turn)
        transcription = self.session["audio"]["input"]["transcription"]
        if transcription is not None:
            self._pending[item_id].add("transcription")
            self._spawn(self._transcribe(turn, transcription.get("model", "gpt-4o-transcribe")))
        vad = self._turn_detection()
        if self.record.session_type == "realtime" and vad is not None and vad.get("create_response", True):
            if self._response is None:
                self._start_response(turn.transcript, turn, {})
            else:
                self._pending[item_id].add("response")
                self._queued.append((turn.transcript, turn, {}))
        self._part_done(turn, None)

    async def _transcribe(self, turn: TurnRecord, model: str) -> None:
        await asyncio.sleep(self.server.transcription_delay)
        words = text_pieces(turn.transcript)
        count = 1 if model == "whisper-1" else min(3, len(words))
        groups = ["".join(words[i * len(words) // count : (i + 1) * len(words) // count]) for i in range(count)]
        for number, piece in enumerate(groups):
            if number:
                await asyncio.sleep(self.server.delta_interval)
            self.emit("conversation.item.input_audio_transcription.delta", item_id=turn.item_id, content_index=0,
                      delta=piece, obfuscation=obfuscation())
            if number == 0 and self.record.session_type == "transcription" and self._drop_here("response"):
                return
        usage = transcription_usage(model, len(turn.audio) / BYTES_PER_MS / 1000, len(words))
        self.emit("conversation.item.input_audio_transcription.completed", item_id=turn.item_id, content_index=0,
                  transcript=turn.transcript, usage=usage, logprobs=None)
        self._part_done(turn, "transcription")

    def _part_done(self, turn: TurnRecord, part: str | None) -> None:
        parts = self._pending.get(turn.item_id, set())
        parts.discard(part)
        if parts:
            return
        self._pending.pop(turn.item_id, None)
        if turn.status == "in_progress":
            self._set_status(turn, "completed")

    def _set_status(self, turn: TurnRecord, status: str) -> None:
        turn.status = status
        self._pending.pop(turn.item_id, None)
        log.info("connection %d turn %s %s: %.2f s of audio, heard %r, replied %r", self.index, turn.item_id,
                 status, len(turn.audio) / BYTES_PER_MS / 1000, turn.transcript, turn.reply)

    def _drop_here(self, point: str) -> bool:
        """Abort the connection if a scripted drop is due at ``point``; the event just queued still goes out."""
        if not self.server.take_drop(DROP_POINTS.index(point)):
            return False
        log.info("connection %d: dropping the connection at %s, as scripted", self.index, point)
        self.end(None)
        return True

    def _spawn(self, coroutine: Coroutine) -> asyncio.Task:
        task = asyncio.create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    # ---- responses ------------------------------------------------------------------------------

    def _start_response(self, text: str, turn: TurnRecord | None, options: dict) -> None:
        modality = options.get("output_modalities", self.session["output_modalities"])[0]
        response = _Response(new_id("resp"), new_id("item"), turn, modality, self.server.reply_for(text))
        self._response = response
        if turn is not None:
            turn.reply = response.text
            self._pending.setdefault(turn.item_id, set()).add("response")
        self.emit("response.created", response=self._response_object(response, "in_progress", None))
        response.task = self._spawn(self._stream(response))

    async def _stream(self, response: _Response) -> None:
        ids = {"response_id": response.id, "item_id": response.item_id, "output_index": 0, "content_index": 0}
        item = message_item(response.item_id, "assistant", "in_progress", [])
        self.emit("response.output_item.added", response_id=response.id, output_index=0, item=item)
        previous, self._last_item_id = self._last_item_id, response.item_id
        self.emit("conversation.item.added", previous_item_id=previous, item=item)
        response.item_added = True
        self._assistant_items[response.item_id] = response
        audio = response.modality == "audio"
        self.emit("response.content_part.added", **ids, part=content_part(response.modality, ""))
        for number, piece in enumerate(text_pieces(response.text)):
            await asyncio.sleep(self.server.delta_interval)
            if audio:  # the loopback has no voice: a tone per word, as long as the server says
                for pcm in word_audio(number, self.server.audio_per_word):
                    self.emit("response.output_audio.delta", **ids, delta=base64.b64encode(pcm).decode())
                    response.audio_ms += len(pcm) // BYTES_PER_MS
            self.emit("response.output_audio_transcript.delta" if audio else "response.output_text.delta",
                      **ids, delta=piece, obfuscation=obfuscation())
            response.sent += piece
            if number == 0 and self._drop_here("response"):
                return
        text = response.text
        if audio:
            self.emit("response.output_audio.done", **ids)
            self.emit("response.output_audio_transcript.done", **ids, transcript=text)
        else:
            self.emit("response.output_text.done", **ids, text=text)
        self.emit("response.content_part.done", **ids, part=content_part(response.modality, text))
        done_item = self._assistant_item(response, "completed")
        self.emit("response.output_item.done", response_id=response.id, output_index=0, item=done_item)
        self.emit("conversation.item.done", previous_item_id=previous, item=done_item)
        self._finish_response(response, "completed", None)

    def _cancel_response(self, reason: str) -> None:
        response = self._response
        response.task.cancel()
        self._finish_response(response, "cancelled", {"type": "cancelled", "reason": reason})
        if response.turn is not None and response.turn.status in ("in_progress", "completed"):
            self._set_status(response.turn, "cancelled")

    def _finish_response(self, response: _Response, status: str, details: dict | None) -> None:
        """Send ``response.done`` and ``rate_limits.updated``; start the next queued response."""
        done = self._response_object(response, status, details, done=True)
        self.emit("response.done", response=done)
        self.emit("rate_limits.updated", rate_limits=rate_limits(done["usage"]["total_tokens"]))
        self._response = None
        if response.turn is not None and status == "completed":
            self._part_done(response.turn, "response")
        if self._queued and not self.closing:
            self._start_response(*self._queued.popleft())

    def _assistant_item(self, response: _Response, status: str) -> dict:
        text = response.text if status == "completed" else response.sent
        return message_item(response.item_id, "assistant", status, [assistant_content(response.modality, text)])

    def _response_object(self, response: _Response, status: str, details: dict | None, done: bool = False) -> dict:
        output = []
        if done and response.item_added:
            output = [self._assistant_item(response, "completed" if status == "completed" else "incomplete")]
        usage = response_usage(self._last_user[0], response.sent) if done else None
        return response_object(response.id, self._conversation_id, response.modality, status, details, output, usage)
