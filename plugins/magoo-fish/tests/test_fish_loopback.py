"""The loopback Fish server on its own, driven by the real SDK and by plain httpx (no magoo client)."""

from __future__ import annotations

import asyncio
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import wave

import httpx
import numpy as np
import ormsgpack
import pytest
from fish_audio_sdk import HttpCodeErr, Prosody, Session, TTSRequest

from magoo_core.testing.signals import best_match
from magoo_fish.loopback import audio as loopback_audio
from magoo_fish.loopback import LoopbackFishServer

from fish_helpers import KEY, SENTENCE, unused_port

LONG = "The quick brown fox jumps over the lazy dog, and then it runs far away into the forest."


async def sdk_tts(server: LoopbackFishServer, request: TTSRequest, model: str = "s2-pro", key: str = KEY) -> bytes:
    async with Session(key, base_url=server.base_url) as session:
        return b"".join([chunk async for chunk in session.tts.awaitable(request, backend=model)])


def msgpack_post(client: httpx.AsyncClient, server: LoopbackFishServer, body: dict, **headers: str):
    return client.stream(
        "POST", f"{server.base_url}/v1/tts", content=ormsgpack.packb(body),
        headers={"authorization": f"Bearer {KEY}", "content-type": "application/msgpack", "model": "s2-pro", **headers},
    )


def decode_mp3(data: bytes) -> np.ndarray:
    """PCM samples of an MP3, by mpg123 or sox; skips the test when neither is installed."""
    if shutil.which("mpg123"):
        command = ["mpg123", "-q", "-s", "-"]
    elif shutil.which("sox"):
        command = ["sox", "-q", "-t", "mp3", "-", "-t", "raw", "-e", "signed", "-b", "16", "-"]
    else:
        pytest.skip("neither mpg123 nor sox (with MP3 support) is installed to decode MP3")
    result = subprocess.run(command, input=data, capture_output=True, check=True, timeout=30)
    return np.frombuffer(result.stdout, dtype="<i2")


# ---- the request the real SDK sends -------------------------------------------------------------


async def test_the_sdk_request_is_recorded_with_bearer_model_msgpack_and_every_field(server):
    request = TTSRequest(text=SENTENCE, reference_id="voice-abc", prosody=Prosody(speed=1.25, volume=-3.0))
    audio = await sdk_tts(server, request, model="s1")
    (record,) = server.requests
    assert record.method == "POST" and record.path == "/v1/tts"
    assert record.headers["authorization"] == f"Bearer {KEY}"
    assert record.headers["content-type"] == "application/msgpack"
    assert record.headers["model"] == "s1"
    assert record.headers["user-agent"] == "fish-audio/python/legacy"
    assert record.body == request.model_dump()  # every field, None as nil
    assert set(record.body) == set(TTSRequest.model_fields)
    assert record.text == SENTENCE
    assert record.status == 200 and record.bytes_sent == len(audio) > 0
    assert record.received_at <= record.first_byte_at <= record.finished_at
    assert not record.aborted and not record.dropped


async def test_a_json_body_is_accepted_too(server):
    async with httpx.AsyncClient() as client:
        response = await client.post(
            f"{server.base_url}/v1/tts", json={"text": "Hi there.", "format": "pcm"},
            headers={"authorization": f"Bearer {KEY}", "model": "s2-pro"},
        )
    assert response.status_code == 200
    assert response.headers["transfer-encoding"] == "chunked"
    assert response.content == (await loopback_audio.encode("Hi there.", "pcm")).data


# ---- real audio -----------------------------------------------------------------------------------


async def test_mp3_really_decodes_to_espeaks_speech(server):
    data = await sdk_tts(server, TTSRequest(text=LONG))
    assert data[:2] in (b"\xff\xfb", b"\xff\xf3", b"ID")  # an MPEG audio frame sync (or a tag)
    decoded = decode_mp3(data)
    reference = np.frombuffer((await loopback_audio.encode(LONG, "pcm")).data, dtype="<i2")  # 44.1 kHz
    assert abs(len(decoded) - len(reference)) <= 0.05 * len(reference)
    _, correlation = best_match(decoded, reference) if len(decoded) >= len(reference) else best_match(reference, decoded)
    assert correlation > 0.8


