"""Reply text made fit for a speech synthesizer.

Language models answer in chat style: markdown emphasis and lists, code fences, links, bare URLs,
sometimes a JSON object. A synthesizer reads all of that aloud ("asterisk asterisk", "h t t p s
colon slash slash ..."). :func:`speakable` keeps the words and drops the markup. It is pure and
fast (regular expressions only), so the engine runs it on every reply before text-to-speech.
"""

from __future__ import annotations

import json
import re
from urllib.parse import urlsplit

#: Keys under which a model that answered in JSON usually put the sentence to say.
_JSON_TEXT_KEYS = ("text", "reply", "answer", "response", "message", "content", "speech", "say")

_CODE_FENCE = re.compile(r"```[^\n]*\n?(.*?)```", re.DOTALL)
_IMAGE = re.compile(r"!\[([^\]]*)\]\([^)]*\)")
_LINK = re.compile(r"\[([^\]]+)\]\(([^)\s]+)[^)]*\)")
_URL = re.compile(r"\b(?:https?://|www\.)[^\s<>\"')\]]+", re.IGNORECASE)
_HEADING = re.compile(r"^\s{0,3}#{1,6}\s*", re.MULTILINE)
_QUOTE = re.compile(r"^\s*>\s?", re.MULTILINE)
_BULLET = re.compile(r"^\s*(?:[-*+•]|\d{1,3}[.)])\s+", re.MULTILINE)
_RULE = re.compile(r"^\s*([-*_])(?:\s*\1){2,}\s*$", re.MULTILINE)
_EMPHASIS = re.compile(r"(\*{1,3}|~~|(?<!\w)_{1,3})(?=\S)(.+?)(?<=\S)\1(?!\w)")
_INLINE_CODE = re.compile(r"`([^`]*)`")
_TABLE_RULE = re.compile(r"^\s*\|?\s*:?-{2,}:?\s*(?:\|\s*:?-{2,}:?\s*)*\|?\s*$", re.MULTILINE)
_JSON_PUNCTUATION = re.compile(r'[{}\[\]"]|(?<=\w)":|\\n')
_LEFTOVER_MARKS = re.compile(r"[*_#`|~]+")
_SPACES = re.compile(r"[ \t]+")


def speakable(text: str) -> str:
    """The words of ``text`` without markdown, code fences, URLs or JSON punctuation.

    Links keep their label, a bare URL becomes its host name ("example.com"), list items and
    lines become sentences, a JSON object answer becomes the sentence under a key like
    ``"text"`` or ``"answer"`` (or all its string values). Plain text comes back unchanged
    apart from whitespace.
    """
    text = _from_json(text.strip())
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
        text = _EMPHASIS.sub(lambda m: m.group(2), text)
    text = _INLINE_CODE.sub(lambda m: m.group(1), text)
    text = _JSON_PUNCTUATION.sub(" ", text)
    text = _LEFTOVER_MARKS.sub(" ", text)
    return _as_sentences(text)


def _from_json(text: str) -> str:
    """The text inside a JSON answer (whole or fenced), else ``text`` unchanged."""
    candidate = text
    fenced = re.fullmatch(r"```(?:json)?\s*(.*?)\s*```", text, re.DOTALL)
    if fenced:
        candidate = fenced.group(1)
    if not candidate.startswith(("{", "[")):
        return text
    try:
        data = json.loads(candidate)
    except ValueError:
        return text  # a fragment: the punctuation is stripped later
    strings = _strings(data)
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
    host = urlsplit(url).hostname or ""
    return host.removeprefix("www.")


def _as_sentences(text: str) -> str:
    """Lines joined into one flowing text; when there are several, each ends as a sentence."""
    lines = [_SPACES.sub(" ", line).strip() for line in text.splitlines()]
    lines = [line for line in lines if line]
    if len(lines) > 1:
        lines = [line if line[-1] in ".!?;:," else line + "." for line in lines]
    return re.sub(r"\s+([,.;:!?])", r"\1", " ".join(lines))
