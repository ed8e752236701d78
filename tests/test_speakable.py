"""Reply text made fit for a speech synthesizer: bounded, without escapes, cleaned in linear time."""

from __future__ import annotations

import io
import logging
import os
import re
import threading
from typing import ClassVar

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import magoo_core.speakable as speakable_module
from magoo_core.plugins import hookimpl
from magoo_core.reporter import ConsoleReporter
from magoo_core.roles import Backend, BackendConfig
from magoo_core.speakable import OFF_LOOP_CHARS, bounded_reply, shown, speakable, spoken_reply, terminal_safe
from magoo_core.testing import run_profile
from magoo_core.types import Reply, Transcript

EXAMPLES = int(os.environ.get("MAGOO_HOSTILE_EXAMPLES", "200"))
#: what a hostile reply is made of: markup, escapes, control characters, odd spaces and words
PIECES = st.sampled_from(
    ["*", "**", "_", "~~", "`", "```", "[", "](", ")", "![", "#", "> ", "- ", "1. ", "|", "---", "\n", "\t", " ",
     "\u2003", "{", "}", '"', ":", "http://", "www.", "a", "word", ".", "\x1b", "\x1b[31m", "\x1b]0;t\x07", "\x9b",
     "\x00", "\x07", "\x7f", "\r", "é", "😀"]
)
HOSTILE = st.lists(PIECES, max_size=200).map("".join)
CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


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


# ---- hostile replies: escapes, size, time ---------------------------------------------------------


@settings(max_examples=EXAMPLES, deadline=None, database=None)
@given(HOSTILE)
def test_nothing_spoken_or_shown_holds_an_escape_or_a_control_character(text):
    for out in (speakable(text), terminal_safe(text), shown(text, 50), bounded_reply(text, 30).text):
        assert not CONTROL.search(out.replace("\n", "").replace("\t", "")), repr(out)


@settings(max_examples=EXAMPLES, deadline=None, database=None)
@given(st.text(max_size=400) | HOSTILE, st.integers(1, 300))
def test_a_bounded_reply_is_a_head_of_the_text_no_longer_than_the_bound(text, limit):
    bounded = bounded_reply(text, limit)
    safe = terminal_safe(text)
    assert len(bounded.text) <= limit
    assert safe.startswith(bounded.text)
    examined = len(text) <= 4 * limit  # beyond that the tail is dropped unread, escapes and all
    if examined:
        assert bounded.dropped == len(safe) - len(bounded.text)
    else:
        assert bounded.dropped >= len(text) - 4 * limit - 1
    if bounded.dropped:  # cut at a sentence end or space in the bound's last fifth, or at the bound
        assert len(bounded.text) >= limit * 4 // 5 or len(bounded.text.rstrip()) < len(bounded.text) or not bounded.text


@pytest.mark.parametrize(
    ("reply", "spoken"),
    [
        ("\x1b[31mred\x1b[0m alert", "red alert"),
        ("\x1b]0;owned\x07title \x1b[2J\x1b[Hcleared", "title cleared"),
        ("bell\x07 and null\x00 and \x9b31mC1", "bell and null and C1"),
    ],
)
def test_escape_sequences_are_not_spoken(reply, spoken):
    assert speakable(reply) == spoken


#: inputs that made the former patterns scan to the end of the text from every start (quadratic):
#: 60 KB of the first took 28 s on the loop. Linear now, 100 KB of each takes well under a second;
#: a quadratic pattern would take minutes and run into pytest-timeout. bench/reply.py measures it.
PATHOLOGICAL = ["*a ", "[", "[a](", "![", "~~a", "_a ", "\n", " \u2003", "```a", "> \n", "|--", '{"a":[']


@pytest.mark.parametrize("piece", PATHOLOGICAL)
def test_the_cleanup_of_a_pathological_reply_does_not_scan_from_every_start(piece):
    text = (piece * (100_000 // len(piece) + 1))[:100_000]
    assert len(speakable(text)) <= len(text)


def test_json_nested_too_deep_is_spoken_as_text_not_a_recursion_error():
    assert speakable("[" * 50_000 + "hi") == "hi"


async def test_a_long_reply_is_cut_with_one_line_and_cleaned_off_the_loop(caplog, monkeypatch):
    threads = []
    spoken = speakable_module._spoken

    def recording(*args):
        threads.append(threading.current_thread())
        return spoken(*args)

    monkeypatch.setattr(speakable_module, "_spoken", recording)
    reply = "**Sure.** " * 6_000  # 60 KB of markdown
    with caplog.at_level(logging.WARNING, "magoo.engine"):
        said = await spoken_reply(reply, max_chars=4000, clean=True, turn=3)
        short = await spoken_reply("**Fine.**", max_chars=4000, clean=True)
    assert 3200 <= len(said) <= 4000 and said.startswith("Sure. Sure.") and said.endswith("Sure.")
    assert short == "Fine."
    assert threads[0] is not threading.main_thread() and threads[1] is threading.main_thread()
    assert [r.getMessage() for r in caplog.records] == [
        f"turn 3: the reply has 60000 characters; magoo says the first {len(said)} and drops the rest ([engine] max_reply_chars)"
    ]
    assert len(reply) > OFF_LOOP_CHARS


async def test_a_raw_reply_is_bounded_too():
    assert await spoken_reply("x " * 100, max_chars=10, clean=False) == "x x x x x"


def test_the_story_shows_a_reply_without_escapes_and_bounded():
    out = io.StringIO()
    reporter = ConsoleReporter(out)
    reply = "\x1b[2J\x1b]0;pwned\x07hi " + "y" * 5000
    reporter.magoo_on_reply(Reply(reply), turn=1)
    line = out.getvalue()
    assert "\x1b" not in line and "\x07" not in line
    assert "hi yyy" in line and f"... ({len(reply) - 1000} more characters)" in line and len(line) < 1100


class HugeResponder(Backend):
    """Answers every command with ``size`` characters of markdown (a runaway model)."""

    name: ClassVar[str] = "huge"

    class Config(BackendConfig):
        size: int = 60_000

    async def respond(self, transcript: Transcript) -> Reply:
        return Reply(("**Sure** " * (self.config.size // 9 + 1))[: self.config.size])


class HugePlugin:
    @staticmethod
    @hookimpl
    def magoo_register_responders(register):
        register(HugeResponder)


async def test_a_60_kb_reply_is_spoken_bounded_and_logged_bounded(caplog):
    with caplog.at_level(logging.INFO, "magoo.engine"):
        record = await run_profile(
            {"responder": {"backend": "huge"}, "engine": {"max_reply_chars": 500}}, plugins=[HugePlugin]
        )
    spoken = record.of("speak_start")[0]["text"]
    assert 400 <= len(spoken) <= 500 and spoken.startswith("Sure Sure")
    assert len(record.replies[0]) == 60_000  # magoo_on_reply still gets the reply as it came
    messages = [r.getMessage() for r in caplog.records]
    assert sum("drops the rest" in m for m in messages) == 1
    assert max(len(m) for m in messages) < 2000  # the reply is not logged whole