async def test_mp3_at_32_khz_and_64_kbits(server):
    data = await sdk_tts(server, TTSRequest(text=LONG, sample_rate=32000, mp3_bitrate=64))
    decoded = decode_mp3(data)
    reference = np.frombuffer((await loopback_audio.encode(LONG, "pcm", 32000)).data, dtype="<i2")
    assert abs(len(decoded) - len(reference)) <= 0.05 * len(reference)
    assert len(data) < len((await loopback_audio.encode(LONG, "mp3", 32000, 128)).data)


async def test_wav_is_a_16_bit_mono_file_at_the_asked_rate(server):
    data = await sdk_tts(server, TTSRequest(text=SENTENCE, format="wav", sample_rate=16000))
    with wave.open(io.BytesIO(data)) as wav:
        assert (wav.getframerate(), wav.getnchannels(), wav.getsampwidth()) == (16000, 1, 2)
        pcm = wav.readframes(wav.getnframes())
    espeak = await loopback_audio.speak(SENTENCE)
    assert len(pcm) / 2 / 16000 == pytest.approx(espeak.duration, rel=0.01)


async def test_pcm_is_raw_samples_at_44100_by_default(server):
    data = await sdk_tts(server, TTSRequest(text=SENTENCE, format="pcm"))
    espeak = await loopback_audio.speak(SENTENCE)
    assert len(data) / 2 / 44100 == pytest.approx(espeak.duration, rel=0.01)


async def test_opus_is_ogg_opus_when_opusenc_is_installed(server):
    if shutil.which("opusenc") is None:
        pytest.skip("opusenc is not installed (apt install opus-tools): the loopback answers opus with HTTP 400")
    async with httpx.AsyncClient() as client, msgpack_post(client, server, {"text": SENTENCE, "format": "opus"}) as response:
        data = await response.aread()
    assert response.status_code == 200 and response.headers["content-type"] == "audio/ogg"
    assert data.startswith(b"OggS") and b"OpusHead" in data[:100]


async def test_opus_without_opusenc_is_a_400_that_says_so(server, monkeypatch):
    real_which = shutil.which
    monkeypatch.setattr(loopback_audio.shutil, "which", lambda name: None if name == "opusenc" else real_which(name))
    async with httpx.AsyncClient() as client, msgpack_post(client, server, {"text": "Opus nowhere.", "format": "opus"}) as response:
        body = json.loads(await response.aread())
    assert response.status_code == 400
    assert "opusenc is not installed" in body["message"] and body["status"] == 400


# ---- what the server refuses --------------------------------------------------------------------


async def test_a_wrong_key_gets_401_with_fishs_json_body(server):
    async with httpx.AsyncClient() as client:
        response = await client.post(
            f"{server.base_url}/v1/tts", content=ormsgpack.packb({"text": "hi"}),
            headers={"authorization": "Bearer wrong", "content-type": "application/msgpack", "model": "s2-pro"},
        )
    assert response.status_code == 401
    assert response.json() == {"status": 401, "message": "Invalid API key", "reason": None}
    with pytest.raises(HttpCodeErr) as raised:
        await sdk_tts(server, TTSRequest(text="hi"), key="wrong")
    assert (raised.value.status, raised.value.message) == (401, "Unauthorized")  # the SDK drops the body
    assert [r.status for r in server.requests] == [401, 401]
    assert server.protocol_errors == []


