"""The profile's secrets and the one place that masks them: :class:`Secrets`.

A secret is any value that came from ``{ env = "NAME" }`` (a key, but also a path, a template, a
URL). :meth:`Secrets.mask` is the one function every output calls; :data:`OUTPUTS` is the one
list of those outputs (tests/test_secrets.py reads every one of them after runs that fail in
every way the fault tests know).

A value is masked in every form it may take on the way out: as is, JSON-escaped, ``repr()``-escaped,
as bytes (``b'Bearer ...'``), URL-quoted (by any library's rules: each character quoted or not),
with control characters escaped as the log writes them, each of these once more (a JSON record
logged as JSON), and with punctuation dropped or made a space (as
:func:`~magoo_core.speakable.speakable` cleans a reply for speaking). A structured value is also
masked in its parts: a template's text between its ``{fields}`` (what gets out is the template
filled in), and a URL's host, port, path and query (what an HTTP library's error quotes). Not
masked: a value cut short (a partial transcript cut at a space, a long reply cut for the
terminal), and values shorter than :data:`MIN_LENGTH`.

:func:`secret_problem` is the check the profile loader runs on each value: a control character
anywhere or white space at either end is refused, never stripped (the same value then works the
same everywhere, and the message names the variable, never the value).
"""

from __future__ import annotations

import io
import json
import re
import string
import unicodedata
from collections.abc import Callable, Iterable, Mapping
from typing import Any, TextIO
from urllib.parse import quote, quote_plus

MASK = "****"
#: secrets shorter than this are not masked: they would mask ordinary words
MIN_LENGTH = 4
#: C0 controls but tab, DEL, C1 controls, and the Unicode line and paragraph separators
CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f-\x9f\u2028\u2029]")
#: every character a secret may not hold: the above, and tab
_REFUSED = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")

#: Every output a secret must be masked on, and what masks it there. Adding an output is a line
#: here and a reader in tests/test_secrets.py (whose test fails for an output it cannot read).
OUTPUTS: Mapping[str, str] = {
    "stdout": "the turn story: ConsoleReporter masks each line, and magoo run writes stdout through Secrets.stream",
    "stderr": "the log in text and journal format (RedactingFormatter), the CLI's own lines such as"
    " 'magoo stopped:' and a traceback (magoo run writes stderr through Secrets.stream)",
    "json_log": "the log in JSON format (RedactingFormatter masks before JSON escapes, and after)",
    "events": "the log actuator's JSON-lines file (masked with the profile's secrets from the startup event)",
    "status": "status.json (the monitor masks the document before writing it)",
    "webhook": "webhook request bodies (the webhook actuator masks each body with the profile's secrets)",
}


def escape_controls(text: str) -> str:
    """``text`` with each control character but tab written as its escape (``\\n``, ``\\x1b``)."""
    return CONTROL.sub(lambda match: match.group().encode("unicode_escape").decode("ascii"), text)


def _json_ascii(text: str) -> str:
    return json.dumps(text)[1:-1]


def _json_unicode(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)[1:-1]


def _repr(text: str) -> str:
    return repr(text)[1:-1]


#: the ways a text is escaped on its way out; each is applied once, and twice in any order
_ENCODINGS: tuple[Callable[[str], str], ...] = (
    _json_ascii, _json_unicode, _repr, escape_controls, quote, lambda t: quote(t, safe=""), quote_plus,
)


_URL = re.compile(r"([^/?#]*)([^?#]*)(?:\?([^#]*))?(?:#(.*))?", re.S)


