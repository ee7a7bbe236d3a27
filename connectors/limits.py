"""Fitting outgoing values into a target field's length limit, the way the target counts it.

Both CRMs run on Java/JavaScript backends, whose strings count UTF-16 code
units: an emoji outside the Basic Multilingual Plane is two of them. So a
value's length here is its UTF-16 length, and a cut never falls between the
two halves of a surrogate pair (that half-emoji is exactly the lone
surrogate the normalizers remove on the way in).

A free-text value that is too long (a name, a transcript) is cut and may
carry a mark saying so; an exact value (an email, a phone, a key) is never
cut, since a shortened address is someone else's address: it is left out of
the payload instead. Either way the caller gets a `Cut` per field, a typed
figure the run reports per record; values that fit come back unchanged, so
the content hash of a record that needs no cut does not move.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Mapping


@dataclass(frozen=True)
class Cut:
    """One value that did not fit: its field, its length and the limit (UTF-16 units)."""

    field: str
    length: int
    limit: int
    dropped: bool = False  # an exact value left out rather than shortened

    def describe(self) -> str:
        """The cut in words, for display only."""
        verb = "left out" if self.dropped else "cut"
        return f"{self.field} {verb}: {self.length:,} characters, limit {self.limit:,}"


def utf16_length(text: str) -> int:
    """Length of `text` as Java's String.length() counts it."""
    if text.isascii():  # most values: no character outside the BMP, one unit each
        return len(text)
    return len(text) + sum(1 for ch in text if ord(ch) > 0xFFFF)


def cut_to(text: str, limit: int, mark: str = "") -> str:
    """`text` shortened to at most `limit` UTF-16 units, ending with `mark`, on a code point boundary."""
    if utf16_length(text) <= limit:
        return text
    if utf16_length(mark) >= limit:
        mark = ""
    room = limit - utf16_length(mark)
    units = 0
    for index, ch in enumerate(text):
        units += 2 if ord(ch) > 0xFFFF else 1
        if units > room:
            return text[:index] + mark
    return text  # not reached: the text is longer than the room


def fit(
    values: Mapping[str, object],
    limit_of: Callable[[str], int | None],
    *,
    exact: frozenset[str] = frozenset(),
    mark: str = "",
    marked: frozenset[str] | None = None,
) -> tuple[dict[str, object], tuple[Cut, ...]]:
    """Every string value fitted to `limit_of(field)` (None: no limit); returns (values, cuts).

    `exact` fields are left out rather than cut; a cut value ends with
    `mark` when its field is in `marked` (None: every field). Order and
    non-string values are kept as they are.
    """
    out: dict[str, object] = {}
    cuts: list[Cut] = []
    for name, value in values.items():
        limit = limit_of(name) if isinstance(value, str) else None
        length = utf16_length(value) if limit is not None else 0  # type: ignore[arg-type]
        if limit is None or length <= limit:
            out[name] = value
        elif name in exact:
            cuts.append(Cut(name, length, limit, dropped=True))
        else:
            tail = mark if marked is None or name in marked else ""
            out[name] = cut_to(value, limit, tail)  # type: ignore[arg-type]
            cuts.append(Cut(name, length, limit))
    return out, tuple(cuts)