@pytest.mark.parametrize(
    ("body", "headers", "status", "words"),
    [
        ({"text": "hi"}, {"model": None}, 400, "model header"),
        ({"text": ""}, {}, 422, "text"),
        ({"text": "hi", "chunk_length": 50}, {}, 422, "chunk_length"),
        ({"text": "hi", "format": "flac"}, {}, 422, "format"),
        ({"text": "hi", "latency": "fast"}, {}, 422, "latency"),
        ({"text": "hi", "mp3_bitrate": 96}, {}, 422, "mp3_bitrate"),
        ({"text": "hi", "sample_rate": 22050, "format": "wav"}, {}, 422, "sample_rate"),
        ({"text": "hi", "sample_rate": 16000}, {}, 422, "sample_rate for mp3"),
        ({"text": "hi", "prosody": {"speed": 3.0}}, {}, 422, "prosody.speed"),
        ({"text": "hi", "top_p": 1.5}, {}, 422, "top_p"),
    ],
)
async def test_invalid_requests_are_refused_and_recorded(server, body, headers, status, words):
    headers = {"authorization": f"Bearer {KEY}", "content-type": "application/msgpack", "model": "s2-pro", **headers}
    async with httpx.AsyncClient() as client:
        response = await client.post(
            f"{server.base_url}/v1/tts", content=ormsgpack.packb(body), headers={k: v for k, v in headers.items() if v}
        )
    assert response.status_code == status
    assert words in response.json()["message"]
    assert len(server.protocol_errors) == 1 and words in server.protocol_errors[0]
    server.protocol_errors.clear()


async def test_other_paths_and_methods_are_404(server):
    async with httpx.AsyncClient(base_url=server.base_url) as client:
        assert (await client.get("/v1/tts")).status_code == 404
        assert (await client.post("/v1/asr", content=b"")).status_code == 404
        assert (await client.post("/v1/tts", content=b"\xc1", headers={"content-type": "application/msgpack",
                                  "authorization": f"Bearer {KEY}", "model": "s1"})).status_code == 400
    assert len(server.protocol_errors) == 3
    server.protocol_errors.clear()


async def test_one_connection_serves_request_after_request(server):
    async with httpx.AsyncClient() as client:
        for text in ("One.", "Two.", "Three."):
            async with msgpack_post(client, server, {"text": text, "format": "pcm"}) as response:
                assert response.status_code == 200
                await response.aread()
    assert [r.text for r in server.requests] == ["One.", "Two.", "Three."]


# ---- scripted faults ------------------------------------------------------------------------------


async def test_fail_next_answers_with_realistic_errors_then_recovers(server):
    server.fail_next(503, times=2, retry_after=1.5)
    server.fail_next(402)
    server.fail_next(429, message="slow down please")
    answers = []
    async with httpx.AsyncClient() as client:
        for _ in range(5):
            async with msgpack_post(client, server, {"text": "Hi."}) as response:
                await response.aread()
                answers.append((response.status_code, response.headers.get("retry-after"),
                                response.json()["message"] if response.status_code != 200 else None))
    assert answers == [
        (503, "1.5", "high load"), (503, "1.5", "high load"), (402, None, "No payment"),
        (429, None, "slow down please"), (200, None, None),
    ]
    assert [r.status for r in server.requests] == [503, 503, 402, 429, 200]


async def test_drop_next_cuts_the_body_after_exactly_that_many_bytes(server):
    server.drop_next(after_bytes=5000)
    received = bytearray()
    async with httpx.AsyncClient() as client, msgpack_post(client, server, {"text": LONG}) as response:
        with pytest.raises(httpx.RemoteProtocolError):
            async for chunk in response.aiter_bytes():
                received += chunk
    assert len(received) == 5000
    (record,) = server.requests
    assert record.dropped and record.bytes_sent == 5000


async def test_delay_next_holds_only_the_next_request(server):
    # The fast request must make its whole round trip (espeak-ng and the MP3 encoder included)
    # within the delay, also on a busy machine: a client made up front and a delay with margin.
    server.delay_next(2.0)

    async def fetch(client: httpx.AsyncClient, text: str) -> float:
        async with msgpack_post(client, server, {"text": text}) as response:
            await response.aread()
        return time.monotonic()

    async with httpx.AsyncClient() as first, httpx.AsyncClient() as second:
        slow = asyncio.create_task(fetch(first, "Slow one."))
        await server.wait_for(lambda: len(server.requests) == 1)
        fast_done = await fetch(second, "Fast one.")
        slow_done = await slow
    assert fast_done < slow_done  # the second request overtook the delayed first one
    slow_record, fast_record = server.requests
    assert fast_record.first_byte_at < slow_record.first_byte_at