def _literal_pieces(value: str) -> list[str]:
    """The parts of a structured value that an output may show on their own: the text between
    the ``{fields}`` of a template (``"You asked: {text}"``, ``"out/reply-{n}.wav"``: what a
    filled-in template still shows of it), and the parts of a URL (an HTTP library's error
    quotes its port, its path or its query)."""
    pieces: list[str] = []
    if "{" in value:
        try:
            pieces += [literal for literal, _, _, _ in string.Formatter().parse(value) if literal]
        except ValueError:
            pass
    if "://" in value:  # split by hand: urlsplit() refuses the odd URLs whose errors quote them
        rest = value.split("://", 1)[1]
        netloc, path, query, fragment = _URL.match(rest).groups()
        host = netloc.rpartition("@")[2]
        port = host.rpartition(":")[2] if ":" in host else ""
        pieces += [rest, netloc, host, port, path, query or "", fragment or ""]
    return [piece for piece in pieces if piece and piece != value]


BACKSLASHES = r"\\+"  # escaped once, or escaped again
MAYBE_BACKSLASHES = r"\\*"
SPACE = r"\s"


def _hex(text: str) -> str:
    """``text`` (hex digits) as a pattern that takes either case."""
    return "".join(f"[{d.upper()}{d.lower()}]" if d.isalpha() else d for d in text)


def _char_forms(char: str) -> str:
    """A pattern for one character of a secret in any of its forms: as is, percent-encoded,
    escaped by JSON, ``repr()`` or a bytes ``repr()`` (behind any number of backslashes, as
    escaping twice gives)."""
    utf8 = char.encode("utf-8")
    forms = [re.escape(char), "".join(f"%{_hex(f'{b:02x}')}" for b in utf8)]
    if not char.isascii():
        code = ord(char)
        units = [code] if code < 0x10000 else [0xD800 + ((code - 0x10000) >> 10), 0xDC00 + ((code - 0x10000) & 0x3FF)]
        forms.append("".join(BACKSLASHES + f"u{_hex(f'{unit:04x}')}" for unit in units))  # JSON
        forms.append(BACKSLASHES + (f"x{_hex(f'{code:02x}')}" if code < 0x100 else f"u{_hex(f'{code:04x}')}"
                                     if code < 0x10000 else f"U{_hex(f'{code:08x}')}"))  # repr
        forms.append("".join(BACKSLASHES + f"x{_hex(f'{b:02x}')}" for b in utf8))  # bytes repr
        return f"(?:{'|'.join(forms)})"
    return f"(?:{MAYBE_BACKSLASHES}(?:{'|'.join(forms)}))"


def _any_quoting(piece: str) -> str | None:
    """A regular expression for ``piece`` whatever happened to each of its characters on the way
    out: percent-encoded or not (URL quoting differs between a path and a query, and between
    libraries), escaped once or twice, and punctuation dropped or made a space (as
    :func:`~magoo_core.speakable.speakable` does to markdown). None when too little of it is
    letters, digits or non-ASCII text to tell it apart from other text."""
    kept = [char for char in piece if char.isalnum() or not char.isascii()]
    if len(kept) < MIN_LENGTH:
        return None
    parts = []
    for char in piece:
        if char.isascii() and char.isalnum():
            parts.append(re.escape(char))
        elif char.isascii() or char.isspace():  # punctuation and spaces may be dropped or become a space
            parts.append(f"(?:{_char_forms(char)}|[+]|{SPACE})?")
        else:
            parts.append(_char_forms(char))
    return "".join(parts)


def encodings(value: str) -> set[str]:
    """Every form ``value`` may take in an output: see the module docstring. A template's
    pieces between its ``{fields}`` count as forms too."""
    from .speakable import speakable  # a reply is spoken, and told, as speakable() made it

    pieces = {value, *_literal_pieces(value)}
    pieces |= {speakable(piece).strip() for piece in pieces}
    once = pieces | {encode(piece) for piece in pieces for encode in _ENCODINGS}
    forms = once | {encode(form) for form in once for encode in _ENCODINGS}
    forms |= {repr(piece.encode("utf-8"))[2:-1] for piece in pieces}
    forms |= {unicodedata.normalize("NFC", piece) for piece in pieces}
    return {form for form in forms if len(form) >= MIN_LENGTH}


