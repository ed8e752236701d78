"""A key the server refuses, or a connection that fails in a way nobody foresaw: said, counted,
never silent, and never showing the key."""

from __future__ import annotations

import asyncio
import logging

import pytest

from magoo_core import BackendError
from magoo_openai_realtime import RealtimeSpeechToText, link

from realtime_helpers import stt


def backend(server, key: str, **options) -> RealtimeSpeechToText:
    section = stt(server, **options)
    section.pop("backend")
    section["api_key"] = key
    return RealtimeSpeechToText(RealtimeSpeechToText.Config(**section))


async def test_a_refused_key_stops_the_start_with_what_to_fix_and_is_counted(server, caplog):
    wrong = "sk-wrong-key-0000000000000000abcd"
    stt_backend = backend(server, wrong)
    with pytest.raises(BackendError) as raised:
        async with stt_backend:
            pass
    assert "OpenAI rejected the API key" in raised.value.message and "OPENAI_API_KEY" in raised.value.message
    assert not raised.value.retryable
    assert stt_backend.stats()["auth_failures"] == 1
    assert wrong not in caplog.text and wrong not in raised.value.message


async def test_a_connect_error_nobody_foresaw_is_logged_retried_and_counted_without_the_key(
    server, caplog, monkeypatch
):
    key = "sk-live-0123456789abcdefWXYZ"

    async def refuses(*args, **kwargs):  # what websockets said of a key with a stray CR
        raise ValueError(f"Illegal header value {('Bearer ' + key + chr(13)).encode()!r}")

    monkeypatch.setattr(link, "connect", refuses)
    caplog.set_level(logging.WARNING, logger="magoo.realtime")
    stt_backend = backend(server, key, connect_timeout=0.5, reconnect_backoff=0.05, reconnect_backoff_max=0.05)
    async with stt_backend:  # starts without a connection and keeps trying, saying so each time
        await asyncio.sleep(0.4)
        stats = stt_backend.stats()
    assert stats["connect_failures"] >= 2
    said = [r.getMessage() for r in caplog.records if "cannot connect to OpenAI Realtime" in r.getMessage()]
    assert len(said) >= 2
    assert "ValueError: Illegal header value" in said[0]
    assert key not in caplog.text and key[-8:] not in caplog.text