async def test_slow_chunks_stream_the_body_piece_by_piece(server):
    server.slow_chunks(0.03)
    first_piece_at = None
    async with httpx.AsyncClient() as client, msgpack_post(client, server, {"text": LONG}) as response:
        async for _ in response.aiter_raw():
            first_piece_at = first_piece_at or time.monotonic()
    (record,) = server.requests
    assert record.bytes_sent > 3 * server.chunk_bytes
    assert first_piece_at < record.finished_at  # audio arrived while the server was still sending
    server.slow_chunks(None)


async def test_stall_next_sends_headers_then_nothing_until_the_client_leaves(server):
    # Encoded before the request (the encoder's cache is the process's), so the headers come at once
    # and only the body outlasts the 0.3 s read timeout, however busy espeak-ng and lame would be.
    await loopback_audio.encode("Stalled.", "mp3")
    server.stall_next()
    async with httpx.AsyncClient(timeout=httpx.Timeout(5.0, read=0.3)) as client:
        async with msgpack_post(client, server, {"text": "Stalled."}) as response:
            assert response.status_code == 200
            with pytest.raises(httpx.ReadTimeout):
                await response.aread()
    await server.wait_for(lambda: server.requests[0].aborted)
    assert server.requests[0].bytes_sent == 0


async def test_a_client_that_leaves_mid_body_is_recorded_as_aborted(server):
    server.slow_chunks(0.05)
    async with httpx.AsyncClient() as client, msgpack_post(client, server, {"text": LONG}) as response:
        async for _ in response.aiter_raw():
            break
    await server.wait_for(lambda: server.requests[0].aborted)
    assert server.requests[0].bytes_sent < len((await loopback_audio.encode(LONG, "mp3")).data)


async def test_realtime_factor_paces_the_audio_by_its_duration():
    async with LoopbackFishServer(KEY, realtime_factor=8.0, chunk_bytes=2048) as server:
        arrivals = []
        async with httpx.AsyncClient() as client, msgpack_post(client, server, {"text": LONG, "format": "pcm"}) as response:
            async for _ in response.aiter_raw():
                arrivals.append(time.monotonic())
        (record,) = server.requests
        duration = (await loopback_audio.encode(LONG, "pcm")).duration
        # the server waits for each piece's due time, so the body cannot have gone out faster
        sent_for = record.finished_at - record.first_byte_at
        assert sent_for >= duration / 8.0 * (1 - 2048 / record.bytes_sent) - 0.01
        assert arrivals[0] < record.finished_at


async def test_first_byte_delay_applies_to_every_request():
    async with LoopbackFishServer(KEY, first_byte_delay=0.2) as server:
        async with httpx.AsyncClient() as client:
            for text in ("A.", "B."):
                async with msgpack_post(client, server, {"text": text}) as response:
                    await response.aread()
        assert all(r.first_byte_at - r.received_at >= 0.19 for r in server.requests)  # a lower bound: it slept


# ---- command line -------------------------------------------------------------------------------


def test_the_console_script_serves_until_interrupted():
    port = unused_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "magoo_fish.loopback", "--port", str(port), "--api-key", "cli-key",
         "--first-byte-delay", "0.01", "--realtime-factor", "50"],
        stderr=subprocess.PIPE, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                response = httpx.post(
                    f"http://127.0.0.1:{port}/v1/tts", json={"text": "Hello.", "format": "pcm"},
                    headers={"authorization": "Bearer cli-key", "model": "s1"}, timeout=10,
                )
                break
            except httpx.ConnectError:
                assert process.poll() is None and time.monotonic() < deadline, "the loopback server did not start"
                time.sleep(0.05)
        assert response.status_code == 200 and len(response.content) > 1000
    finally:
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=10)
    assert process.returncode == 0
    assert f"http://127.0.0.1:{port}" in stderr and "Traceback" not in stderr
    assert "cli-key" not in stderr