class Secrets:
    """The profile's secret values and :meth:`mask`, the function every output calls.

    Built once per run from the loaded profile (``profile.secrets``); immutable, so any thread
    may call it. Masking is one precompiled regular expression: longest forms first, so a
    secret that holds another is masked whole.
    """

    def __init__(self, values: Iterable[str] = (), *, mask: str = MASK) -> None:
        self._mask = mask
        self.values = frozenset(value for value in values if len(value) >= MIN_LENGTH)
        forms = set().union(*(encodings(value) for value in self.values)) if self.values else set()
        pieces = {piece for value in self.values for piece in (value, *_literal_pieces(value)) if len(piece) >= MIN_LENGTH}
        quoted = [_any_quoting(piece) for piece in sorted(pieces, key=len, reverse=True)]
        ordered = [q for q in quoted if q] + [re.escape(form) for form in sorted(forms, key=len, reverse=True)]
        self._pattern = re.compile("|".join(ordered)) if ordered else None

    def __bool__(self) -> bool:
        return self._pattern is not None

    def __repr__(self) -> str:
        return f"Secrets({len(self.values)} values)"

    def mask(self, text: str) -> str:
        """``text`` with every secret, in each of its encodings, replaced by the mask (``****``)."""
        if self._pattern is None or not text:
            return text
        for _ in range(8):  # a secret may reappear where a mask meets its own '*'s ("a***" in "aa***")
            masked = self._pattern.sub(self._mask, text)
            if masked == text:
                break
            text = masked
        return text

    def mask_data(self, value: Any) -> Any:
        """``value`` (JSON-like: dicts, lists, strings, numbers) with every string masked, keys too."""
        if isinstance(value, str):
            return self.mask(value)
        if isinstance(value, Mapping):
            return {self.mask_data(k): self.mask_data(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [self.mask_data(v) for v in value]
        return value

    def stream(self, out: TextIO) -> TextIO:
        """``out`` behind a writer that masks what goes through it (see :class:`MaskedStream`)."""
        return MaskedStream(out, self) if self else out


class MaskedStream(io.TextIOBase):
    """A text stream that masks secrets before they reach ``out``.

    Text is held until a line ends (or ``flush()``), so a secret written in two pieces is still
    masked. Not thread-safe: one writer, as a ``print`` or a logging handler is.
    """

    def __init__(self, out: TextIO, secrets: Secrets) -> None:
        super().__init__()
        self.out = out
        self.secrets = secrets
        self._pending = ""

    def write(self, text: str) -> int:
        self._pending += text
        end = self._pending.rfind("\n")
        if end >= 0:
            done, self._pending = self._pending[: end + 1], self._pending[end + 1 :]
            self.out.write(self.secrets.mask(done))
        return len(text)

    def flush(self) -> None:
        if self._pending:
            self.out.write(self.secrets.mask(self._pending))
            self._pending = ""
        self.out.flush()

    def writable(self) -> bool:
        return True

    def isatty(self) -> bool:
        return self.out.isatty()

    def fileno(self) -> int:
        return self.out.fileno()

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return getattr(self.out, "encoding", "utf-8")


_NAMES = {"\r": "a line break (CR)", "\n": "a line break (LF)", "\t": "a tab"}


def secret_problem(name: str, value: str) -> str | None:
    """What is wrong with ``value`` as the value of the variable ``name``, in one line that names
    the variable and never shows the value; None when nothing is.

    Refused: a control character anywhere (CR, LF, tab, escape ...), and white space at either end.
    """
    found = _REFUSED.search(value)
    if found is not None:
        char = found.group()
        what = _NAMES.get(char, f"a control character (U+{ord(char):04X})")
        if found.start() == len(value) - 1:
            where = "at its end"
        elif found.start() == 0:
            where = "at its start"
        else:
            where = f"at character {found.start() + 1}"
        hint = "a .env saved on Windows? Remove it" if char == "\r" else "a copy-paste? Remove it"
        return f"{name} has {what} {where}: {hint}"
    if value != value.strip():
        where = "at its end" if value[-1:].isspace() else "at its start"
        return f"{name} has white space {where}: a copy-paste? Remove it"
    return None
