"""Where a reply is cut into requests: at sentence ends, the first sentence on its own.

Fish Audio starts sending audio only once it has synthesized the beginning of a request, and that
takes longer the longer the request is. Sending the first sentence alone makes the first sound
come as early for a long reply as for a short one; the rest is grouped into fewer, larger
requests (each up to ``max_chars``), fetched one ahead while the previous one plays.

The sentence splitter is the core's (:mod:`magoo_core.sentences`), shared with streamed replies.

Pure functions, no I/O.
"""

from __future__ import annotations

import re

from magoo_core.sentences import ABBREVIATIONS, split_sentences

__all__ = ["ABBREVIATIONS", "plan_requests", "split_long", "split_sentences"]

_CLAUSE_END = re.compile(r"(?<=[,;:])\s+")


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
