"""One Realtime session kept open for days: connect, configure, reconnect, recycle.

:class:`RealtimeLink` owns the websocket. It connects in the background, sends the
``session.update`` and waits for ``session.updated``, replays recent exchanges as context, and
then puts every server event on one queue (tagged with its :class:`Session`). When the
connection drops it reconnects with capped exponential backoff and jitter; the backoff starts
again from its base only after a connection stayed up ``healthy_after`` seconds, so a server
that accepts and at once closes cannot cause a reconnect storm. Before the server's session cap
it opens a fresh session at a quiet moment and switches to it (make before break), so the user
never meets ``session_expired``. A rejected key or a rejected configuration stops it for good
with one clear error.

Everything runs on the event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import websockets
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus, InvalidURI

from magoo_core import BackendError
from magoo_core.backoff import Backoff

from . import protocol
from .turns import Exchange

log = logging.getLogger("magoo.realtime")

#: Events kept for a consumer that is not reading (between two turns); older ones are dropped.
EVENT_BACKLOG = 2000
#: Audio (ms) kept to replay into a fresh session at a switch, so a word that began during the
#: switch is not cut.
REPLAY_MS = 500


@dataclass
class Dropped:
    """A session ended without being asked to: put on the event queue for the consumer.

    :param message: what happened and what comes next, one line.
    :param fatal: set when reconnecting cannot help.
    """

    session: Session
    message: str
    fatal: BackendError | None = None


class Session:
    """One configured websocket session.

    ``append()`` batches 24 kHz PCM into ``append_ms`` pieces and keeps a map from the server's
    audio milliseconds to capture time; ``send()`` writes one client event.
    """

    def __init__(self, ws: ClientConnection, number: int, created: dict[str, Any], append_ms: int) -> None:
        self.ws = ws
        self.number = number
        self.id = str((created.get("session") or {}).get("id") or "?")
        expires_at = (created.get("session") or {}).get("expires_at")
        self.expires_in = expires_at - time.time() if isinstance(expires_at, (int, float)) else None
        self.opened_at = time.monotonic()
        self.closed = asyncio.Event()
        self.expired = False
        self.leaving = False  # closed on purpose (switch, shutdown): not a drop
        self.fatal: BackendError | None = None
        self.active_response: str | None = None
        self.reader: asyncio.Task | None = None
        self._batch = bytearray()
        self._batch_bytes = max(1, append_ms) * protocol.BYTES_PER_MS
        self._batch_started: float | None = None
        self.appended_ms = 0.0
        self._clock: deque[tuple[float, float]] = deque(maxlen=4096)  # (session ms, capture time)

    @property
    def open(self) -> bool:
        return not self.closed.is_set() and not self.leaving

    async def send(self, event: dict[str, Any]) -> bool:
        """Write one event; False when the connection is already gone (the reader reports that)."""
        if self.closed.is_set():
            return False
        try:
            await self.ws.send(json.dumps(event))
        except ConnectionClosed:
            return False
        return True

    async def append(self, pcm: bytes, captured_at: float) -> None:
        """Queue 24 kHz PCM16 mono whose first sample was captured at monotonic ``captured_at``;
        every full ``append_ms`` piece is sent at once."""
        if not self._batch:
            self._batch_started = captured_at
        self._batch += pcm
        while len(self._batch) >= self._batch_bytes:
            await self._send_audio(self._batch_bytes)

    async def flush(self) -> None:
        """Send what is batched, even if less than a piece."""
        if self._batch:
            await self._send_audio(len(self._batch))

    async def _send_audio(self, nbytes: int) -> None:
        pcm = bytes(self._batch[:nbytes])
        del self._batch[:nbytes]
        started = self._batch_started if self._batch_started is not None else time.monotonic()
        self._clock.append((self.appended_ms, started))
        milliseconds = nbytes / protocol.BYTES_PER_MS
        self.appended_ms += milliseconds
        self._batch_started = started + milliseconds / 1000
        await self.send(protocol.append(pcm))

    def audio_time(self, ms: int) -> float:
        """Capture time of the audio at ``ms`` milliseconds into this session (now, if unknown)."""
        for start_ms, captured_at in reversed(self._clock):
            if start_ms <= ms:
                return captured_at + (ms - start_ms) / 1000
        return time.monotonic()


class RealtimeLink:
    """Keeps a configured session open; see the module docstring.

    :param config: the backend's ``Config``.
    :param busy: True while a turn is in progress (the session is not switched then).
    """

    def __init__(self, config: Any, busy: Callable[[], bool]) -> None:
        self.config = config
        self.busy = busy
        self.events: asyncio.Queue[tuple[Session, dict[str, Any]] | Dropped] = asyncio.Queue(EVENT_BACKLOG)
        self.current: Session | None = None
        self.fatal: BackendError | None = None
        #: the server refused the key, and no connection has succeeded since (the backend's health)
        self.key_rejected = False
        self.last_error = "not connected yet"
        self.next_attempt_at: float | None = None
        self.history: deque[Exchange] = deque(maxlen=max(config.context_turns, 0) or None)
        self.backoff = Backoff(config.reconnect_backoff, config.reconnect_backoff_max)
        self.delays: deque[float] = deque(maxlen=100)  # the last reconnect delays chosen, for status and tests
        self.stats = {"connects": 0, "connect_failures": 0, "auth_failures": 0, "drops": 0, "switches": 0,
                      "dropped_events": 0, "malformed_events": 0}
        self.key = config.api_key.get_secret_value()
        _REDACT.keys.add(self.key)
        self._sessions = 0
        self._outcome: asyncio.Future[Session | BackendError] | None = None
        self._task: asyncio.Task | None = None
        self._replay: deque[tuple[bytes, float]] = deque()
        self._replay_ms = 0.0

    # ---- life ----------------------------------------------------------------------------------

    def start(self) -> None:
        self.fatal = None  # a new start tries again; key_rejected stays until a connection succeeds
        self._task = asyncio.get_running_loop().create_task(self._run(), name="openai-realtime-link")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self.current is not None:
            await self._leave(self.current)
            self.current = None

    # ---- waiting for a session -----------------------------------------------------------------

    async def session(self, timeout: float | None) -> Session:
        """The open session, waiting for the connection in progress or the next attempt.

        :raises BackendError: not retryable when the key or the settings were rejected;
            otherwise (``restart=False``: the link reconnects by itself) when an attempt
            failed or ``timeout`` seconds passed first.
        """
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        while True:
            if self.fatal is not None:
                raise self.fatal
            if self.current is not None and self.current.open:
                return self.current
            outcome = self._pending_outcome()
            try:
                async with asyncio.timeout_at(deadline):
                    result = await asyncio.shield(outcome)
            except TimeoutError:
                raise BackendError(f"not connected to OpenAI Realtime ({self.describe_wait()})", restart=False) from None
            if isinstance(result, BackendError):
                raise result

    def describe_wait(self) -> str:
        """``last error; next attempt in N s``, for messages."""
        text = self.last_error
        if self.next_attempt_at is not None:
            wait = max(0.0, self.next_attempt_at - time.monotonic())
            text += f"; next attempt in {_seconds(wait)}"
        return text

    def _pending_outcome(self) -> asyncio.Future[Session | BackendError]:
        if self._outcome is None or self._outcome.done():
            self._outcome = asyncio.get_running_loop().create_future()
        return self._outcome

    def _settle(self, result: Session | BackendError) -> None:
        outcome = self._pending_outcome()
        outcome.set_result(result)

    # ---- audio in continuous mode ---------------------------------------------------------------

    async def append(self, pcm: bytes, captured_at: float) -> bool:
        """Send audio to whichever session is current (kept briefly for a switch); False when
        there is no session to send it to (the audio is lost, as while the network is down)."""
        self._replay.append((pcm, captured_at))
        self._replay_ms += len(pcm) / protocol.BYTES_PER_MS
        while self._replay_ms > REPLAY_MS and len(self._replay) > 1:
            old, _ = self._replay.popleft()
            self._replay_ms -= len(old) / protocol.BYTES_PER_MS
        session = self.current
        if session is None or not session.open:
            return False
        await session.append(pcm, captured_at)
        return True

    # ---- the connection loop --------------------------------------------------------------------

    async def _run(self) -> None:
        while True:
            try:
                session = await self._open()
            except BackendError as exc:
                if not exc.retryable:
                    self._take_fatal(exc)
                    if self.stats["connects"]:  # at start, the backend's start fails with it instead
                        log.error("%s; not reconnecting", exc.message)
                    self._settle(exc)
                    return
                await self._attempt_failed(exc.message)
                continue
            self.current = session
            self.key_rejected = False
            self.next_attempt_at = None
            self._settle(session)
            dropped = await self._hold(session)
            await self._after_drop(dropped)
            if self.fatal is not None:
                return

    def _take_fatal(self, exc: BackendError) -> None:
        """Stop for good with ``exc``; a rejected key is counted in ``auth_failures`` (status.json)."""
        self.fatal = exc
        if protocol.is_auth_error(exc):
            self.stats["auth_failures"] += 1
            self.key_rejected = True

    async def _attempt_failed(self, reason: str) -> None:
        self.stats["connect_failures"] += 1
        delay = self._next_delay()
        self.last_error = reason
        self.next_attempt_at = time.monotonic() + delay
        log.warning("cannot connect to OpenAI Realtime: %s; next attempt in %s", reason, _seconds(delay))
        self._settle(BackendError(f"cannot connect to OpenAI Realtime: {self.describe_wait()}", restart=False))
        await asyncio.sleep(delay)

    def _next_delay(self) -> float:
        delay = self.backoff.next()
        self.delays.append(delay)
        return delay

    async def _after_drop(self, dropped: Dropped) -> None:
        self.current = None
        self.stats["drops"] += 1
        if dropped.fatal is not None:
            self._take_fatal(dropped.fatal)
            log.error("%s; not reconnecting", dropped.fatal.message)
            self.put(dropped)
            self._settle(dropped.fatal)
            return
        lived = time.monotonic() - dropped.session.opened_at
        if dropped.session.expired and lived >= self.config.healthy_after:
            # the cap came before a quiet moment: reconnecting at once loses the least
            delay = 0.0
            self.last_error = "the session reached the server's time limit"
        else:
            delay = self._next_delay()
            self.last_error = dropped.message
        self.next_attempt_at = time.monotonic() + delay
        dropped.message = f"{self.last_error}; reconnecting in {_seconds(delay)}"
        log.warning("OpenAI Realtime connection lost: %s", dropped.message)
        self.put(dropped)
        await asyncio.sleep(delay)

    async def _hold(self, session: Session) -> Dropped:
        """Serve ``session`` until it drops, switching to a fresh one before the server's cap."""
        healthy = asyncio.get_running_loop().call_later(self.config.healthy_after, self.backoff.reset)
        try:
            while True:
                switch_in = self._switch_due(session) - time.monotonic()
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(max(switch_in, 0.0)):
                        await session.closed.wait()
                if session.closed.is_set():
                    return self._drop_of(session)
                if self.busy() or session.active_response:
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(0.2):
                            await session.closed.wait()
                    continue
                fresh = await self._open_fresh()
                if fresh is None:
                    if self.fatal is not None:
                        await self._leave(session)
                        return Dropped(session, self.fatal.message, self.fatal)
                    continue
                # a turn may have begun while the new session was being set up: wait it out
                while (self.busy() or session.active_response) and not session.closed.is_set():
                    await asyncio.sleep(0.1)
                if session.closed.is_set():  # dropped meanwhile: its turn is lost, the fresh one takes over
                    dropped = self._drop_of(session)
                    if dropped.fatal is not None:
                        await self._leave(fresh)
                        return dropped
                    self.stats["drops"] += 1
                    dropped.message += "; switched to the session opened for recycling"
                    self.put(dropped)
                await self._switch(session, fresh)
                session = fresh
        finally:
            healthy.cancel()

    def _switch_due(self, session: Session) -> float:
        """When to move to a fresh session: ``recycle_after``, or earlier at 90 % of the lifetime
        the server announced in ``expires_at``."""
        limit = self.config.recycle_after
        if session.expires_in is not None and session.expires_in > 0:
            limit = min(limit, 0.9 * session.expires_in)
        return session.opened_at + limit

    async def _open_fresh(self) -> Session | None:
        try:
            return await self._open()
        except BackendError as exc:
            if not exc.retryable:
                self._take_fatal(exc)
                log.error("%s", exc.message)
                return None
            log.warning("could not open the next session early (%s); trying again in 10 s", exc.message)
            await asyncio.sleep(10.0)
            return None

    async def _switch(self, old: Session, fresh: Session) -> None:
        for pcm, captured_at in list(self._replay):
            await fresh.append(pcm, captured_at)
        self.current = fresh
        self.stats["switches"] += 1
        log.info(
            "switched to a fresh OpenAI Realtime session (%s) after %.0f s of the old one",
            fresh.id, time.monotonic() - old.opened_at,
        )
        await self._leave(old)

    def _drop_of(self, session: Session) -> Dropped:
        code, reason = session.ws.close_code, session.ws.close_reason or ""
        fatal = session.fatal or protocol.close_to_backend_error(code, reason, self.key)
        what = f"close {code}" if code is not None else "no close frame"
        detail = f": {protocol.redact(reason, self.key)}" if reason else ""
        return Dropped(session, f"the connection closed ({what}{detail})", fatal)

    async def _leave(self, session: Session) -> None:
        session.leaving = True
        with contextlib.suppress(Exception):
            async with asyncio.timeout(2.0):
                await session.ws.close(1000, "switching session" if self.current is not session else "bye")

    # ---- one connection -------------------------------------------------------------------------

    async def _open(self) -> Session:
        """Connect, wait for ``session.created``, configure, replay context; start reading."""
        config = self.config
        url = protocol.session_url(config.url, mode=config.mode, model=config.model)
        try:
            async with asyncio.timeout(config.connect_timeout):
                ws = await connect(
                    url,
                    additional_headers={"Authorization": f"Bearer {self.key}"},
                    max_size=None,
                    compression=None,
                    ping_interval=config.ping_interval,
                    ping_timeout=config.ping_timeout,
                    open_timeout=None,
                    close_timeout=2,
                    user_agent_header=f"magoo-openai-realtime websockets/{websockets.__version__}",
                    logger=_WS_LOG,
                )
                try:
                    created = await self._expect(ws, "session.created")
                    await ws.send(json.dumps(protocol.session_update(config)))
                    await self._expect(ws, "session.updated")
                except BaseException:
                    await ws.close()
                    raise
        except TimeoutError:
            raise BackendError(f"no answer from {_host(url)} within {config.connect_timeout:.0f} s") from None
        except InvalidStatus as exc:
            raise _status_error(exc.response.status_code, _host(url)) from None
        except InvalidURI:
            raise BackendError(f"url {config.url!r} is not a websocket URL (ws:// or wss://)", retryable=False) from None
        except ConnectionClosed as exc:
            fatal = protocol.close_to_backend_error(exc.rcvd.code if exc.rcvd else None,
                                                    exc.rcvd.reason if exc.rcvd else "", self.key)
            raise fatal or BackendError(f"{_host(url)} closed the connection while it was set up") from None
        except OSError as exc:
            raise BackendError(f"cannot reach {_host(url)}: {exc.strerror or exc}") from None
        except BackendError:
            raise
        except Exception as exc:  # anything else (a header websockets refuses ...) must not end the loop unsaid
            detail = protocol.redact(f"{type(exc).__name__}: {exc}", self.key)
            raise BackendError(f"cannot connect to {_host(url)}: {detail}") from None
        self._sessions += 1
        self.stats["connects"] += 1
        session = Session(ws, self._sessions, created, config.append_ms)
        for exchange in self.history:
            if exchange.user:
                await session.send(protocol.context_item("user", exchange.user))
            await session.send(protocol.context_item("assistant", exchange.assistant))
        session.reader = asyncio.get_running_loop().create_task(
            self._read(session), name=f"openai-realtime-read-{session.number}"
        )
        log.info("connected to OpenAI Realtime at %s (session %s, %s mode)", _host(url), session.id, config.mode)
        return session

    async def _expect(self, ws: ClientConnection, kind: str) -> dict[str, Any]:
        """The next event of type ``kind``; an ``error`` event first becomes a BackendError."""
        while True:
            event = _parse(await ws.recv())
            if event is None:
                continue
            if event["type"] == kind:
                return event
            if event["type"] == "error":
                error = protocol.error_to_backend_error(event, self.key)
                if kind == "session.updated" and error.retryable and protocol.is_request_error(event):
                    # the settings were refused: the same settings will be refused again
                    raise BackendError(f"OpenAI refused the session settings: {error.message}", retryable=False)
                raise error

    async def _read(self, session: Session) -> None:
        """Put every event of ``session`` on the queue until it closes; note what closing means."""
        try:
            async for message in session.ws:
                event = _parse(message)
                if event is None:
                    self.stats["malformed_events"] += 1
                    log.warning("ignored a malformed event from the server (not a JSON object with a type)")
                    continue
                self._track(session, event)
                self.put((session, event))
        except ConnectionClosed:
            pass
        except Exception:  # never let a reader die silently: the session is treated as dropped
            log.exception("reading from OpenAI Realtime failed")
            with contextlib.suppress(Exception):
                await session.ws.close(1011, "client error")
        finally:
            session.closed.set()

    def _track(self, session: Session, event: dict[str, Any]) -> None:
        kind = event["type"]
        if kind == "response.created":
            session.active_response = str((event.get("response") or {}).get("id") or "?")
        elif kind == "response.done":
            session.active_response = None
        elif kind == "error":
            code, _, _ = protocol.error_fields(event)
            if code == "session_expired":
                session.expired = True
            elif code in protocol.CONNECTION_ERRORS:
                session.fatal = protocol.error_to_backend_error(event, self.key)

    def put(self, item: Any) -> None:
        """Queue ``item`` for the consumer, dropping the oldest entry when nobody has read for long."""
        if self.events.full():
            self.events.get_nowait()
            self.stats["dropped_events"] += 1
        self.events.put_nowait(item)


