"""Whole turns through the real engine: the test profile's fake devices, ``[responder] openai`` and the
loopback server. A reply spoken as it streams, the built-in tools, a reply cut by barge-in
remembered as cut, a stream that drops mid-reply (microphone unmuted), and the key in no output."""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any


from magoo_core import Outcome
from magoo_core.engine import Engine
from magoo_core.event_recorder import EventRecorder
from magoo_core.testing import build_plugins, make_profile
import magoo_openai
from magoo_openai.loopback import Call, Fault, LoopbackOpenAIServer

from chat_helpers import KEY, VARIABLE

STORY = "Once upon a time there was a puppet. It could talk and nod. Everyone loved it. The end."


def responder_section(server: LoopbackOpenAIServer, **options: Any) -> dict[str, Any]:
    return {"backend": "openai", "base_url": server.base_url, "api_key": {"env": VARIABLE}, "model": "gpt-4o-mini", **options}


class Recorder(EventRecorder):
    """Every event, and whether the microphone was muted when it came."""

    def __init__(self) -> None:
        super().__init__()
        self.engine: Engine | None = None
        self.muted_at: list[tuple[str, bool]] = []

    def _add(self, event, **arguments):
        super()._add(event, **arguments)
        self.muted_at.append((event, self.engine.muted))

    def of(self, event: str) -> list[dict]:
        return [args for name, args in self.events if name == event]


async def run(overrides: dict[str, Any], *, turns: int | None = 1, tmp_path=None) -> tuple[Engine, Recorder, Any]:
    plugins = build_plugins(magoo_openai)
    profile = make_profile(overrides, plugins, base_dir=tmp_path, environ={VARIABLE: KEY})
    engine = Engine(profile, plugins, max_turns=turns)
    recorder = Recorder()
    recorder.engine = engine
    plugins.pm.register(recorder, name="recorder")
    result = await asyncio.wait_for(engine.run(), 60)
    return engine, recorder, result


async def test_a_full_turn_streams_the_reply_into_the_speaker(tmp_path):
    async with LoopbackOpenAIServer(api_key=KEY, replies=[STORY]) as server:
        engine, recorder, result = await run({"responder": responder_section(server)}, tmp_path=tmp_path)

    assert result.failures == [] and [t.outcome for t in result.timelines] == [Outcome.OK]
    replies = [a["reply"] for a in recorder.of("reply")]
    assert replies[-1].final and replies[-1].text == STORY
    assert any(not r.final for r in replies)  # said sentence by sentence as it came
    assert engine.tts.last_instance.calls == 4
    (body,) = server.chat_requests()
    assert body["messages"][-1] == {"role": "user", "content": "what time is it"}
    assert server.requests[0].headers["authorization"] == f"Bearer {KEY}"


async def test_the_built_in_time_tool_answers_through_the_engine(tmp_path):
    def model(body):
        last = body["messages"][-1]
        return [Call("time")] if last["role"] == "user" else f"The clock says: {last['content']}"

    async with LoopbackOpenAIServer(api_key=KEY, replies=model) as server:
        _, recorder, result = await run({"responder": responder_section(server, tools=["time", "say_nothing"])}, tmp_path=tmp_path)

    assert [t.outcome for t in result.timelines] == [Outcome.OK]
    assert recorder.of("reply")[-1]["reply"].text.startswith("The clock says: It is ")
    assert [t["function"]["name"] for t in server.chat_requests()[0]["tools"]] == ["time", "say_nothing"]


async def test_say_nothing_ends_the_turn_without_a_reply(tmp_path):
    async with LoopbackOpenAIServer(api_key=KEY, replies=[[Call("say_nothing")]]) as server:
        engine, _, result = await run({"responder": responder_section(server, tools=["say_nothing"])}, tmp_path=tmp_path)
    (timeline,) = result.timelines
    assert timeline.outcome is Outcome.NO_REPLY and result.failures == []
    assert not engine.player.last_instance.plays


async def test_a_stream_that_drops_mid_reply_ends_the_turn_with_one_line_and_the_microphone_open(tmp_path):
    async with LoopbackOpenAIServer(api_key=KEY, replies=[STORY]) as server:
        server.fail_next(Fault(stream="drop", after=12))
        engine, recorder, result = await run({"responder": responder_section(server)}, tmp_path=tmp_path)

    (timeline,) = result.timelines
    assert timeline.outcome is Outcome.ERROR
    (failure,) = result.failures
    assert failure.role == "responder" and ": the reply broke off after" in failure.message
    assert "\n" not in failure.message
    (played,) = engine.player.last_instance.plays
    assert played  # the first sentence, complete before the drop, was said
    assert engine.tts.last_instance.calls == 1
    assert not engine.muted and dict(recorder.muted_at)["turn_end"] is False
    remembered = engine.responder.last_instance.conversation.messages()
    assert remembered[-1] == {"role": "assistant", "content": "Once upon a time there was a puppet. It could talk and"}


