"""The follow-up window: after a reply, the next command needs no wake word; silence ends it quietly."""

from __future__ import annotations

import pytest

from magoo_core import Outcome, Reply, State

from probe import in_order, run_engine

# the scripted detector wakes on any frame at RMS 0.2 or more; the scripted STT hears 0.02 and more
WAKE = {"seconds": 0.4, "tone": 660.0, "amplitude": 0.5}
COMMAND = {"seconds": 0.6, "tone": 440.0, "amplitude": 0.1}  # speech, but no wake word


def quiet(seconds: float) -> dict:
    return {"seconds": seconds}


def source(*parts: dict) -> dict:
    return {"backend": "scripted", "realtime": True, "segments": list(parts)}


def conversation(pause: float, *, follow_up: float) -> dict:
    """A wake word and a command, ``pause`` s of quiet (the reply is spoken meanwhile), then a
    second command with no wake word before it, then quiet."""
    return {
        "audio_source": source(quiet(0.3), WAKE, quiet(0.2), COMMAND, quiet(pause), COMMAND, quiet(2.5)),
        "stt": {"backend": "scripted", "transcripts": ["what time is it", "and tomorrow"]},
        "engine": {"follow_up": follow_up},
    }


async def test_a_second_command_in_the_follow_up_window_needs_no_wake_word():
    # the reply (instant player) ends ~1.2 s after the command, the window opens after mute_post
    engine, probe, result = await run_engine(conversation(2.0, follow_up=3.0), turns=2)

    assert [t.outcome for t in result.timelines] == [Outcome.OK, Outcome.OK]
    assert [a["reply"].text for a in probe.of("reply")] == ["You said: what time is it", "You said: and tomorrow"]
    assert [a["turn"] for a in probe.of("wake")] == [1], "only the first turn had a wake word"
    first, second = result.timelines
    assert (first.follow_up, second.follow_up) == (False, True)
    assert second.wake is None and second.started >= first.ended
    turn_two = [(a["old"], a["new"]) for a in probe.of("state_change") if a["turn"] == 2]
    assert turn_two[:3] == [(State.LISTENING, State.AWAKE), (State.AWAKE, State.THINKING), (State.THINKING, State.SPEAKING)]


async def test_without_follow_up_the_second_command_is_not_taken():
    # the control for the test above: the same audio, follow-up off
    engine, probe, result = await run_engine(conversation(2.0, follow_up=0.0))

    assert [t.outcome for t in result.timelines] == [Outcome.OK]
    assert [a["reply"].text for a in probe.of("reply")] == ["You said: what time is it"]


async def test_a_window_with_nothing_said_ends_quietly_and_the_wake_word_works_again():
    audio = source(quiet(0.3), WAKE, quiet(0.2), COMMAND, quiet(3.0), WAKE, quiet(0.2), COMMAND, quiet(2.0))
    engine, probe, result = await run_engine(
        {"audio_source": audio, "engine": {"follow_up": 0.8}, "stt": {"backend": "scripted", "transcripts": ["one", "two"]}},
        turns=3,
    )

    outcomes = [(t.outcome, t.follow_up) for t in result.timelines]
    assert outcomes == [(Outcome.OK, False), (Outcome.NO_SPEECH, True), (Outcome.OK, False)]
    assert result.timelines[1].error == "nothing said in the follow-up window"
    assert probe.of("error") == [] and result.failures == []
    assert [a["turn"] for a in probe.of("wake")] == [1, 3], "the wake word started turn 3"
    assert [a["reply"].text for a in probe.of("reply")] == ["You said: one", "You said: two"]
    assert in_order(probe.names(), ["turn_end", "turn_end", "wake", "turn_end"])


async def test_a_reply_that_says_no_follow_up_opens_no_window():
    from magoo_core import Backend, BackendConfig, hookimpl

    class Final(Backend):
        name = "final"

        class Config(BackendConfig):
            pass

        async def respond(self, transcript):
            return Reply(f"Bye: {transcript.text}", follow_up=False)

    class Plugin:
        @staticmethod
        @hookimpl
        def magoo_register_responders(register):
            register(Final)

    engine, probe, result = await run_engine({**conversation(2.0, follow_up=3.0), "responder": {"backend": "final"}}, Plugin)
    assert [t.outcome for t in result.timelines] == [Outcome.OK]


@pytest.mark.parametrize(
    ("setting", "asks", "outcome", "spoken", "window"),
    [
        (0.0, None, Outcome.OK, True, 0.0),  # off, and the reply leaves it to the profile
        (0.0, True, Outcome.OK, True, 5.0),  # the reply asked a question: a window although off
        (2.0, None, Outcome.OK, True, 2.0),
        (2.0, True, Outcome.OK, True, 2.0),
        (2.0, False, Outcome.OK, True, 0.0),  # the reply says goodbye
        (2.0, None, Outcome.ERROR, True, 0.0),  # a failed turn opens none
        (2.0, True, Outcome.OK, False, 0.0),  # nothing was spoken (transcription only)
    ],
)
def test_the_window_is_the_replys_choice_then_the_profiles(setting, asks, outcome, spoken, window):
    from magoo_core.follow_up import FollowUp
    from magoo_core.profile import EngineSettings
    from magoo_core.types import TurnTimeline

    ended = TurnTimeline(1, 10.0, outcome=outcome, first_audio=12.0 if spoken else None)
    follow_up = FollowUp(turns=None, settings=EngineSettings(follow_up=setting))
    assert follow_up.seconds_after(ended, asks) == window


async def test_the_listening_sound_plays_as_the_follow_up_window_opens():
    overrides = conversation(2.0, follow_up=3.0)
    overrides["engine"]["sounds"] = {"listening": True}
    engine, probe, result = await run_engine(overrides, turns=2)

    starts = [a["text"] for a in probe.of("speak_start")]
    assert starts == ["You said: what time is it", "<sound listening>", "You said: and tomorrow"]
    assert [t.outcome for t in result.timelines] == [Outcome.OK, Outcome.OK]
    assert not engine.muted
