"""Replies in audio and in deltas from any backend (issue 18 §4), and the small contracts of
streamed replies: the closing ``Reply(text="")`` that asks for the follow-up window, and the first
sentence as the ``speak_start`` text."""

from __future__ import annotations

import pytest

from magoo_core import BackendConfig, Outcome, Reply, State, hookimpl
from magoo_core.answer import AUDIO_REPLY
from magoo_core.default_plugins.fakes import spoken_tone

from probe import LOOPING_SOURCE, in_order, run_engine, segments

TEXT = "Here is the answer you asked for."
AUDIO_RESPONDER = {"backend": "echo", "template": TEXT, "audio": True}


def stt_replying(reply_as: str, template: str = TEXT, **more) -> dict:
    """The scripted STT as a conversational backend that replies by itself."""
    return {"stt": {"backend": "scripted", "replies": True, "reply_template": template, "reply_as": reply_as, **more},
            "responder": None}


# ---- audio replies ------------------------------------------------------------------------------


async def test_a_responder_reply_in_audio_is_played_as_is_muted_with_levels_and_the_timeline():
    engine, probe, result = await run_engine({"responder": AUDIO_RESPONDER}, turns=1)

    (timeline,) = result.timelines
    assert timeline.outcome is Outcome.OK, timeline.error
    assert engine.tts.last_instance.calls == 0, "the audio is the reply: the TTS says nothing"
    (reply,) = [a["reply"] for a in probe.of("reply")]
    assert reply.text == TEXT and reply.audio is not None
    assert [a["text"] for a in probe.of("speak_start")] == [TEXT]
    assert probe.muted_during("speak_start") == [True] and all(probe.muted_during("speak_chunk"))
    levels = [a["level"] for a in probe.of("speak_chunk")]
    assert levels and max(levels) > 0.1 and len(set(levels)) > 2, "an actuator has the envelope to follow"
    (played,) = engine.player.last_instance.plays
    assert sum(c.duration for c in played) == pytest.approx(len(TEXT) * 0.03, abs=0.06)
    assert timeline.reply <= timeline.first_audio <= timeline.ended
    states = [(a["old"], a["new"]) for a in probe.of("state_change")]
    assert (State.THINKING, State.SPEAKING) in states
    assert not engine.muted


async def test_an_stt_that_replies_in_audio_without_text_is_played_and_called_an_audio_reply():
    engine, probe, result = await run_engine(stt_replying("audio", template=""), turns=1)

    (timeline,) = result.timelines
    assert timeline.outcome is Outcome.OK, timeline.error
    assert [a["text"] for a in probe.of("speak_start")] == [AUDIO_REPLY]
    assert len(engine.player.last_instance.plays) == 1 and engine.tts.last_instance.calls == 0
    assert in_order(probe.names(), ["transcript", "reply", "speak_start", "speak_end", "turn_end"])
    assert not engine.muted


async def test_audio_that_breaks_off_is_reported_against_the_backend_that_made_it_and_the_next_turn_works():
    engine, probe, result = await run_engine(
        {"audio_source": LOOPING_SOURCE, "responder": {**AUDIO_RESPONDER, "audio_fail": [1]}}, turns=2
    )

    first, second = result.timelines
    assert first.outcome is Outcome.ERROR and "scripted failure in the middle of the audio reply" in first.error
    assert second.outcome is Outcome.OK
    (failure,) = [a["failure"] for a in probe.of("error")]
    assert (failure.role, failure.backend) == ("responder", "echo"), "the responder's audio failed, not the player"
    assert failure.turn == 1
    assert engine.player.failures == 0
    assert probe.of("speak_end")[0]["interrupted"] is True
    assert not engine.muted
    assert [a["role"] for a in probe.of("recovered")] == ["responder"]


async def test_an_stt_whose_audio_reply_breaks_off_is_blamed_and_the_microphone_opens_again():
    engine, probe, result = await run_engine(
        {"audio_source": LOOPING_SOURCE, **stt_replying("audio", audio_fail=[1])}, turns=2
    )

    assert [t.outcome for t in result.timelines] == [Outcome.ERROR, Outcome.OK]
    (failure,) = [a["failure"] for a in probe.of("error")]
    assert (failure.role, failure.backend) == ("stt", "scripted")
    assert not engine.muted


class ClosingAudio:
    """A responder whose audio reply notes when the engine closes it (a backend cancels its
    server's response there)."""

    name = "closing-audio"

    def __init__(self, config) -> None:
        self.config = config
        self.closed: list[int] = []  # chunks given before the engine closed each reply's audio

    class Config(BackendConfig):
        pass

    async def respond(self, transcript):
        return Reply("A reply that goes on and on. " * 5, audio=self._audio())

    async def _audio(self):
        given = 0
        try:
            async for chunk in spoken_tone("A reply that goes on and on. " * 5):
                given += 1
                yield chunk
        finally:
            self.closed.append(given)


class ClosingAudioPlugin:
    @staticmethod
    @hookimpl
    def magoo_register_responders(register):
        register(ClosingAudio)