async def test_a_reply_cut_by_barge_in_is_remembered_as_it_was_said(tmp_path):
    source = {
        "backend": "scripted", "realtime": True,
        "segments": [
            {"seconds": 0.3}, {"seconds": 0.4, "tone": 660.0, "amplitude": 0.5}, {"seconds": 0.2},
            {"seconds": 0.6, "tone": 440.0, "amplitude": 0.3}, {"seconds": 2.0},  # wake, command, the reply starts
            {"seconds": 0.4, "tone": 660.0, "amplitude": 0.5}, {"seconds": 0.2},  # the wake word while it speaks
            {"seconds": 0.6, "tone": 440.0, "amplitude": 0.3}, {"seconds": 1.5},
        ],
    }
    overrides = {
        "audio_source": source,
        "engine": {"barge_in": True},
        "stt": {"backend": "scripted", "transcripts": ["tell me a story", "stop"]},
        "tts": {"backend": "tone", "seconds_per_char": 0.05, "max_seconds": 10.0},
        "player": {"backend": "wav", "realtime": True, "path": str(tmp_path / "reply-{n}.wav")},
    }
    async with LoopbackOpenAIServer(api_key=KEY, replies=[STORY, "All right."]) as server:
        overrides["responder"] = responder_section(server)
        engine, recorder, result = await run(overrides, turns=2, tmp_path=tmp_path)

    assert [t.outcome for t in result.timelines] == [Outcome.INTERRUPTED, Outcome.OK]
    second = server.chat_requests()[1]["messages"]
    (cut,) = [m["content"] for m in second if m["role"] == "assistant"]
    assert cut.endswith(" …") and cut != STORY
    said = cut.removesuffix(" …")
    assert said and STORY.startswith(said) and said.endswith(".")  # whole sentences, as they were spoken
    assert second[-1] == {"role": "user", "content": "stop"}


async def test_the_key_is_in_no_log_event_or_failure_when_it_is_rejected(tmp_path, caplog):
    async with LoopbackOpenAIServer(api_key="sk-the-right-one-00000000") as server:
        with caplog.at_level(logging.DEBUG):
            engine, recorder, result = await run({"responder": responder_section(server)}, tmp_path=tmp_path)

    (failure,) = result.failures
    assert f"check {VARIABLE}" in failure.message and not failure.retryable
    outputs = [caplog.text, json.dumps([repr(e) for e in recorder.events]), repr(result), repr(engine.responder.spec)]
    for output in outputs:
        assert KEY not in output and KEY[-12:] not in output


async def test_a_question_opens_the_follow_up_window_and_three_turns_share_the_conversation(tmp_path):
    wake, command = {"seconds": 0.4, "tone": 660.0, "amplitude": 0.5}, {"seconds": 0.6, "tone": 440.0, "amplitude": 0.3}
    source = {"backend": "scripted", "realtime": True,
              "segments": [{"seconds": 0.3}, wake, {"seconds": 0.2}, command, {"seconds": 2.0}, command, {"seconds": 2.0},
                           command, {"seconds": 2.5}]}
    overrides = {
        "audio_source": source,
        "stt": {"backend": "scripted", "transcripts": ["my name is Ada", "yes please", "what is my name"]},
        "engine": {"follow_up": 0.0},  # no window unless a reply asks a question
    }
    replies = ["Hello Ada. Shall I remember that?", "Done. Anything else?", "Your name is Ada."]
    async with LoopbackOpenAIServer(api_key=KEY, replies=replies) as server:
        overrides["responder"] = responder_section(server)
        _, recorder, result = await run(overrides, turns=3, tmp_path=tmp_path)

    assert [t.outcome for t in result.timelines] == [Outcome.OK] * 3
    assert [t.follow_up for t in result.timelines] == [False, True, True]  # no wake word after a question
    assert len(recorder.of("wake")) == 1
    third = server.chat_requests()[2]["messages"]
    assert [m["content"] for m in third if m["role"] == "user"] == ["my name is Ada", "yes please", "what is my name"]


async def test_a_stream_that_stalls_mid_reply_ends_the_turn_after_timeout_with_the_microphone_open(tmp_path):
    async with LoopbackOpenAIServer(api_key=KEY, replies=[STORY]) as server:
        server.fail_next(Fault(stream="stall", after=12))
        # waits the responder's 0.5 s timeout: only time passing shows a stalled stream
        engine, recorder, result = await run({"responder": responder_section(server, timeout=0.5)}, tmp_path=tmp_path)
        server.unstall()

    (timeline,) = result.timelines
    assert timeline.outcome is Outcome.ERROR
    (failure,) = result.failures
    assert failure.role == "responder" and "stalled: nothing more of the reply within 0.5 s after" in failure.message
    assert engine.tts.last_instance.calls == 1  # the first sentence was said
    assert not engine.muted and dict(recorder.muted_at)["turn_end"] is False
