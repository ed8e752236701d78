"""The backend's own health (``healthy``, read by the status file, the heartbeat and systemd's
STATUS): a key the server rejects shows the backend ``failing`` between turns, until a connection
with an accepted key succeeds. The real client against the loopback server."""

from __future__ import annotations

import types

from magoo_core import lifecycle
from magoo_openai_realtime import RealtimeSpeechToText

from realtime_helpers import KEY, stt


def backend(server) -> RealtimeSpeechToText:
    section = stt(server)
    section.pop("backend")
    section["api_key"] = KEY
    return RealtimeSpeechToText(RealtimeSpeechToText.Config(**section))


def health(instance: RealtimeSpeechToText) -> str:
    """What the engine's status says for a running backend that the engine saw no failure of."""
    return lifecycle._health(types.SimpleNamespace(restarting=False, instance=instance, unrecovered=False))


async def test_a_key_rejected_between_turns_is_failing_until_a_connection_succeeds(server):
    stt_backend = backend(server)
    await stt_backend.__aenter__()
    try:
        assert stt_backend.healthy and health(stt_backend) == "ok"

        server.api_key = "sk-revoked-0000000000000000abcd"  # the key is revoked while the link is up
        await server.expire_all()  # the reconnect presents it again
        await server.wait_for(lambda: stt_backend.stats()["auth_failures"] == 1)
        assert not stt_backend.healthy and health(stt_backend) == "failing"
        await server.wait_for(lambda: len(server.attempts) == 2, timeout=1)
        assert not stt_backend.healthy  # one reconnect, refused: still failing, nothing fixed it

        server.api_key = KEY  # a new key, and a start that connects with it
        await stt_backend.__aexit__(None, None, None)
        await stt_backend.__aenter__()
        assert stt_backend.healthy and health(stt_backend) == "ok"
        assert stt_backend.stats()["auth_failures"] == 1
    finally:
        await stt_backend.__aexit__(None, None, None)
