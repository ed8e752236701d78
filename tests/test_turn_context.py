"""The responder learns the turn's context: which wake word started it, its number, a follow-up."""

from __future__ import annotations

from magoo_core import Outcome, Reply, Transcript, TurnContext
from magoo_core.roles import takes_context

from probe import run_engine

WAKE = {"seconds": 0.4, "tone": 660.0, "amplitude": 0.5}
COMMAND = {"seconds": 0.6, "tone": 440.0, "amplitude": 0.1}  # speech, but no wake word
TEMPLATE = "{wake}, turn {turn}, follow-up {follow_up}: {text}"


def test_only_a_respond_with_a_context_parameter_gets_it():
    class Old:
        async def respond(self, transcript: Transcript) -> Reply: ...

    class New:
        async def respond(self, transcript: Transcript, context: TurnContext | None = None) -> Reply: ...

    class KeywordOnly:
        async def respond(self, transcript: Transcript, *, context: TurnContext) -> Reply: ...

    class Forwards:
        async def respond(self, transcript: Transcript, **options: object) -> Reply: ...

    assert [takes_context(cls()) for cls in (Old, New, KeywordOnly, Forwards)] == [False, True, True, False]


async def test_the_responder_hears_the_wake_word_the_turn_number_and_a_follow_up():
    profile = {
        "audio_source": {
            "backend": "scripted",
            "realtime": True,
            "segments": [{"seconds": 0.3}, WAKE, {"seconds": 0.2}, COMMAND, {"seconds": 2.0}, COMMAND, {"seconds": 2.5}],
        },
        "stt": {"backend": "scripted", "transcripts": ["what time is it", "and tomorrow"]},
        "responder": {"backend": "echo", "template": TEMPLATE},
        "engine": {"follow_up": 3.0},
    }
    engine, probe, result = await run_engine(profile, turns=2)

    assert [t.outcome for t in result.timelines] == [Outcome.OK, Outcome.OK]
    (wake,) = [a["wake"] for a in probe.of("wake")]
    first, second = engine.responder.last_instance.contexts
    # tools: the run's built-in ones (the timers), whatever they are
    assert first == TurnContext(turn=1, wake=wake, follow_up=False, tools=first.tools)
    assert second == TurnContext(turn=2, wake=None, follow_up=True, tools=first.tools)
    assert [a["reply"].text for a in probe.of("reply")] == [
        f"{wake.label}, turn 1, follow-up no: what time is it",
        ", turn 2, follow-up yes: and tomorrow",
    ]


async def test_continuous_mode_gives_a_context_without_a_wake_word():
    engine, probe, result = await run_engine({"wake": None, "responder": {"backend": "echo", "template": TEMPLATE}}, turns=1)
    (context,) = engine.responder.last_instance.contexts
    assert context == TurnContext(turn=1, wake=None, follow_up=False, tools=context.tools)
