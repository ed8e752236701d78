"""``magoo doctor`` rows of the Wyoming clients, from each server's describe."""

from __future__ import annotations

import asyncio
import threading

import pytest

from magoo_core.doctor.rows import Result
from magoo_wyoming.clients.responder import WyomingResponder
from magoo_wyoming.clients.stt import WyomingSpeechToText
from magoo_wyoming.clients.wake import WyomingWakeDetector

from wyoming_servers import Script, ScriptedServer, free_port


@pytest.fixture
def server():
    """doctor() runs its own event loop (the doctor calls it in a thread): the server gets one in a thread."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    scripted = ScriptedServer(Script(stream_transcripts=True))
    asyncio.run_coroutine_threadsafe(scripted.__aenter__(), loop).result(10)
    yield scripted
    asyncio.run_coroutine_threadsafe(scripted.__aexit__(None, None, None), loop).result(10)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(10)
    loop.close()


def test_rows_say_program_version_streaming_and_languages(server):
    [stt] = WyomingSpeechToText.doctor(WyomingSpeechToText.Config(uri=server.uri, model="tiny", language="de"), "[stt]")
    assert stt.result is Result.OK
    assert stt.found.startswith(server.uri.removeprefix("tcp://").join(["tcp://", ": scripted-asr 1.0"]))
    assert "streams transcripts" in stt.found and "needs magoo to end utterances" in stt.found and "languages de, en" in stt.found
    [wake] = WyomingWakeDetector.doctor(WyomingWakeDetector.Config(uri=server.uri, names=["ok_nabu"]), "[wake]")
    [responder] = WyomingResponder.doctor(WyomingResponder.Config(uri=server.uri), "[responder]")
    assert (wake.result, responder.result) == (Result.OK, Result.OK)
    assert "scripted-wake" in wake.found and "scripted-handle" in responder.found


def test_a_missing_model_or_intent_program_fails_with_what_the_server_has(server):
    [row] = WyomingWakeDetector.doctor(WyomingWakeDetector.Config(uri=server.uri, names=["hey_mycroft"]), "[wake]")
    assert row.result is Result.FAIL and "no wake word program with hey_mycroft" in row.found and "wake scripted-wake [ok_nabu]" in row.found
    assert row.fix.startswith("set the model")
    [row] = WyomingResponder.doctor(WyomingResponder.Config(uri=server.uri, mode="intent"), "[responder]")
    assert row.result is Result.FAIL and "no intent program" in row.found


def test_no_server_fails_with_the_address_and_what_to_do():
    uri = f"tcp://127.0.0.1:{free_port()}"
    [row] = WyomingSpeechToText.doctor(WyomingSpeechToText.Config(uri=uri), "[stt]")
    assert row.result is Result.FAIL and f"cannot connect to {uri}" in row.found and row.fix == "start the server, or fix uri"
