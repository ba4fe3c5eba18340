"""Hostile-input-safe reading of answer text: size caps, one-pass tag scanning and bounded numbers.

Everything here runs in time linear in the text (no pattern can backtrack over more than a bounded window), uses
no recursion, and raises only `AnswerParseError` for bad input: a response over `MAX_RESPONSE_CHARS`, a number
longer than `MAX_NUMBER_CHARS` digits or outside its range (a pixel coordinate beyond `COORD_LIMIT`, a time
beyond `TIME_LIMIT` seconds), more than `MAX_ITEMS` answer items. Tags are matched case- and space-insensitively
(`< Answer >`, `</ answer>`); an element is a closing tag and the last opening tag of the same name before it
(a stray opening tag earlier is not part of the element; nested elements of one name yield the innermost).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

MAX_RESPONSE_CHARS = 1_000_000  # a response longer than this is not read
MAX_ITEMS = 2_000  # events, segments, objects or points in one answer
MAX_LABEL_CHARS = 300  # a class name or option text
MAX_NUMBER_CHARS = 15  # digits (and sign, point) of one number
COORD_LIMIT = 100_000  # |pixel coordinate|
TIME_LIMIT = 1_000_000.0  # seconds

TAG_NAMES = ("event", "range", "audio_event", "visual_event", "answer", "obj", "box", "points")

# A tag is `<`, at most 40 characters without `<`/`>`, then `>`: each `<` is looked at over a bounded window.
_TAG_TOKEN = re.compile(r"<([^<>]{1,40})>")
_TAG_BODY = re.compile(r"\s*(/?)\s*([A-Za-z_]+)\s*")
NUMBER = re.compile(r"-?\d+(?:\.\d+)?")


class AnswerParseError(ValueError):
    """A response has no readable answer of the expected kind (or breaks a size or range limit)."""


@dataclass(frozen=True)
class Tag:
    """One answer tag in a text: its name (lower case), whether it closes, and its span."""

    name: str
    closing: bool
    start: int
    end: int


@dataclass(frozen=True)
class Element:
    """One `<name>content</name>` element: the name, the content's span, and the whole element's span."""

    name: str
    inner_start: int
    inner_end: int
    start: int
    end: int

    def content(self, text: str) -> str:
        """The element's content with its whitespace collapsed."""
        return " ".join(text[self.inner_start : self.inner_end].split())


def check_text(text: object) -> str:
    """Return `text` when it is a string within the size cap; raise AnswerParseError otherwise."""
    if not isinstance(text, str):
        raise AnswerParseError("the response is not text")
    if len(text) > MAX_RESPONSE_CHARS:
        raise AnswerParseError(
            f"the response has {len(text)} characters (at most {MAX_RESPONSE_CHARS} are read)"
        )
    return text


def tags(text: str, names: Iterable[str] = TAG_NAMES) -> Iterator[Tag]:
    """Every opening or closing answer tag of the given names, in order (one linear pass)."""
    wanted = set(names)
    for m in _TAG_TOKEN.finditer(text):
        body = _TAG_BODY.fullmatch(m.group(1))
        if body and body.group(2).lower() in wanted:
            yield Tag(body.group(2).lower(), body.group(1) == "/", m.start(), m.end())


def elements(text: str, names: Iterable[str] = TAG_NAMES) -> list[Element]:
    """Every complete element of the given names, in order of their opening tags (one linear pass)."""
    pending: dict[str, Tag] = {}
    found: list[Element] = []
    for tag in tags(text, names):
        if not tag.closing:
            pending[tag.name] = tag
        elif tag.name in pending:
            open_tag = pending.pop(tag.name)
            found.append(Element(tag.name, open_tag.end, tag.start, open_tag.start, tag.end))
    found.sort(key=lambda e: e.start)
    return found


def last_element(text: str, name: str) -> Element:
    """The last `<name>..</name>` element of the text; AnswerParseError when there is none."""
    found = elements(text, (name,))
    if not found:
        raise AnswerParseError(f"no <{name}> tag in the response")
    return found[-1]


def only_separators(text: str, start: int, end: int, allowed: str = " \t\r\n,;") -> bool:
    """Whether text[start:end] holds nothing but separator characters."""
    return all(ch in allowed for ch in text[start:end])


def runs(items: list[Element], text: str, allowed: str = " \t\r\n,;") -> list[list[Element]]:
    """Split consecutive elements into runs: a gap with anything but separators starts a new run."""
    out: list[list[Element]] = []
    for item in items:
        if out and only_separators(text, out[-1][-1].end, item.start, allowed):
            out[-1].append(item)
        else:
            out.append([item])
    return out


def number(token: str, what: str, limit: float) -> float:
    """A number token as float, bounded: too many digits or |value| > limit raise AnswerParseError."""
    if len(token) > MAX_NUMBER_CHARS:
        raise AnswerParseError(f"{what}: the number {token[:20]}... has too many digits")
    value = float(token)
    if not abs(value) <= limit:
        raise AnswerParseError(f"{what}: {token} is outside [-{limit:g}, {limit:g}]")
    return value


def numbers(text: str, n: int | None, what: str, limit: float) -> list[float]:
    """The numbers in a text (exactly n of them when n is given), each bounded by `limit`."""
    tokens = NUMBER.findall(text, 0, len(text))
    if n is not None and len(tokens) != n:
        raise AnswerParseError(f"{what}: expected {n} numbers in {short(text)!r}")
    if len(tokens) > MAX_ITEMS:
        raise AnswerParseError(f"{what}: more than {MAX_ITEMS} numbers")
    return [number(t, what, limit) for t in tokens]


def coords(text: str, n: int, what: str) -> list[int]:
    """Exactly n pixel coordinates (rounded to integers) from a text."""
    return [int(round(v)) for v in numbers(text, n, what, COORD_LIMIT)]


def seconds(token: str, what: str) -> float:
    """One time in seconds from a number token, bounded by TIME_LIMIT."""
    return number(token, what, TIME_LIMIT)


def label(raw: str, what: str = "label") -> str:
    """A label with its whitespace collapsed; AnswerParseError when empty or longer than MAX_LABEL_CHARS."""
    if len(raw) > 4 * MAX_LABEL_CHARS:
        raise AnswerParseError(f"{what} is longer than {MAX_LABEL_CHARS} characters")
    text = " ".join(raw.split())
    if not text:
        raise AnswerParseError(f"empty {what}")
    if len(text) > MAX_LABEL_CHARS:
        raise AnswerParseError(f"{what} is longer than {MAX_LABEL_CHARS} characters")
    return text


def cap_items(items: list, what: str) -> list:
    """The list itself when it holds at most MAX_ITEMS entries; AnswerParseError otherwise."""
    if len(items) > MAX_ITEMS:
        raise AnswerParseError(f"more than {MAX_ITEMS} {what} in the answer")
    return items


def short(text: str, n: int = 60) -> str:
    """The first n characters of a text (for error messages)."""
    return text if len(text) <= n else text[:n] + "..."
