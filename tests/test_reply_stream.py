"""Streamed replies: text deltas cut into sentences, and the TTS run one sentence ahead."""

from __future__ import annotations

import asyncio

import pytest

from magoo_core.reply_stream import SentenceCutter, pipelined, sentences
from magoo_core.sentences import sentence_ends, split_sentences


async def _deltas(*parts: str, pause: float = 0.0):
    for part in parts:
        if pause:
            await asyncio.sleep(pause)
        yield part


async def _collect(stream) -> list:
    return [item async for item in stream]


def test_split_sentences_rules_are_the_shared_ones():
    text = "Dr. Smith lives in the U.S. now. 'Really?' she asked. Pi is 3.14!\nNew line"
    assert split_sentences(text) == ["Dr. Smith lives in the U.S. now.", "'Really?' she asked.", "Pi is 3.14!", "New line"]
    assert sentence_ends("One. Two") == [4]
    assert sentence_ends("One\nTwo") == [4]


def test_a_sentence_is_given_once_its_end_is_followed_by_white_space():
    cutter = SentenceCutter()
    assert cutter.feed("Hello") == []
    assert cutter.feed(".") == []  # "Hello.5" could still be a number
    assert cutter.feed(" How") == ["Hello."]
    assert cutter.feed(" are you?") == []
    assert cutter.feed("\n") == ["How are you?"]
    assert cutter.finish() == []


def test_abbreviations_and_numbers_do_not_cut_and_the_rest_comes_at_the_end():
    cutter = SentenceCutter()
    said = [s for delta in ("Dr.", " Smith paid 3", ".50 for", " it! Then", " left") for s in cutter.feed(delta)]
    assert said == ["Dr. Smith paid 3.50 for it!"]
    assert cutter.finish() == ["Then left"]


def test_several_sentences_in_one_delta():
    assert SentenceCutter().feed("One. Two! Three? Fo") == ["One.", "Two!", "Three?"]


async def test_sentences_are_cleaned_bounded_and_the_whole_text_kept():
    heard: list[str] = []
    stream = sentences(_deltas("**Bold** move. See ", "[the docs](http://x.org). ", "And more words here."),
                       max_chars=30, clean=True, heard=heard)
    said = await _collect(stream)
    assert said == ["Bold move.", "See the docs.", "And"]
    assert "".join(heard) == "**Bold** move. See [the docs](http://x.org). And more words here."


async def test_sentences_raise_on_a_delta_that_is_not_text_and_on_a_stalled_responder():
    with pytest.raises(TypeError, match="str"):
        await _collect(sentences(_deltas("Hi. ", 3), max_chars=100, clean=False))  # type: ignore[arg-type]

    async def stalls():
        yield "First. "
        await asyncio.sleep(10)
        yield "never"

    got: list[str] = []
    with pytest.raises(TimeoutError):
        async for sentence in sentences(stalls(), max_chars=100, clean=False, timeout=0.1):
            got.append(sentence)
    assert got == ["First."]  # said before the responder stalled


async def test_pipelined_synthesizes_the_next_sentence_while_the_first_plays():
    log: list[str] = []

    async def synthesize(text: str):
        log.append(f"start {text}")
        for index in range(3):
            await asyncio.sleep(0.01)
            yield f"{text}{index}"
        log.append(f"end {text}")

    played: list[str] = []
    async for piece in pipelined(_deltas("a", "b", "c"), synthesize):
        if piece == "a0":
            await asyncio.sleep(0.1)  # the player is busy with the first piece
            log.append("played a0")
        played.append(piece)
    assert played == ["a0", "a1", "a2", "b0", "b1", "b2", "c0", "c1", "c2"]
    assert log.index("end b") < log.index("played a0")  # b was ready before a had played
    assert log.index("start c") > log.index("played a0")  # only one sentence ahead


async def test_pipelined_plays_what_came_before_a_failure_then_raises_it():
    async def synthesize(text: str):
        if text == "bad":
            raise RuntimeError("tts broke")
        yield text

    played: list[str] = []
    with pytest.raises(RuntimeError, match="tts broke"):
        async for piece in pipelined(_deltas("ok", "bad", "never"), synthesize):
            played.append(piece)
    assert played == ["ok"]


async def test_closing_the_stream_early_cancels_the_synthesis():
    cancelled = asyncio.Event()

    async def synthesize(text: str):
        try:
            yield text
            await asyncio.sleep(10)
            yield "late"
        finally:
            cancelled.set()

    stream = pipelined(_deltas("one", "two"), synthesize)
    assert await anext(stream) == "one"
    await stream.aclose()
    assert cancelled.is_set()


# ---- through the engine ----------------------------------------------------------------------------

STREAMED = "First sentence here. Second one! And the third?"


async def test_a_streamed_reply_is_spoken_before_it_is_whole_one_tts_call_per_sentence():
    from probe import in_order, run_engine

    responder = {"backend": "echo", "template": STREAMED, "stream": True, "token_seconds": 0.02}
    engine, probe, result = await run_engine({"responder": responder}, turns=1)
    assert result.fatal is None
    assert in_order(probe.names(), ["state_change", "speak_start", "reply", "speak_end", "turn_end"]), (
        "the first sentence is heard before the responder wrote the last word"
    )
    replies = [(a["reply"].text, a["reply"].final) for a in probe.of("reply")]
    assert replies == [
        ("First sentence here. Second", False),  # a sentence is known complete at the next word
        ("First sentence here. Second one! And", False),
        (STREAMED, False),
        (STREAMED, True),
    ]
    assert engine.tts.last_instance.calls == 3
    (played,) = engine.player.last_instance.plays  # one continuous player stream
    said = len("First sentence here.") + len("Second one!") + len("And the third?")
    assert sum(c.duration for c in played) == pytest.approx(said * 0.03, abs=0.2)
    (timeline,) = result.timelines
    assert timeline.outcome.value == "ok"
    assert timeline.reply <= timeline.first_audio <= timeline.ended


async def test_a_streamed_reply_with_nothing_in_it_ends_the_turn_without_a_reply():
    from probe import run_engine

    responder = {"backend": "echo", "template": "   ", "stream": True}
    engine, probe, result = await run_engine({"responder": responder}, turns=1)
    (timeline,) = result.timelines
    assert timeline.outcome.value == "no_reply"
    assert not engine.player.last_instance.plays


async def test_spoken_sentences_note_each_sentence_as_the_player_reaches_it():
    from magoo_core.reply_stream import SpokenSentences
    from magoo_core.types import AudioChunk

    def piece(text: str, part: int) -> AudioChunk:
        return AudioChunk(f"{text}{part}".encode().ljust(8), 16000)

    class TwoPieces:
        async def synthesize(self, text):
            yield piece(text, 1)
            yield piece(text, 2)

    async def tts():
        return TwoPieces()

    spoken = SpokenSentences(_deltas("One.", "Two.", "Three."), tts, timeout=5.0)
    assert await anext(spoken.audio) == piece("One.", 1)
    assert spoken.said == ["One."]
    assert [await anext(spoken.audio) for _ in range(2)] == [piece("One.", 2), piece("Two.", 1)]
    await spoken.audio.aclose()  # cut short (barge-in) while "Two." plays
    assert spoken.said == ["One.", "Two."] and spoken.failure is None
