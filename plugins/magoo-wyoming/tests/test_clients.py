"""The Wyoming client backends against the scripted loopback server: requests, streaming, faults."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from wyoming.event import async_write_event

from magoo_core import BackendError
from magoo_core.types import Reply, SpeechActivity, Transcript
from magoo_wyoming.clients.responder import WyomingResponder
from magoo_wyoming.clients.stt import WyomingSpeechToText
from magoo_wyoming.clients.tts import WyomingTextToSpeech
from magoo_wyoming.clients.wake import WyomingWakeDetector

from clients_helpers import PAUSED, QUESTION, chunks, loud, pcm, quiet, stream
from wyoming_servers import Script, ScriptedServer


def finals(items: list[Any]) -> list[str]:
    return [item.text for item in items if isinstance(item, Transcript) and item.final]


async def transcribe(uri: str, audio, **options: Any) -> list[Any]:
    async with WyomingSpeechToText(WyomingSpeechToText.Config(uri=uri, **options)) as stt:
        return [item async for item in stt.transcribe(audio)]


# ---- [stt] wyoming --------------------------------------------------------------------------


async def test_an_utterance_is_streamed_and_its_transcript_is_final():
    async with ScriptedServer(Script(transcripts=["what time is it"])) as server:
        items = await transcribe(server.uri, stream(quiet(0.5) + pcm(QUESTION) + quiet(1.5)), language="en", model="tiny")
    assert finals(items) == ["what time is it"]
    kinds = [type(item).__name__ for item in items]
    assert kinds == ["SpeechActivity", "SpeechActivity", "Transcript"]
    assert [item.started for item in items if isinstance(item, SpeechActivity)] == [True, False]
    # one connection for describe, one for the utterance: transcribe, audio-start, chunks, audio-stop
    utterance = server.received[server.received.index("transcribe"):]
    assert utterance[:2] == ["transcribe", "audio-start"] and utterance[-1] == "audio-stop"
    assert set(utterance[2:-1]) == {"audio-chunk"}
    # magoo ended the utterance itself: the trailing quiet second is not all sent
    assert server.audio_bytes < len(quiet(0.5) + pcm(QUESTION) + quiet(1.5))


async def test_a_streaming_server_gives_partials_before_the_final_transcript():
    async with ScriptedServer(Script(transcripts=["set a timer for five minutes"], stream_transcripts=True)) as server:
        items = await transcribe(server.uri, stream(quiet(0.5) + pcm(PAUSED) + quiet(1.5)))
    partials = [item.text for item in items if isinstance(item, Transcript) and not item.final]
    assert partials[-1] == "set a timer for five minutes" and partials[0] == "set"
    assert finals(items) == ["set a timer for five minutes"]


async def test_continuous_audio_gives_one_transcript_per_utterance():
    audio = quiet(0.5) + pcm(QUESTION) + quiet(1.5) + pcm(QUESTION) + quiet(1.5)
    async with ScriptedServer(Script(transcripts=["first", "second"])) as server:
        items = await transcribe(server.uri, stream(audio, continuous=True))
    assert finals(items) == ["first", "second"]
    assert server.received.count("transcribe") == 2


async def test_nobody_speaking_after_the_wake_word_ends_with_an_empty_transcript():
    async with ScriptedServer() as server:
        items = await transcribe(server.uri, stream(quiet(3.0)), no_speech=1.0)
    assert finals(items) == [""]
    assert "transcribe" not in server.received  # nothing was sent for silence


@pytest.mark.parametrize(
    ("fault", "says"),
    [
        ("close_mid_transcript", "closed the connection while magoo waited for the transcript"),
        ("garbage", "an event header that is not JSON"),
        ("oversized", "payload_length 2000000000"),
        ("error", "answered with an error: model crashed"),
    ],
)
async def test_a_broken_server_mid_transcript_is_one_backend_error(fault, says):
    async with ScriptedServer(Script(fault=fault)) as server:
        with pytest.raises(BackendError) as caught:
            await transcribe(server.uri, stream(quiet(0.5) + pcm(QUESTION) + quiet(1.5)))
        uri = server.uri
    assert says in caught.value.message
    # one line, naming the server; the engine puts "[stt] wyoming: " in front itself
    assert "\n" not in caught.value.message and caught.value.message.startswith(uri)


async def test_a_silent_server_times_out_with_one_line():
    async with ScriptedServer(Script(fault="silent")) as server:
        with pytest.raises(BackendError, match="sent no transcript within 0.5 s"):
            await transcribe(server.uri, stream(quiet(0.5) + pcm(QUESTION) + quiet(1.5)), transcript_timeout=0.5)


async def test_no_server_there_fails_at_start_with_the_address():
    async with ScriptedServer() as server:
        uri = server.uri
    with pytest.raises(BackendError, match=r"cannot connect to tcp://127\.0\.0\.1:\d+"):
        await transcribe(uri, stream(quiet(0.1)))


async def test_a_model_the_server_lacks_fails_at_start_naming_what_it_has():
    async with ScriptedServer() as server:
        with pytest.raises(BackendError, match=r"no speech-to-text program with model 'large'.*stt scripted-asr \[tiny\]") as caught:
            await transcribe(server.uri, stream(quiet(0.1)), model="large")
    assert caught.value.retryable is False


# ---- [tts] wyoming ---------------------------------------------------------------------------


async def test_speech_is_yielded_in_the_servers_format():
    async with ScriptedServer() as server:
        async with WyomingTextToSpeech(WyomingTextToSpeech.Config(uri=server.uri, sample_rate=16000, voice="robot")) as tts:
            pieces = [piece async for piece in tts.synthesize("Hello there.")]
    assert [p.sample_rate for p in pieces] == [16000, 16000] and all(p.pcm for p in pieces)
    assert tts.output_format.sample_rate == 16000


async def test_the_rate_is_learned_at_start_when_the_profile_leaves_it_out():
    async with ScriptedServer(Script(tts_rate=24000)) as server:
        async with WyomingTextToSpeech(WyomingTextToSpeech.Config(uri=server.uri, sample_rate=None)) as tts:
            assert tts.output_format.sample_rate == 24000
    assert WyomingTextToSpeech.output_kind(WyomingTextToSpeech.Config(sample_rate=None)) is None


@pytest.mark.parametrize(("fault", "says"), [("close_mid_tts", "closed the connection"), ("garbage", "not JSON")])
async def test_a_server_that_breaks_mid_speech_is_one_backend_error_after_the_audio_so_far(fault, says):
    async with ScriptedServer(Script(fault=fault)) as server:
        async with WyomingTextToSpeech(WyomingTextToSpeech.Config(uri=server.uri)) as tts:
            got = []
            with pytest.raises(BackendError, match=says):
                async for piece in tts.synthesize("Hello there."):
                    got.append(piece)
    assert len(got) == 1
    assert tts.stats()["failures"] == 1


# ---- [responder] wyoming ---------------------------------------------------------------------


async def test_a_handle_server_answers_in_words():
    async with ScriptedServer(Script(answer="It is noon.")) as server:
        async with WyomingResponder(WyomingResponder.Config(uri=server.uri)) as responder:
            reply = await responder.respond(Transcript("what time is it"))
            nothing = await responder.respond(Transcript("   "))
    assert reply == Reply("It is noon.") and nothing is None


async def test_a_streaming_handle_server_answers_piece_by_piece():
    async with ScriptedServer(Script(answer="It is noon. Have lunch.", stream_answer=True)) as server:
        async with WyomingResponder(WyomingResponder.Config(uri=server.uri)) as responder:
            answer = await responder.respond(Transcript("what time is it"))
            pieces = [piece async for piece in answer]
    assert "".join(pieces).strip() == "It is noon. Have lunch." and len(pieces) == 5


async def test_a_responder_whose_server_breaks_raises_one_line():
    async with ScriptedServer(Script(fault="garbage")) as server:
        async with WyomingResponder(WyomingResponder.Config(uri=server.uri)) as responder:
            with pytest.raises(BackendError, match=r"^tcp://127\.0\.0\.1:\d+ sent an event header that is not JSON: .* while magoo waited for an answer$"):
                await responder.respond(Transcript("hello"))


# ---- [wake] wyoming --------------------------------------------------------------------------


async def score(detector: WyomingWakeDetector, audio: bytes, *, pace: float = 0.0) -> list[Any]:
    """Feed ``audio`` frame by frame as the wake worker does (on a thread), yielding to the loop
    between frames as a live source would; then wait for detections in flight."""
    events = []
    for frame in chunks(audio, 2560):
        events.append(await asyncio.to_thread(detector.process, frame))
        await asyncio.sleep(pace)
    for _ in range(50):  # detections travel back over the socket: poll as the worker does, bounded
        await asyncio.sleep(0.02)
        events.append(await asyncio.to_thread(detector.process, chunks(quiet(0.08))[0]))
    return [event for event in events if event is not None]


async def test_the_servers_detection_comes_back_from_process_anchored_on_the_loud_frame():
    async with ScriptedServer() as server:
        async with WyomingWakeDetector(WyomingWakeDetector.Config(uri=server.uri, names=["ok_nabu"])) as detector:
            frames = chunks(quiet(0.8) + loud(0.4) + quiet(0.8))
            events = []
            for frame in frames:
                events.append(await asyncio.to_thread(detector.process, frame))
                await asyncio.sleep(0.005)
            for _ in range(50):
                await asyncio.sleep(0.02)
                events.append(await asyncio.to_thread(detector.process, chunks(quiet(0.08))[0]))
    detections = [event for event in events if event is not None]
    assert [d.label for d in detections] == ["ok_nabu"]
    loud_frame = frames[10]  # 0.8 s of quiet is 10 frames of 80 ms
    assert detections[0].timestamp == loud_frame.timestamp
    assert server.received[:4] == ["describe", "detect", "audio-start", "audio-chunk"]


async def test_reset_starts_a_fresh_stream_and_drops_detections_in_flight():
    async with ScriptedServer() as server:
        async with WyomingWakeDetector(WyomingWakeDetector.Config(uri=server.uri)) as detector:
            first = await score(detector, quiet(0.4) + loud(0.2))
            detector.reset()
            second = await score(detector, quiet(0.4) + loud(0.2))
    assert len(first) == 1 and len(second) == 1
    assert server.received.count("detect") == 2  # one connection per stream


async def test_a_wake_server_that_goes_away_fails_the_next_process():
    server = ScriptedServer()
    await server.__aenter__()
    async with WyomingWakeDetector(WyomingWakeDetector.Config(uri=server.uri)) as detector:
        await score(detector, quiet(0.2))
        await server.__aexit__(None, None, None)
        with pytest.raises(BackendError, match=r"^(tcp://127\.0\.0\.1:\d+ closed|the connection to .* broke|cannot connect)"):
            for _ in range(100):  # the loss is seen by the reader task, then raised by process()
                await asyncio.sleep(0.02)
                detector.process(chunks(quiet(0.08))[0])


async def test_a_wake_server_that_stops_reading_fails_instead_of_queueing_without_end():
    """A server that answers describe, then never reads again: once the socket's buffers are full,
    frames wait in the detector's queue, and past MAX_BACKLOG of them process() fails (the
    engine restarts the detector) rather than holding the microphone's audio without limit."""
    from magoo_wyoming.clients.wake import MAX_BACKLOG

    described = asyncio.Event()

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if described.is_set():
            await asyncio.sleep(3600)  # the detect stream: never read
        await reader.readline()  # describe
        await async_write_event(ScriptedServer().info().event(), writer)
        described.set()

    listener = await asyncio.start_server(serve, "127.0.0.1", 0)
    uri = "tcp://127.0.0.1:%d" % listener.sockets[0].getsockname()[1]
    frame = chunks(quiet(0.08))[0]
    async with listener:
        async with WyomingWakeDetector(WyomingWakeDetector.Config(uri=uri)) as detector:
            with pytest.raises(BackendError, match=f"does not keep up with the microphone \\({MAX_BACKLOG} frames waiting\\)"):
                for _ in range(20_000):  # about 50 MB: more than any socket buffer holds
                    detector.process(frame)
                    await asyncio.sleep(0)
            assert detector._outbox.qsize() <= MAX_BACKLOG + 2
        listener.close()


