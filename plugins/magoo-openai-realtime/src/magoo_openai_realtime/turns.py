"""Server events of a Realtime session turned into what the engine reads: speech boundaries,
transcripts (partial, then final) and replies.

A reply is handed to the engine as soon as its first piece arrives, as a streamed
:class:`~magoo_core.Reply`: ``deltas`` (text, spoken from its first sentence on) or ``audio`` (the
model's voice, played as is), both a :class:`~.replies.ReplyStream` the assembler keeps filling.
A response that ends before any piece came (cancelled, or text only in ``response.done``) is a
whole ``Reply(text)``.

The GA server sends a turn's transcription asynchronously: its events may arrive before, between
or after the response's. The engine needs the final transcript before the reply, so a reply whose
first piece comes before the transcript is held (its pieces queue up) for at most
``transcript_wait`` seconds. Events
about items this assembler never saw start (a turn from before a reconnect) are ignored, as are
unknown event types and unknown fields.
"""

from __future__ import annotations

import base64
import binascii
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from magoo_core import BackendError, Reply, SpeechActivity, Transcript

from .replies import ReplyStream, audio_chunk

log = logging.getLogger("magoo.realtime")

Item = SpeechActivity | Transcript | Reply


@dataclass
class ServerTurn:
    """One user turn as the server sees it, from speech start to the last item yielded."""

    item_id: str
    committed: bool = False
    transcript: str = ""
    transcript_done: bool = False  # completed or failed
    transcript_final: str | None = None
    response_id: str | None = None
    reply: str = ""
    reply_done: bool = False
    held_until: float | None = None  # a reply waiting for its transcript
    finished: bool = False  # its last item (the reply, streamed or whole) was given out
    stream: ReplyStream | None = None  # the reply as it is written, once a piece of it came
    remembered: bool = False  # its exchange was kept for context
    items: list[Item] = field(default_factory=list)


@dataclass
class Exchange:
    """A finished conversation turn, kept to carry context into the next session."""

    user: str | None
    assistant: str