class _Redact(logging.Filter):
    """Rewrites any log record that would show a key (or a bearer token) with it masked."""

    def __init__(self) -> None:
        super().__init__()
        self.keys: set[str] = set()

    def filter(self, record: logging.LogRecord) -> bool:
        text = clean = record.getMessage()
        for key in self.keys:
            clean = protocol.redact(clean, key)
        clean = re.sub(r"(?i)(authorization:\s*bearer\s+)\S+", r"\1***", clean)
        if clean != text:
            record.msg, record.args = clean, ()
        return True


# websockets logs the request headers at DEBUG: the Authorization header must not get out
_WS_LOG = logging.getLogger("magoo.realtime.websocket")
_REDACT = _Redact()
_WS_LOG.addFilter(_REDACT)


def _seconds(value: float) -> str:
    return f"{value:.2f} s" if value < 1 else f"{value:.0f} s"


def _parse(message: str | bytes) -> dict[str, Any] | None:
    try:
        event = json.loads(message)
    except ValueError:
        return None
    if not isinstance(event, dict) or not isinstance(event.get("type"), str):
        return None
    return event


def _host(url: str) -> str:
    return url.split("://", 1)[-1].split("/", 1)[0]


def _status_error(status: int, host: str) -> BackendError:
    if status in (401, 403):
        return protocol.auth_error(
            f"{host} refused the connection (HTTP {status}): check the key in api_key (for example"
            " OPENAI_API_KEY in the environment or the profile's .env file) and that the account has access"
            " to the Realtime API",
            retryable=False,
        )
    if status == 404:
        return BackendError(f"{host} has no Realtime endpoint at this url (HTTP 404): check url", retryable=False)
    return BackendError(f"{host} refused the connection (HTTP {status})")