async def test_a_server_that_ends_utterances_itself_is_followed_utterance_after_utterance():
    """A server with its own VAD sends the transcript before magoo's end of speech: that ends the
    utterance, and on a continuous stream the next one is heard as usual."""
    audio = quiet(0.5) + pcm(QUESTION) + quiet(1.5) + pcm(QUESTION) + quiet(1.5)
    async with ScriptedServer(Script(transcripts=["first", "second"], early_transcript_after=8)) as server:
        items = await transcribe(server.uri, stream(audio, continuous=True))
    assert finals(items) == ["first", "second"]
    assert "audio-stop" not in server.received  # magoo did not have to end either
    starts = [item.started for item in items if isinstance(item, SpeechActivity)]
    assert starts == [True, False, True, False]


def test_wake_model_names_match_across_server_versions():
    """wyoming-openwakeword 1.x names its models with a version ("hey_jarvis_v0.1"), 2.x without:
    either fits a profile's "hey_jarvis", and a detection carries the profile's name."""
    from magoo_wyoming.clients.wake import model_key

    assert model_key("hey_jarvis_v0.1") == model_key("Hey Jarvis") == model_key("hey_jarvis") == "hey_jarvis"
    detector = WyomingWakeDetector(WyomingWakeDetector.Config(names=["hey_jarvis"]))
    assert detector.label("hey_jarvis_v0.1") == "hey_jarvis" and detector.label("alexa") == "alexa"