class TurnAssembler:
    """Feeds on server events (``feed``) and returns engine items in order.

    :param replies: the session answers by itself (conversation mode).
    :param audio: the session replies in audio (``output_modalities: ["audio"]``): replies are
        handed out as ``Reply(text, audio=stream)``, else as ``Reply("", deltas=stream)``.
    :param on_cut: given to every :class:`ReplyStream`: awaited when the engine lets go of a reply
        before its end.
    :param transcribes: input transcription is on (a final transcript will come).
    :param transcript_wait: seconds a finished reply waits for its transcript.
    :param audio_time: maps the server's ``audio_*_ms`` (audio appended since the session
        started) to monotonic capture time.
    Runs on the event loop; not thread-safe.
    """

    def __init__(
        self,
        *,
        replies: bool,
        transcribes: bool,
        transcript_wait: float,
        audio_time: Callable[[int], float],
        audio: bool = False,
        on_cut: Callable[[ReplyStream], Awaitable[None]] | None = None,
    ) -> None:
        self.replies = replies
        self.audio = audio
        self.on_cut = on_cut or _nothing
        self.transcribes = transcribes
        self.transcript_wait = transcript_wait
        self.audio_time = audio_time
        self.turns: dict[str, ServerTurn] = {}
        self._by_response: dict[str, ServerTurn] = {}
        self.exchanges: list[Exchange] = []  # finished turns not yet taken by the caller
        self.speech_started = False
        self.ignored_types: set[str] = set()

    # ---- state -------------------------------------------------------------------------------

    @property
    def busy(self) -> bool:
        """A turn is in progress: speech heard and its last item not yet given out, or its reply
        still being written."""
        return any(not turn.finished or (turn.stream is not None and turn.stream.open) for turn in self.turns.values())

    @property
    def streaming(self) -> bool:
        """A reply handed to the engine as a stream is still being written, and the engine still reads it."""
        return any(turn.stream is not None and turn.stream.handed and turn.stream.open for turn in self.turns.values())

    def end_streams(self, error: BaseException | None = None) -> None:
        """End every stream still being written (with ``error`` raised to its reader, if given)."""
        for turn in self.turns.values():
            if turn.stream is not None and not turn.stream.ended:
                turn.stream.finish(error)

    @property
    def committed(self) -> bool:
        """Some turn was committed (after a wake word: the utterance is complete)."""
        return any(turn.committed for turn in self.turns.values())

    @property
    def uncommitted(self) -> bool:
        """Speech started that the server has not committed yet."""
        return any(not turn.committed and not turn.finished for turn in self.turns.values())

    @property
    def finished_turns(self) -> int:
        return sum(turn.finished for turn in self.turns.values())

    def next_deadline(self) -> float | None:
        """The monotonic time a held reply must be released at, if any."""
        held = [turn.held_until for turn in self.turns.values() if turn.held_until is not None]
        return min(held) if held else None

    def release_due(self, now: float | None = None) -> list[Item]:
        """Give out replies whose transcript did not come within ``transcript_wait``."""
        now = time.monotonic() if now is None else now
        items: list[Item] = []
        for turn in self.turns.values():
            if turn.held_until is not None and turn.held_until <= now:
                log.warning("no transcript of what the user said within %.1f s; answering anyway", self.transcript_wait)
                turn.transcript_done = True
                items += self._finish(turn)
        return items

    def forget_finished(self) -> int:
        """Drop finished turns whose reply is not being streamed any more (a long conversation
        must not grow without bound); returns how many were dropped."""
        done = [k for k, turn in self.turns.items() if turn.finished and (turn.stream is None or not turn.stream.open)]
        for item_id in done:
            turn = self.turns.pop(item_id)
            if turn.response_id:
                self._by_response.pop(turn.response_id, None)
        return len(done)

    # ---- events ------------------------------------------------------------------------------

    def feed(self, event: dict[str, Any]) -> list[Item]:
        """Items for one server event (often none). Raises :class:`BackendError` for a response
        that failed, or a transcription that failed when the transcript is the product."""
        kind = event.get("type")
        handler = self._HANDLERS.get(kind) if isinstance(kind, str) else None
        if handler is None:
            if isinstance(kind, str) and kind not in self.ignored_types and kind not in _KNOWN_QUIET:
                self.ignored_types.add(kind)
                log.debug("ignoring server event type %r", kind)
            return []
        return handler(self, event)

    def _malformed(self, event: dict[str, Any], missing: str) -> list[Item]:
        """A known event without what makes it usable: logged once per kind, then skipped."""
        kind = f"{event.get('type')} without {missing}"
        if kind not in self.ignored_types:
            self.ignored_types.add(kind)
            log.warning("ignored a malformed %s event from the server (no %s)", event.get("type"), missing)
        return []

    def _speech_started(self, event: dict[str, Any]) -> list[Item]:
        item_id = _text(event, "item_id")
        if not item_id:  # a turn nobody can finish: better none
            return self._malformed(event, "item_id")
        if item_id in self.turns:
            return []
        self.turns[item_id] = ServerTurn(item_id)
        self.speech_started = True
        return [SpeechActivity(True, self.audio_time(_int(event, "audio_start_ms")))]

    def _speech_stopped(self, event: dict[str, Any]) -> list[Item]:
        if _text(event, "item_id") not in self.turns:
            return []
        return [SpeechActivity(False, self.audio_time(_int(event, "audio_end_ms")))]

    def _committed(self, event: dict[str, Any]) -> list[Item]:
        item_id = _text(event, "item_id")
        if not item_id:
            return []
        turn = self.turns.setdefault(item_id, ServerTurn(item_id))
        turn.committed = True
        return []

    def _transcript_delta(self, event: dict[str, Any]) -> list[Item]:
        turn = self.turns.get(_text(event, "item_id"))
        if turn is None or turn.transcript_done:
            return []
        turn.transcript += _text(event, "delta")
        return [Transcript(turn.transcript.strip(), final=False)] if turn.transcript.strip() else []

    def _transcript_completed(self, event: dict[str, Any]) -> list[Item]:
        if not _text(event, "item_id"):
            return self._malformed(event, "item_id")
        turn = self.turns.get(_text(event, "item_id"))
        if turn is None or turn.transcript_done:
            return []
        turn.transcript_done = True
        turn.transcript_final = (_text(event, "transcript") or turn.transcript).strip()
        items: list[Item] = [Transcript(turn.transcript_final, final=True)]
        if not self.replies or turn.reply_done or turn.stream is not None:
            items += self._finish(turn)
        return items

    def _transcript_failed(self, event: dict[str, Any]) -> list[Item]:
        turn = self.turns.get(_text(event, "item_id"))
        if turn is None or turn.transcript_done:
            return []
        turn.transcript_done = True
        error = event.get("error") if isinstance(event.get("error"), dict) else {}
        message = f"transcription failed: {error.get('message') or error.get('code') or 'no reason given'}"
        if not self.replies:
            turn.finished = True
            raise BackendError(message)
        log.warning("%s; the reply is spoken without a transcript", message)
        return self._finish(turn) if turn.reply_done or turn.stream is not None else []

    def _response_created(self, event: dict[str, Any]) -> list[Item]:
        response = event.get("response") if isinstance(event.get("response"), dict) else {}
        response_id = _text(response, "id")
        turn = next((t for t in reversed(self.turns.values()) if t.committed and t.response_id is None), None)
        if turn is None or not response_id:
            return []  # a response this assembler did not ask for (an earlier turn's)
        turn.response_id = response_id
        self._by_response[response_id] = turn
        return []

    def _text_delta(self, event: dict[str, Any]) -> list[Item]:
        """A piece of the reply's text (in audio mode: of its transcript)."""
        turn = self._writing(event)
        if turn is None:
            return []
        delta = _text(event, "delta")
        turn.reply += delta
        if self.audio:
            return []
        return self._piece(turn, event, delta) if delta else []

    def _audio_delta(self, event: dict[str, Any]) -> list[Item]:
        """A piece of the model's voice (base64 PCM16, 24 kHz mono)."""
        turn = self._writing(event)
        if turn is None or not self.audio:
            return []
        try:
            pcm = base64.b64decode(_text(event, "delta"), validate=True)
        except (binascii.Error, ValueError):
            return self._malformed(event, "base64 audio in delta")
        pcm = pcm[: len(pcm) // 2 * 2]
        return self._piece(turn, event, audio_chunk(pcm)) if pcm else []

    def _writing(self, event: dict[str, Any]) -> ServerTurn | None:
        """The turn whose response this delta belongs to, if it is still being written."""
        if not _text(event, "response_id"):
            self._malformed(event, "response_id")
            return None
        turn = self._by_response.get(_text(event, "response_id"))
        return None if turn is None or turn.reply_done else turn

    def _piece(self, turn: ServerTurn, event: dict[str, Any], piece: Any) -> list[Item]:
        """Put ``piece`` on the turn's stream; the first one hands the reply out (or holds it
        for the transcript)."""
        first = turn.stream is None
        if first:
            turn.stream = ReplyStream(turn.response_id or "", self.on_cut)
        turn.stream.item_id = turn.stream.item_id or _text(event, "item_id")
        turn.stream.push(piece)
        if not first or turn.finished:
            return []
        if turn.transcript_done or not self.transcribes:
            return self._finish(turn)
        turn.held_until = time.monotonic() + self.transcript_wait
        return []

    def _text_done(self, event: dict[str, Any]) -> list[Item]:
        turn = self._by_response.get(_text(event, "response_id"))
        text = event.get("text", event.get("transcript"))
        if turn is not None and isinstance(text, str):
            turn.reply = text
        return []

    def _response_done(self, event: dict[str, Any]) -> list[Item]:
        if not isinstance(event.get("response"), dict):
            return self._malformed(event, "response")
        response = event["response"]
        turn = self._by_response.get(_text(response, "id"))
        if turn is None or turn.reply_done:
            return []
        status = _text(response, "status") or "completed"
        details = response.get("status_details") if isinstance(response.get("status_details"), dict) else {}
        handed = turn.finished
        if status == "failed":
            error = details.get("error") if isinstance(details.get("error"), dict) else {}
            failure = BackendError(f"the response failed: {error.get('message') or error.get('code') or 'no reason given'}")
            turn.finished = turn.reply_done = True
            if handed and turn.stream is not None:
                turn.stream.finish(failure)  # its reader gets it after what came before
                return []
            raise failure
        if status == "cancelled":
            log.info("response cancelled (%s)", details.get("reason") or "no reason given")
            turn.reply = ""
            if not handed:
                turn.stream = None  # nothing of it was said: the turn has no reply
        elif status == "incomplete":
            log.warning("reply cut short (%s); speaking what arrived", details.get("reason") or "incomplete")
        turn.reply = turn.reply or _output_text(response)
        turn.reply_done = True
        if turn.stream is not None:
            turn.stream.finish()
        if handed:
            self._remember(turn)
            return []
        if turn.transcript_done or not self.transcribes or status == "cancelled":
            return self._finish(turn)
        turn.held_until = turn.held_until or time.monotonic() + self.transcript_wait
        return []

    def _finish(self, turn: ServerTurn) -> list[Item]:
        """Give out the turn's reply: streamed when a piece of it came, else whole."""
        turn.held_until = None
        turn.finished = True
        if not self.replies:
            return []
        self._remember(turn)
        if turn.stream is None:
            return [Reply(turn.reply, final=True)]
        if self.audio:
            return [Reply(turn.reply if turn.reply_done else "", final=True, audio=turn.stream)]
        return [Reply("", final=True, deltas=turn.stream)]

    def _remember(self, turn: ServerTurn) -> None:
        """Keep the exchange for context once the reply is given out and whole."""
        if turn.finished and turn.reply_done and not turn.remembered:
            turn.remembered = True
            if turn.reply.strip():
                self.exchanges.append(Exchange(turn.transcript_final, turn.reply))

    _HANDLERS: dict[str, Callable[[TurnAssembler, dict[str, Any]], list[Item]]] = {
        "input_audio_buffer.speech_started": _speech_started,
        "input_audio_buffer.speech_stopped": _speech_stopped,
        "input_audio_buffer.committed": _committed,
        "conversation.item.input_audio_transcription.delta": _transcript_delta,
        "conversation.item.input_audio_transcription.completed": _transcript_completed,
        "conversation.item.input_audio_transcription.failed": _transcript_failed,
        "response.created": _response_created,
        "response.output_text.delta": _text_delta,
        "response.output_text.done": _text_done,
        "response.output_audio_transcript.delta": _text_delta,
        "response.output_audio_transcript.done": _text_done,
        "response.output_audio.delta": _audio_delta,
        # the names the same events had before the GA release (some compatible servers still use them)
        "response.text.delta": _text_delta,
        "response.audio_transcript.delta": _text_delta,
        "response.audio.delta": _audio_delta,
        "response.done": _response_done,
    }


#: Event types a turn has no use for (they are expected; not worth a debug line each).
_KNOWN_QUIET = {
    "session.created", "session.updated", "error", "rate_limits.updated",
    "input_audio_buffer.cleared", "input_audio_buffer.timeout_triggered",
    "conversation.item.added", "conversation.item.done", "conversation.item.created",
    "conversation.item.input_audio_transcription.segment",
    "response.output_item.added", "response.output_item.done",
    "response.content_part.added", "response.content_part.done",
    "response.output_audio.done", "response.audio.done", "conversation.item.truncated",
}


async def _nothing(stream: ReplyStream) -> None:
    return None


def _text(data: dict[str, Any], key: str) -> str:
    value = data.get(key)
    return value if isinstance(value, str) else ""


def _int(data: dict[str, Any], key: str) -> int:
    value = data.get(key)
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _output_text(response: dict[str, Any]) -> str:
    """The assistant's text from a ``response.done``'s output items (when no delta came)."""
    texts = []
    for item in response.get("output") or []:
        if isinstance(item, dict):
            for part in item.get("content") or []:
                if isinstance(part, dict):
                    text = part.get("text", part.get("transcript"))
                    if isinstance(text, str):
                        texts.append(text)
    return "".join(texts)
