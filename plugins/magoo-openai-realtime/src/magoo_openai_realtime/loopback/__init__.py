"""The loopback OpenAI Realtime server, for tests and offline tries; never imported by the runtime.

``server`` accepts websockets, ``session`` runs one connection's event flow, ``events`` builds
server events, ``outbox`` sends them in order, ``vad`` is the input buffer and its energy VAD,
``validate`` checks client events like the real server. Run it with ``magoo-realtime-loopback``
or ``python -m magoo_openai_realtime.loopback``.
"""

from .server import ConnectionRecord, LoopbackRealtimeServer, TurnRecord, main

__all__ = ["ConnectionRecord", "LoopbackRealtimeServer", "TurnRecord", "main"]
