"""The ``[stt]`` section of the Realtime backend: every setting, strict, with its description."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, SecretStr, model_validator

from magoo_core import BackendConfig
from magoo_core.fields import Count, Ratio, Seconds

DEFAULT_URL = "wss://api.openai.com/v1/realtime"


class RealtimeConfig(BackendConfig):
    """Settings of ``[stt] backend = "openai-realtime"`` (the plugin's README lists them)."""

    api_key: SecretStr = Field(
        description='OpenAI API key; write api_key = { env = "OPENAI_API_KEY" } (never logged).'
    )
    mode: Literal["conversation", "transcription"] = Field(
        "conversation",
        description=(
            "conversation: the session transcribes and replies (text); transcription: transcripts "
            "only (?intent=transcription), the [responder] replies."
        ),
    )
    model: str = Field("gpt-realtime-1.5", description="Realtime model of a conversation session.")
    output: Literal["text", "audio"] = Field(
        "text",
        description=(
            "conversation: how the model replies: text (spoken by the [tts], from its first sentence on "
            "while the rest is written) or audio (the model's own voice, played as it arrives)."
        ),
    )
    voice: str = Field("marin", description='output = "audio": the model\'s voice (marin, cedar, alloy, ...).')
    instructions: str = Field(
        "You are a friendly voice assistant. Answer briefly, in plain spoken sentences.",
        description="System instructions of a conversation session.",
    )
    max_output_tokens: Count(1, 4096) | Literal["inf"] = Field(
        400, description='Longest reply in tokens, or "inf".'
    )
    transcription_model: str = Field(
        "gpt-4o-mini-transcribe",
        description=(
            "Model that transcribes what the user said (gpt-4o-transcribe, whisper-1, ...); "
            '"" turns transcripts off in conversation mode.'
        ),
    )
    language: str = Field("en", description='Language of the user\'s speech (ISO-639-1), "" to detect it.')
    transcription_prompt: str = Field("", description="Words or context that help the transcription.")
    noise_reduction: Literal["near_field", "far_field", "off"] = Field(
        "far_field",
        description="Server-side noise reduction: near_field (headset), far_field (room microphone) or off.",
    )
    turn_detection: Literal["server_vad", "semantic_vad"] = Field(
        "server_vad", description="How the server finds the end of a turn: by silence, or by meaning."
    )
    threshold: Ratio() = Field(0.5, description="server_vad: speech threshold 0..1; higher needs louder speech.")
    prefix_padding_ms: Count(0, 2000) = Field(300, description="server_vad: audio kept from before speech started (ms).")
    silence_duration_ms: Count(100, 5000) = Field(500, description="server_vad: silence that ends a turn (ms).")
    eagerness: Literal["low", "medium", "high", "auto"] = Field(
        "auto", description="semantic_vad: how soon it answers; low waits longest (up to 8 s)."
    )
    url: str = Field(DEFAULT_URL, description="Realtime endpoint; override for a compatible server or the loopback server.")
    append_ms: Count(10, 1000) = Field(50, description="Audio per input_audio_buffer.append message (ms).")
    connect_timeout: Seconds(0.05, 300) = Field(
        10.0, description="Seconds to connect and set up a session; also how long a turn waits for a connection."
    )
    ping_interval: Seconds(0.05, 3600) = Field(20.0, description="Seconds between websocket pings.")
    ping_timeout: Seconds(0.05, 3600) = Field(20.0, description="Seconds without a pong before the connection counts as dropped.")
    reconnect_backoff: Seconds(0.01, 3600) = Field(1.0, description="Seconds before the first reconnect attempt, doubled each time.")
    reconnect_backoff_max: Seconds(0.01, 86400) = Field(300.0, description="Seconds between reconnect attempts, at most.")
    healthy_after: Seconds(0.1, 86400) = Field(
        60.0, description="Seconds a connection must stay up before the backoff starts again from its base."
    )
    recycle_after: Seconds(1, 3600) = Field(
        3000.0,
        description=(
            "Seconds after which the session is replaced by a fresh one at a quiet moment (the server "
            "ends sessions at 60 min; earlier if its expires_at says so)."
        ),
    )
    context_turns: Count(0, 100) = Field(
        10, description="Recent exchanges replayed into a new session, so a reconnect keeps the conversation."
    )
    transcript_wait: Seconds(0, 60) = Field(
        1.0, description="Seconds a finished reply waits for the transcript of what the user said."
    )

    @model_validator(mode="after")
    def _transcription_needs_a_model(self):
        if self.mode == "transcription" and not self.transcription_model:
            raise ValueError("mode = \"transcription\" needs a transcription_model")
        if self.mode == "transcription" and self.output == "audio":
            raise ValueError('output = "audio" needs mode = "conversation" (a transcription session does not reply)')
        if self.reconnect_backoff_max < self.reconnect_backoff:
            raise ValueError("reconnect_backoff_max must be at least reconnect_backoff")
        return self
