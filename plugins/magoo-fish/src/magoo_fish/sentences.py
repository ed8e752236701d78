"""Where a reply is cut into requests: at sentence ends, the first sentence on its own.

Fish Audio starts sending audio only once it has synthesized the beginning of a request, and that
takes longer the longer the request is. Sending the first sentence alone makes the first sound
come as early for a long reply as for a short one; the rest is grouped into fewer, larger
requests (each up to ``max_chars``), fetched one ahead while the previous one plays.

Pure functions, no I/O.
"""

from __future__ import annotations

import re

__all__ = ["plan_requests", "split_long", "split_sentences"]

#: Words whose period never ends a sentence ("Dr. Smith", "e.g. this").
#: Words that also end sentences ("etc.", "no.", "Sun.") are left out on purpose.
ABBREVIATIONS = frozenset("mr mrs ms dr prof sr jr st mt vs e.g i.e cf approx fig ca".split())

# A run of sentence-ending marks, then any closing quotes or brackets, then whitespace or the end.
_END = re.compile(r"([.!?…]+)([\"'”’)\]]*)(?=\s|$)")
_WORD_BEFORE = re.compile(r"(\S+)$")
_CLAUSE_END = re.compile(r"(?<=[,;:])\s+")
_DOTTED = re.compile(r"(?:[a-z]\.)+[a-z]")  # "u.s", "a.m" (the last period is the match)


def split_sentences(text: str) -> list[str]:
    """The sentences of ``text``, stripped, in order; empty ones dropped.

    A sentence ends at ``.``, ``!``, ``?`` or ``…`` (and runs of them, closing quotes or brackets
    included) followed by white space, unless the next word starts with a lower-case letter
    ("'Really?' she asked"), and at every line break. A period does not end a sentence after a
    known abbreviation ("Dr.", "e.g.") or a dotted one ("U.S."); a period inside a number or a URL
    ("3.5", "example.com/now") is never followed by white space, so it never ends one.
    """
    sentences: list[str] = []
    for line in text.splitlines():
        start = 0
        for match in _END.finditer(line):
            if not _ends_sentence(line, match):
                continue
            sentences.append(line[start : match.end()])
            start = match.end()
        sentences.append(line[start:])
    return [s.strip() for s in sentences if s.strip()]


def _ends_sentence(line: str, match: re.Match[str]) -> bool:
    if match.group(1) == ".":
        word = _WORD_BEFORE.search(line, 0, match.start())
        before = word.group(1).lower().lstrip("\"'“‘([") if word else ""
        if before in ABBREVIATIONS or _DOTTED.fullmatch(before):
            return False
    following = line[match.end() :].lstrip()
    return not (following and following[0].islower())


def split_long(sentence: str, max_chars: int) -> list[str]:
    """Cut a sentence longer than ``max_chars`` into pieces of at most ``max_chars``: at ``,``
    ``;`` ``:`` first, then at spaces, and a single word longer than that is cut where it must be."""
    if len(sentence) <= max_chars:
        return [sentence]
    pieces: list[str] = []
    for clause in _CLAUSE_END.split(sentence):
        if len(clause) <= max_chars:
            pieces.append(clause)
            continue
        for word in clause.split():
            pieces.extend(word[i : i + max_chars] for i in range(0, len(word), max_chars))
    return _group(pieces, max_chars)


def _group(pieces: list[str], max_chars: int) -> list[str]:
    """Join consecutive pieces with a space while the result stays within ``max_chars``."""
    groups: list[str] = []
    for piece in pieces:
        if groups and len(groups[-1]) + 1 + len(piece) <= max_chars:
            groups[-1] += " " + piece
        else:
            groups.append(piece)
    return groups


def plan_requests(text: str, max_chars: int) -> list[str]:
    """The texts of the requests that speak ``text``, in order.

    The first request is the first sentence alone (or the first piece of it, when it is longer
    than ``max_chars``); the following sentences are grouped into requests of at most
    ``max_chars`` characters. Nothing of the text is lost but white space between sentences.
    """
    if max_chars < 1:
        raise ValueError(f"max_chars must be positive, not {max_chars}")
    pieces = [piece for sentence in split_sentences(text) for piece in split_long(sentence, max_chars)]
    if not pieces:
        return []
    return [pieces[0], *_group(pieces[1:], max_chars)]
