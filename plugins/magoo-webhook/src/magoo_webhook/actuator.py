"""The webhook actuator: chosen events as JSON to a URL, never in the way of listening.

The profile's secrets (a template, a path from ``{ env }``) are masked in every body.

Each event hook builds its body (see :mod:`.payloads`) and hands it to the outbox (see
:mod:`.delivery`), which sends it from a task of its own. Delivery failures are logged and
counted in ``stats()``; they never reach the engine, so a dead receiver costs no turn, and while
they keep failing :attr:`WebhookActuator.healthy` is False, so the status says ``failing``.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any, ClassVar, Literal, get_args

from pydantic import Field, model_validator

from magoo_core import Backend, BackendConfig, WakeEvent, hookimpl, require
from magoo_core.fields import Count, Seconds, StrictBool
from magoo_core.secrets import Secrets

from .options import Headers, WebhookUrl
from .payloads import TurnSteps, envelope, epoch, finished_timeline
from .tools import ToolCall, make_tool

if TYPE_CHECKING:
    import httpx

    from .delivery import Outbox

EventName = Literal[
    "startup", "state_change", "heartbeat", "error", "recovered", "shutdown",
    "wake", "speech_start", "speech_end", "transcript", "reply", "speak_start", "speak_end", "turn_end",
]
#: Every event a webhook can send: the ``magoo_on_*`` hooks without the prefix (not speak_chunk,
#: which comes 20-50 times a second).
EVENTS: tuple[str, ...] = get_args(EventName)


class WebhookActuator(Backend):
    """POSTs a JSON body to a URL for each chosen event, from a queue the audio path never waits on."""

    name: ClassVar[str] = "webhook"

    class Config(BackendConfig):
        url: WebhookUrl = Field(description="Where to send the events: an http:// or https:// URL.")
        events: list[EventName] = Field(
            default_factory=lambda: ["wake"],
            description=f"Events to send, hook names without magoo_on_: {', '.join(EVENTS)}; [] for tools only.",
        )
        partials: StrictBool = Field(False, description="Also send partial transcripts (by default only the final one).")
        headers: Headers = Field(
            default_factory=dict,
            description='HTTP headers sent with every request; values may be secrets, '
            'Authorization = { env = "HOOK_TOKEN" } (never logged).',
        )
        method: Literal["POST", "PUT"] = Field("POST", description="HTTP method.")
        timeout: Seconds(0.01, 600) = Field(5.0, description="Seconds one attempt may take, connecting and answering included.")
        retries: Count(0, 10) = Field(2, description="Further attempts after a timeout, no connection, 408, 425, 429 or 5xx.")
        retry_backoff: Seconds(0, 30, lo_open=True) = Field(
            1.0, description="Seconds before the first retry, doubled for each next one (up to 30 s)."
        )
        queue_size: Count(1, 100_000) = Field(
            100, description="Events waiting for delivery at most; when full, the oldest is dropped."
        )
        tools: list[ToolCall] = Field(
            default_factory=list, max_length=50,
            description="Configured calls a language model may make, each a tool (see Tools: calls a model may make).",
        )

        @model_validator(mode="after")
        def _something_to_do(self):
            if not self.events and not self.tools:
                raise ValueError("events is empty and there are no tools: name events to send, or tools to offer")
            names = [tool.name for tool in self.tools]
            twice = sorted({name for name in names if names.count(name) > 1})
            if twice:
                raise ValueError(f"two tools are named {', '.join(twice)}: give each its own name")
            return self

    def __init__(self, config: Config) -> None:
        super().__init__(config)
        self.config: WebhookActuator.Config = config
        #: The profile's ``[magoo] name``, known from ``magoo_on_startup``.
        self.assistant: str | None = None
        self.outbox: Outbox | None = None
        self._chosen = frozenset(config.events)
        #: The profile's secrets, known from ``magoo_on_startup``: masked in every body.
        self._secrets = Secrets()
        self._steps = TurnSteps()
        self._tool_client: httpx.AsyncClient | None = None  # the tools' own: never behind queued events

    async def __aenter__(self) -> WebhookActuator:
        """Open the HTTP client and start the task that sends; nothing is sent before an event."""
        require("httpx", backend=self.name, install="uv pip install magoo-webhook")
        from .delivery import Outbox

        cfg = self.config
        outbox = Outbox(
            cfg.url, method=cfg.method, headers=cfg.headers, timeout=cfg.timeout, retries=cfg.retries,
            retry_backoff=cfg.retry_backoff, size=cfg.queue_size,
        )
        await outbox.start()
        self.outbox = outbox
        if cfg.tools:
            from .transport import open_client

            self._tool_client = open_client(cfg.headers, cfg.timeout)
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        """Send what is still queued (the shutdown event, say) for up to ``timeout`` s, then stop."""
        if self._tool_client is not None:
            client, self._tool_client = self._tool_client, None
            await client.aclose()
        if self.outbox is not None:
            await self.outbox.close(self.config.timeout)  # kept: its counters stay readable

    @hookimpl
    def magoo_register_tools(self, register) -> None:
        """The configured ``tools``, for a language model (see :mod:`.tools`)."""
        for call in self.config.tools:
            register(make_tool(call, lambda: self._tool_client, self.config.url, self.config.timeout, lambda: self._secrets))

    def stats(self) -> dict[str, float]:
        """Events delivered, failed after every attempt, dropped unsent; retries; events waiting."""
        if self.outbox is None:
            return {}
        return {**self.outbox.counters, "waiting": self.outbox.waiting}

    @property
    def healthy(self) -> bool:
        """False while deliveries fail (the last event was not delivered after every attempt): the
        status says ``failing`` for this actuator, not ``ok``, until an event is delivered again."""
        return self.outbox is None or self.outbox.failing == 0

    def _send(self, event: str, turn: int | None, **fields: Any) -> None:
        if event in self._chosen and self.outbox is not None:
            self.outbox.put(self._secrets.mask_data({**envelope(event, self.assistant, turn), **fields}))

    # ---- lifecycle events ----

    @hookimpl
    def magoo_on_startup(self, profile):
        self.assistant = profile.name
        self._secrets = getattr(profile, "secrets", self._secrets)
        self._send("startup", None, backends=[f"{spec.role.value}:{spec.backend}" for spec in profile.specs()])

    @hookimpl
    def magoo_on_state_change(self, old, new, turn):
        self._send("state_change", turn, old=old.value, new=new.value)

    @hookimpl
    def magoo_on_heartbeat(self, status):
        self._send(
            "heartbeat", None,
            state=status.state.value,
            uptime=round(status.uptime, 3),
            turns=status.turns,
            errors=status.errors,
            counters=dict(status.counters),
            backends={key: dict(stats) for key, stats in status.backends.items()},
            health=dict(status.health),
            input_level=round(status.input_level, 4),
            last_wake=None if status.last_wake is None else wake_fields(status.last_wake),
            wakes=dict(status.wakes),
        )

    @hookimpl
    def magoo_on_error(self, failure):
        self._send(
            "error", failure.turn,
            role=failure.role, backend=failure.backend, message=failure.message, retryable=failure.retryable,
        )

    @hookimpl
    def magoo_on_recovered(self, role, backend, failures, downtime):
        self._send("recovered", None, role=role, backend=backend, failures=failures, downtime=round(downtime, 3))

    @hookimpl
    def magoo_on_shutdown(self):
        self._send("shutdown", None)

    # ---- turn events ----

    @hookimpl
    def magoo_on_wake(self, wake, turn):
        self._steps.note(turn, "wake", wake.timestamp)
        self._send("wake", turn, **wake_fields(wake))

    @hookimpl
    def magoo_on_speech_start(self, timestamp, turn):
        self._steps.note(turn, "speech_start", timestamp)  # in continuous mode, the turn starts here
        self._send("speech_start", turn, timestamp=epoch(timestamp))

    @hookimpl
    def magoo_on_speech_end(self, timestamp, turn):
        self._steps.note(turn, "speech_end", timestamp)
        self._send("speech_end", turn, timestamp=epoch(timestamp))

    @hookimpl
    def magoo_on_transcript(self, transcript, turn):
        if transcript.final:
            self._steps.note(turn, "transcript", time.monotonic())
        elif not self.config.partials:
            return
        self._send(
            "transcript", turn, text=transcript.text, final=transcript.final, confidence=transcript.confidence,
            timeline=self._steps.so_far(turn),
        )

    @hookimpl
    def magoo_on_reply(self, reply, turn):
        if not reply.final:
            return
        self._steps.note(turn, "reply", time.monotonic())
        self._send("reply", turn, text=reply.text, timeline=self._steps.so_far(turn))

    @hookimpl
    def magoo_on_speak_start(self, text, turn):
        self._steps.note(turn, "first_audio", time.monotonic())
        self._send("speak_start", turn, text=text)

    @hookimpl
    def magoo_on_speak_end(self, turn, interrupted):
        self._send("speak_end", turn, interrupted=interrupted)

    @hookimpl
    def magoo_on_turn_end(self, timeline):
        self._steps.forget(timeline.turn)
        self._send("turn_end", timeline.turn, **finished_timeline(timeline))


def wake_fields(wake: WakeEvent) -> dict[str, Any]:
    """A detection as the original listener reported it: ``wake_word``, ``confidence`` ...

    ``timestamp`` is the wall-clock time (epoch seconds) of the audio frame that fired.
    """
    return {
        "wake_word": wake.label,
        "confidence": wake.score,
        "threshold": wake.threshold,
        "timestamp": epoch(wake.timestamp),
        "model_name": wake.model,
        "all_scores": dict(wake.scores),
    }
