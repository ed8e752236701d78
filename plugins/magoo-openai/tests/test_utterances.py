"""UtteranceCutter: the audio an utterance needs, and no more held while nobody speaks."""

from __future__ import annotations

import pytest

from magoo_core.end_of_speech import EndOfSpeech
from magoo_openai.utterances import UtteranceCutter

from openai_audio_helpers import PAUSED, QUESTION, pcm, quiet


def cuts(cutter: UtteranceCutter, audio: bytes, chunk: int = 2560) -> list:
    found = []
    for offset in range(0, len(audio), chunk):
        found += cutter.feed(audio[offset : offset + chunk])
    return found + cutter.finish()


def test_an_utterance_carries_its_pre_roll_and_tail():
    lead, clip = quiet(1.0), pcm(QUESTION)
    start, end = cuts(UtteranceCutter(EndOfSpeech(), pre_roll=0.3, tail=0.2), lead + clip + quiet(1.0))
    assert (start.kind, end.kind) == ("start", "end")
    seconds = len(end.audio) / 32000
    assert seconds == pytest.approx((end.at + 0.2) - (start.at - 0.3), abs=1 / 16000)
    # the audio is the stream's own bytes from 0.3 s before the start
    begin = round((start.at - 0.3) * 16000) * 2
    assert end.audio == (lead + clip + quiet(1.0))[begin : begin + len(end.audio)]


def test_nothing_more_than_the_pre_roll_is_held_while_nobody_speaks():
    cutter = UtteranceCutter(EndOfSpeech(), pre_roll=0.3)
    for _ in range(30):
        cutter.feed(quiet(1.0))
    assert len(cutter._buffer) <= 0.6 * 32000  # pre_roll and a little slack, after 30 s


def test_an_utterance_that_runs_on_is_held_whole_until_it_ends():
    audio = quiet(0.5) + pcm(PAUSED) + quiet(1.0)
    start, end = cuts(UtteranceCutter(EndOfSpeech(), pre_roll=0.3, tail=0.2), audio)
    assert len(end.audio) / 32000 >= 2.2  # the whole command, its pause included