async def test_barge_in_stops_an_audio_reply_closes_its_audio_and_starts_a_new_turn(tmp_path):
    source = segments(
        (0.3, None), (0.4, 660), (0.2, None), (0.6, 440), (1.4, None),  # wake, command, reply starts
        (0.4, 660), (0.2, None), (0.6, 440), (1.5, None),  # wake again while it plays
    )
    long_reply = "A reply that goes on and on. " * 5  # 4.4 s of sound
    engine, probe, result = await run_engine(
        {
            "audio_source": source,
            "engine": {"barge_in": True},
            "responder": {"backend": "closing-audio"},
            "player": {"backend": "wav", "realtime": True, "path": str(tmp_path / "reply-{n}.wav")},
        },
        ClosingAudioPlugin, turns=2,
    )

    assert [t.outcome for t in result.timelines][0] is Outcome.INTERRUPTED
    every_chunk = len(long_reply) * 0.03 / 0.05
    closed = engine.responder.last_instance.closed
    assert len(closed) == 2 and 0 < closed[0] < every_chunk, "the barged-in audio was closed part-way"
    assert result.timelines[0].error == "barge-in"
    assert len(probe.of("wake")) == 2
    assert probe.of("speak_end")[0]["interrupted"] is True
    assert not engine.muted


# ---- replies in deltas from the STT ---------------------------------------------------------------

STREAMED = "First sentence here. Second one! And the third?"


async def test_an_stt_reply_in_deltas_is_spoken_from_its_first_sentence_like_a_streamed_responder():
    engine, probe, result = await run_engine(stt_replying("deltas", template=STREAMED), turns=1)

    (timeline,) = result.timelines
    assert timeline.outcome is Outcome.OK, timeline.error
    assert engine.tts.last_instance.calls == 3, "one TTS call per sentence"
    replies = [(a["reply"].text, a["reply"].final) for a in probe.of("reply")]
    assert replies[-1] == (STREAMED, True) and all(not final for _, final in replies[:-1])
    assert all(a["reply"].deltas is None for a in probe.of("reply")), "plugins see texts, not the stream"
    assert [a["text"] for a in probe.of("speak_start")] == ["First sentence here."]


async def test_the_speak_start_of_a_streamed_responder_reply_is_its_first_sentence():
    responder = {"backend": "echo", "template": STREAMED, "stream": True}
    engine, probe, result = await run_engine({"responder": responder}, turns=1)

    assert [a["text"] for a in probe.of("speak_start")] == ["First sentence here."]


# ---- the closing Reply of a streamed reply ---------------------------------------------------------

WAKE = {"seconds": 0.4, "tone": 660.0, "amplitude": 0.5}
COMMAND = {"seconds": 0.6, "tone": 440.0, "amplitude": 0.1}  # speech, but no wake word


def _conversation(follow_up: float, responder: dict) -> dict:
    """A wake word and a command, the reply, then a second command with no wake word."""
    parts = [{"seconds": 0.3}, WAKE, {"seconds": 0.2}, COMMAND, {"seconds": 2.0}, COMMAND, {"seconds": 2.5}]
    return {
        "audio_source": {"backend": "scripted", "realtime": True, "segments": parts},
        "stt": {"backend": "scripted", "transcripts": ["what time is it", "and tomorrow"]},
        "engine": {"follow_up": follow_up},
        "responder": responder,
    }


@pytest.mark.parametrize(("asks", "profile_window", "turns"), [(True, 0.0, 2), (False, 3.0, 1)])
async def test_a_streamed_reply_closing_with_a_reply_decides_the_follow_up_window(asks, profile_window, turns):
    responder = {"backend": "echo", "stream": True, "follow_up": asks}
    engine, probe, result = await run_engine(_conversation(profile_window, responder), turns=2)

    assert [t.follow_up for t in result.timelines] == [False, True][:turns]
    assert all(t.outcome is Outcome.OK for t in result.timelines)
    final = [a["reply"] for a in probe.of("reply") if a["reply"].final]
    assert final[0].text == "You said: what time is it" and final[0].follow_up is asks


async def test_anything_after_the_closing_reply_fails_the_responder_not_the_tts():
    from magoo_core.reply_stream import sentences
    from magoo_core.types import Reply

    async def deltas():
        yield "Hello there. "
        yield Reply("", follow_up=True)
        yield "more"

    closing: list[Reply] = []
    said = []
    with pytest.raises(TypeError, match="last item"):
        async for sentence in sentences(deltas(), max_chars=100, clean=False, closing=closing):
            said.append(sentence)
    assert said == ["Hello there."] and closing[0].follow_up is True

    async def with_text():
        yield Reply("text in it")

    with pytest.raises(TypeError, match='Reply\\(text=""\\)'):
        async for _ in sentences(with_text(), max_chars=100, clean=False, closing=[]):
            pass


async def test_the_event_log_writes_an_audio_reply_without_its_stream(tmp_path):
    import json

    path = tmp_path / "events.jsonl"
    engine, probe, result = await run_engine(
        {"responder": AUDIO_RESPONDER, "actuators": [{"backend": "log", "path": str(path), "events": ["reply"]}]}, turns=1
    )

    (line,) = [json.loads(line) for line in path.read_text().splitlines()]
    assert line["reply"]["text"] == TEXT and line["reply"]["audio"] == "<stream>"
