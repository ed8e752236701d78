"""The example plugin's own tests: the shared contract suite and a whole turn through the engine."""

import magoo_hello
from magoo_core.testing import run_turn
from magoo_core.testing.contracts import ResponderContract


class TestHelloContract(ResponderContract):
    backend_class = magoo_hello.HelloResponder
    config = {"greeting": "Hi!"}


def test_a_whole_turn_speaks_the_greeting():
    run = run_turn({"responder": {"backend": "hello", "greeting": "Hi!"}}, plugins=[magoo_hello])
    assert run.transcripts == ["what time is it"]
    assert run.replies == ["Hi! You said: what time is it"]
    assert run.audio, "the reply was spoken"


def test_a_banned_word_drops_the_turn_and_says_why():
    run = run_turn({"responder": {"backend": "hello", "banned": ["time"]}}, plugins=[magoo_hello])
    assert run.replies == []
    assert [t.outcome.value for t in run.timelines] == ["error"]
    assert "banned word" in run.failures[0].message
