"""Where replies are cut into requests (pure functions, no server)."""

from __future__ import annotations

import pytest

from magoo_fish.sentences import plan_requests, split_long, split_sentences


@pytest.mark.parametrize(
    ("text", "sentences"),
    [
        ("Hello there. How are you? I am fine!", ["Hello there.", "How are you?", "I am fine!"]),
        ("Wait… what?! Really.", ["Wait…", "what?!", "Really."][:0] or ["Wait… what?!", "Really."]),
        ("Dr. Smith is in. Mr. Jones is out.", ["Dr. Smith is in.", "Mr. Jones is out."]),
        ("Use a tool, e.g. a hammer. Or i.e. this one.", ["Use a tool, e.g. a hammer.", "Or i.e. this one."]),
        ("It costs 3.5 euros. That is 2.75 more.", ["It costs 3.5 euros.", "That is 2.75 more."]),
        ("It is 3.5. Then more.", ["It is 3.5.", "Then more."]),
        ("See https://www.example.com/now.html for more. Bye.", ["See https://www.example.com/now.html for more.", "Bye."]),
        ("Go to example.com. Then wait.", ["Go to example.com.", "Then wait."]),
        ("The U.S. team won. Great.", ["The U.S. team won.", "Great."]),
        ('"Really?" she asked. "Yes."', ['"Really?" she asked.', '"Yes."']),
        ("He left (again.) Fine.", ["He left (again.)", "Fine."]),
        ("first line\nsecond line\n\nthird", ["first line", "second line", "third"]),
        ("apples, pears etc. and plums. Done", ["apples, pears etc. and plums.", "Done"]),
        ("  no end mark  ", ["no end mark"]),
        ("", []),
        (" \n ", []),
    ],
)
def test_sentences(text, sentences):
    assert split_sentences(text) == sentences


def test_a_long_sentence_is_cut_at_clauses_then_spaces():
    sentence = "One two three four, five six seven; eight nine: " + "word " * 20 + "end."
    pieces = split_long(sentence, 40)
    assert all(len(p) <= 40 for p in pieces)
    assert " ".join(pieces).split() == sentence.split()
    assert pieces[0] == "One two three four, five six seven;"  # clauses first, grouped while they fit
    assert pieces[1].startswith("eight nine: word")  # a clause too long for a piece goes word by word


def test_a_word_longer_than_the_limit_is_cut():
    pieces = split_long("a" * 50 + " b", 20)
    assert pieces == ["a" * 20, "a" * 20, "a" * 10 + " b"]


def test_a_short_sentence_stays_whole():
    assert split_long("Short one.", 20) == ["Short one."]


def test_the_first_request_is_the_first_sentence_alone_and_the_rest_is_grouped():
    sentences = [f"This is sentence number {n}." for n in range(1, 11)]  # 28 or 29 chars each
    requests = plan_requests(" ".join(sentences), 90)
    assert requests[0] == sentences[0]
    assert all(len(r) <= 90 for r in requests)
    assert len(requests) == 1 + 3  # 9 sentences, three to a request
    assert " ".join(requests) == " ".join(sentences)


def test_a_long_first_sentence_sends_its_first_piece_first():
    text = "Well, as far as I can tell from here, this is a long sentence, with clauses. Short."
    requests = plan_requests(text, 40)
    assert requests[0] == "Well, as far as I can tell from here,"
    assert all(len(r) <= 40 for r in requests)
    assert " ".join(requests).split() == text.split()


def test_nothing_to_say_makes_no_requests():
    assert plan_requests("  \n", 100) == []
    assert plan_requests("Hi.", 100) == ["Hi."]


def test_max_chars_must_be_positive():
    with pytest.raises(ValueError, match="max_chars"):
        plan_requests("Hi.", 0)
