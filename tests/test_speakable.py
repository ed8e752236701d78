"""Reply text made fit for a speech synthesizer."""

from __future__ import annotations

import pytest

from magoo_core.speakable import speakable


@pytest.mark.parametrize(
    ("reply", "spoken"),
    [
        ("It is five o'clock.", "It is five o'clock."),
        ("Hello world", "Hello world"),
        ("**Sure!** It is _really_ ***hot*** today", "Sure! It is really hot today"),
        ("See [the docs](https://docs.python.org/3/) now", "See the docs now"),
        ("Look at https://www.example.com/a?b=1 and www.python.org.", "Look at example.com and python.org."),
        ("![a cat](http://x.org/cat.png) meows", "a cat meows"),
        ("# Weather\n- Sunny\n- 20 *degrees*\n", "Weather. Sunny. 20 degrees."),
        ("1. Boil water\n2. Add pasta", "Boil water. Add pasta."),
        ('{"answer": "It is noon."}', "It is noon."),
        ('```json\n{"text": "Hi there"}\n```', "Hi there"),
        ('{"reply": {"nested": "no"}, "mood": "happy"}', "no happy"),
        ("Run `ls -la` first.", "Run ls -la first."),
        ("```\nprint('hi')\n```", "print('hi')"),
        ('The result is {"a": 1', "The result is a: 1"),
        ("snake_case_name is fine", "snake case name is fine"),
        ("Tom & Jerry: 3 > 2", "Tom & Jerry: 3 > 2"),
        ("| a | b |\n|---|---|\n| 1 | 2 |", "a b. 1 2."),
        ("> quoted\n---\nafter", "quoted. after."),
        ("**", ""),
    ],
)
def test_speakable_keeps_the_words_and_drops_the_markup(reply, spoken):
    assert speakable(reply) == spoken


def test_plain_sentences_pass_through_unchanged():
    text = "Sure, I set a timer for five minutes. Anything else?"
    assert speakable(text) == text
