"""Reply text made fit for a speech synthesizer and for a terminal.

Language models answer in chat style: markdown emphasis and lists, code fences, links, bare URLs,
sometimes a JSON object. A synthesizer reads all of that aloud ("asterisk asterisk", "h t t p s
colon slash slash ..."). :func:`speakable` keeps the words and drops the markup.

A reply comes from outside (a model, a webhook), so its size and its characters are not trusted:
:func:`bounded_reply` cuts it to ``[engine] max_reply_chars`` and drops terminal escape sequences
and other control characters, and :func:`spoken_reply` does both plus the cleanup, off the event
loop when the text is long. Every pattern here runs in time linear in the text (no nested or
overlapping quantifiers; inner spans exclude their own delimiter or are bounded), so a hostile
reply costs at most a few milliseconds per 100 KB.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from dataclasses import dataclass
from urllib.parse import urlsplit

log = logging.getLogger("magoo.engine")

#: Keys under which a model that answered in JSON usually put the sentence to say.
_JSON_TEXT_KEYS = ("text", "reply", "answer", "response", "message", "content", "speech", "say")

#: Replies longer than this are cleaned in a worker thread, not on the event loop.
OFF_LOOP_CHARS = 20_000
#: Markup takes room: the raw text cleaned is at most this many times the spoken bound.
_MARKUP_ALLOWANCE = 4

# ESC sequences (CSI with parameters, OSC up to BEL or ST, two-character escapes), then any
# control character other than line breaks and tabs, and the C1 controls.
_ESCAPES = re.compile(r"\x1b(?:\[[0-?]*+[ -/]*+[@-~]?|\][^\x07\x1b]*+(?:\x07|\x1b\\)?|[@-Z\\-_]?)|\x9b[0-?]*+[ -/]*+[@-~]?")
_CONTROLS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")

_CODE_FENCE = re.compile(r"```[^\n`]*+\n?((?:[^`]|`(?!``))*+)```")
_IMAGE = re.compile(r"!\[([^\[\]\n]{0,300})\]\([^()\s]{0,2000}(?:\s[^()\n]{0,300})?\)")
_LINK = re.compile(r"\[([^\[\]\n]{1,300})\]\([^()\s]{1,2000}(?:\s[^()\n]{0,300})?\)")
_URL = re.compile(r"\b(?:https?://|www\.)[^\s<>\"')\]]++", re.IGNORECASE)
_HEADING = re.compile(r"^[ \t]{0,3}#{1,6}[ \t]*+", re.MULTILINE)
_QUOTE = re.compile(r"^[ \t]*+>[ \t]?", re.MULTILINE)
_BULLET = re.compile(r"^[ \t]*+(?:[-*+•]|\d{1,3}[.)])[ \t]++", re.MULTILINE)
_RULE = re.compile(r"^[ \t]*+([-*_])(?:[ \t]*+\1){2,}+[ \t]*+$", re.MULTILINE)
# one pattern per delimiter: the inner span cannot hold its own delimiter, so a failed match
# stops at the next delimiter instead of scanning to the end of the line
_EMPHASIS = (
    re.compile(r"(\*{1,3})(?=[^\s*])([^*\n]++)(?<=\S)\1(?![\w*])"),
    re.compile(r"(~~)(?=[^\s~])([^~\n]++)(?<=\S)~~"),
    re.compile(r"(?<!\w)(_{1,3})(?=[^\s_])([^_\n]++)(?<=\S)\1(?![\w_])"),
)
_INLINE_CODE = re.compile(r"`([^`]*+)`")
_TABLE_RULE = re.compile(r"^[ \t]*+\|?[ \t]*+:?-{2,}+:?[ \t]*+(?:\|[ \t]*+:?-{2,}+:?[ \t]*+)*+\|?[ \t]*+$", re.MULTILINE)
_JSON_PUNCTUATION = re.compile(r'[{}\[\]"]|(?<=\w)":|\\n')
_LEFTOVER_MARKS = re.compile(r"[*_#`|~]++")
_SPACES = re.compile(r"\s++")
_SPACE_BEFORE_PUNCTUATION = re.compile(r" ([,.;:!?])")


@dataclass(frozen=True)
class BoundedText:
    """A reply cut to its bound: ``text`` is what remains, ``dropped`` how many characters were cut."""

    text: str
    dropped: int = 0


def bounded_reply(text: str, max_chars: int) -> BoundedText:
    """``text`` without escape sequences and control characters, cut to ``max_chars`` characters.

    The cut falls at the last sentence end or space before the bound when there is one in its
    last fifth, so a word is not broken. Pure; linear in ``min(len(text), 4 * max_chars)``.
    """
    head = text[: max_chars * _MARKUP_ALLOWANCE + 1]  # escapes are dropped below: keep some room
    clean = terminal_safe(head)
    if len(clean) <= max_chars and len(head) == len(text):
        return BoundedText(clean)
    cut = clean[:max_chars]
    for marks in (".!?\n", " \t"):
        end = max(cut.rfind(mark) for mark in marks)
        if end >= max_chars * 4 // 5:
            cut = cut[: end + 1]
            break
    return BoundedText(cut.rstrip(), len(text) - len(head) + len(clean) - len(cut.rstrip()))


def terminal_safe(text: str) -> str:
    """``text`` without ANSI/terminal escape sequences and control characters (line breaks and
    tabs are kept), so it can be printed or logged without changing the terminal. Pure, linear."""
    return _CONTROLS.sub("", _ESCAPES.sub("", text))


def shown(text: str, limit: int = 1000) -> str:
    """``text`` for a log or story line: terminal-safe, at most ``limit`` characters, and says
    how many it left out (``... (12345 more characters)``)."""
    head = terminal_safe(text[:limit])
    return head if len(text) <= limit else f"{head}... ({len(text) - limit} more characters)"


async def spoken_reply(text: str, *, max_chars: int, clean: bool, turn: int | None = None) -> str:
    """What the speaker says for the reply ``text``: bounded, terminal-safe and, when ``clean``,
    without markup (:func:`speakable`). Runs on the event loop; a text longer than
    :data:`OFF_LOOP_CHARS` is worked on in a worker thread. A cut is logged once, as one line.
    """
    if len(text) > OFF_LOOP_CHARS:
        bounded, said = await asyncio.to_thread(_spoken, text, max_chars, clean)
    else:
        bounded, said = _spoken(text, max_chars, clean)
    if bounded.dropped:
        log.warning(
            "%sthe reply has %d characters; magoo says the first %d and drops the rest ([engine] max_reply_chars)",
            "" if turn is None else f"turn {turn}: ",
            len(text),
            len(text) - bounded.dropped,
        )
    return said


def _spoken(text: str, max_chars: int, clean: bool) -> tuple[BoundedText, str]:
    if not clean:
        bounded = bounded_reply(text, max_chars)
        return bounded, bounded.text
    # clean first (markup takes room), on a bounded head; then bound what is left to say
    head = text[: max_chars * _MARKUP_ALLOWANCE]
    said = bounded_reply(speakable(head), max_chars)
    return BoundedText(said.text, len(text) - len(said.text) if (said.dropped or len(head) < len(text)) else 0), said.text


def speakable(text: str) -> str:
    """The words of ``text`` without markdown, code fences, URLs or JSON punctuation.

    Links keep their label, a bare URL becomes its host name ("example.com"), list items and
    lines become sentences, a JSON object answer becomes the sentence under a key like
    ``"text"`` or ``"answer"`` (or all its string values). Plain text comes back unchanged
    apart from whitespace. Escape sequences and control characters are dropped. Pure; linear
    in the length of ``text``.
    """
    text = _from_json(terminal_safe(text).strip())
    text = _CODE_FENCE.sub(lambda m: m.group(1), text)
    text = _IMAGE.sub(lambda m: m.group(1), text)
    text = _LINK.sub(lambda m: m.group(1), text)
    text = _URL.sub(lambda m: _host(m.group(0)), text)
    text = _TABLE_RULE.sub("", text)
    text = _RULE.sub("", text)
    text = _HEADING.sub("", text)
    text = _QUOTE.sub("", text)
    text = _BULLET.sub("", text)
    for _ in range(2):  # nested emphasis: ***bold italic*** or **bold _italic_**
        for emphasis in _EMPHASIS:
            text = emphasis.sub(lambda m: m.group(2), text)
    text = _INLINE_CODE.sub(lambda m: m.group(1), text)
    text = _JSON_PUNCTUATION.sub(" ", text)
    text = _LEFTOVER_MARKS.sub(" ", text)
    return _as_sentences(text)


def _from_json(text: str) -> str:
    """The text inside a JSON answer (whole or fenced), else ``text`` unchanged."""
    candidate = text
    if text.startswith("```") and text.endswith("```") and len(text) >= 6:
        candidate = text[3:-3].removeprefix("json").strip()
    if not candidate.startswith(("{", "[")):
        return text
    try:
        data = json.loads(candidate)
    except (ValueError, RecursionError):
        return text  # a fragment, or nested too deep: the punctuation is stripped later
    try:
        strings = _strings(data)
    except RecursionError:
        return text
    return " ".join(strings) if strings else text


def _strings(data: object) -> list[str]:
    if isinstance(data, str):
        return [data]
    if isinstance(data, dict):
        for key in _JSON_TEXT_KEYS:
            if isinstance(data.get(key), str):
                return [data[key]]
        return [s for value in data.values() for s in _strings(value)]
    if isinstance(data, list):
        return [s for value in data for s in _strings(value)]
    return []


def _host(url: str) -> str:
    if not url.lower().startswith("http"):
        url = "http://" + url
    try:
        host = urlsplit(url).hostname or ""
    except ValueError:  # e.g. an invalid IPv6 literal
        return ""
    return host.removeprefix("www.")


def _as_sentences(text: str) -> str:
    """Lines joined into one flowing text; when there are several, each ends as a sentence."""
    lines = [_SPACES.sub(" ", line).strip() for line in text.splitlines()]
    lines = [line for line in lines if line]
    if len(lines) > 1:
        lines = [line if line[-1] in ".!?;:," else line + "." for line in lines]
    return _SPACE_BEFORE_PUNCTUATION.sub(r"\1", " ".join(lines))
