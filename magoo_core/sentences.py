"""Where text is cut into sentences: for a TTS that wants one sentence at a time, and for a reply
that arrives as it is written (:mod:`magoo_core.reply_stream`).

Pure functions, no I/O; time linear in the text.
"""

from __future__ import annotations

import re

__all__ = ["ABBREVIATIONS", "sentence_ends", "split_sentences"]

#: Words whose period never ends a sentence ("Dr. Smith", "e.g. this").
#: Words that also end sentences ("etc.", "no.", "Sun.") are left out on purpose.
ABBREVIATIONS = frozenset("mr mrs ms dr prof sr jr st mt vs e.g i.e cf approx fig ca".split())

# A run of sentence-ending marks, then any closing quotes or brackets, then whitespace or the end.
_END = re.compile(r"([.!?…]+)([\"'”’)\]]*)(?=\s|$)")
_WORD_BEFORE = re.compile(r"(\S+)$")
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
    start = 0
    for end in sentence_ends(text):
        sentences.append(text[start:end])
        start = end
    sentences.append(text[start:])
    return [s.strip() for s in sentences if s.strip()]


def sentence_ends(text: str) -> list[int]:
    """The offsets in ``text`` just after each sentence end (see :func:`split_sentences`), in order.
    A line break is a sentence end of its own; an end mark at the very end of ``text`` counts."""
    ends: list[int] = []
    offset = 0
    for line in text.splitlines(keepends=True):
        body = line.rstrip("\r\n")
        ends.extend(offset + match.end() for match in _END.finditer(body) if _ends_sentence(body, match))
        offset += len(line)
        if len(body) < len(line):
            ends.append(offset)
    return ends


def _ends_sentence(line: str, match: re.Match[str]) -> bool:
    if match.group(1) == ".":
        word = _WORD_BEFORE.search(line, 0, match.start())
        before = word.group(1).lower().lstrip("\"'“‘([") if word else ""
        if before in ABBREVIATIONS or _DOTTED.fullmatch(before):
            return False
    following = line[match.end() :].lstrip()
    return not (following and following[0].islower())
