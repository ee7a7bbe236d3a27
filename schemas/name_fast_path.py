"""`parse_name`'s fast path (schemas/fields.py): the name shapes nameparser splits by position alone.

nameparser (2.6.0) runs every name through a pipeline of ~20,000 lines,
0.3 to 0.5 ms a name here. Apart from where a word stands, what it decides
comes from three things: its vocabulary (titles, suffixes, particles such as
"van", conjunctions, bound given names such as "abdul", maiden markers,
surnames, honorific tails, capitalization exceptions), punctuation (commas,
periods and initials, quotes and parentheses for nicknames), and scripts
(Han, hangul and kana names are read family name first: "王 小明" is 小明 王).
So only names of plain words are decided here: letters, joined inside a
word by an apostrophe or a hyphen, from the scripts below U+1100 or Latin
and Greek extended (U+1E00-U+1FFF), with no word (nor part of one) in
`VOCABULARY`, except a title in `LAST_TITLES` where a last name stands. Of
those, the shapes nameparser splits by position, first name first, as the
sandbox's people type them:

- "Jane Doe", "Sarah King": a first and a last name;
- "Cher": a first name alone;
- "Doe, Jane": the last name, a comma and a space, the first name;
- "Jane D.": a first name and one letter with its period, the last name.

Everything else goes through nameparser (three or more words, titles,
suffixes, particles, nicknames, initials elsewhere, other punctuation and
scripts), and every name does when the installed nameparser is not the
audited `VERSION`: its rules change between releases, so an upgrade turns
the fast path off until tests/test_name_parity.py passes with the new one.
Case is fixed by the caller with nameparser's own capitalization, as for
the names nameparser splits.
"""

from __future__ import annotations

import re

import nameparser

VERSION = "2.6.0"
ACTIVE = nameparser.__version__ == VERSION

_TITLES = ("titles", "given_name_titles")
_OTHER_WORDS = ("suffix_acronyms", "suffix_words", "suffix_acronyms_ambiguous", "particles", "particles_ambiguous",
                "conjunctions", "conjunctions_ambiguous", "bound_given_names", "maiden_markers", "surnames",
                "honorific_tails", "after_given_titles",
                "capitalization_exceptions")  # (word, its casing) pairs: words nameparser re-cases its own way


def _words(fields: tuple[str, ...]) -> frozenset[str]:
    """These fields' words in nameparser's default lexicon, lower-cased; none unless it is the audited one
    (another release may not have a `Lexicon` at all, and the fast path is off then anyway)."""
    if not ACTIVE:
        return frozenset()
    lexicon = nameparser.Lexicon.default()
    entries = (entry for name in fields for entry in getattr(lexicon, name))
    return frozenset((entry[0] if isinstance(entry, tuple) else entry).lower() for entry in entries)


# Every word nameparser knows: each may change where a word goes or how it is cased.
VOCABULARY = _words(_TITLES) | _words(_OTHER_WORDS)
# Titles and nothing else ("king", "judge"): a title only before a name; as its last word (or before the
# comma of "King, Sarah") a family name. Not those that are suffixes too ("sr", "lt").
LAST_TITLES = _words(_TITLES) - _words(_OTHER_WORDS)
# A plain word: letters, possibly joined by an apostrophe or hyphen ("O'Brien", "Jean-Luc").
_PLAIN_WORD = re.compile(r"[^\W\d_]+(?:['’-][^\W\d_]+)*")
# Scripts read given name first (not Han, hangul, kana, nor hangul jamo, which compose into hangul).
_GIVEN_FIRST = re.compile(r"[\u0000-\u10ff\u1e00-\u1fff]*")
_JOINS = re.compile(r"['’-]")
# One letter and its period: an initial.
_INITIAL = re.compile(r"[^\W\d_]\.")


def first_and_last_words(text: str) -> tuple[str, str | None] | None:
    """(first, last) words of a single-spaced name in one of the shapes above, as written; None otherwise."""
    if not ACTIVE or not _GIVEN_FIRST.fullmatch(text):
        return None
    head, comma, tail = text.partition(", ")
    if comma:
        return (tail, head) if _plain(tail) and _plain(head, LAST_TITLES) else None
    words = text.split(" ")
    if len(words) == 1:
        return (text, None) if _plain(text) else None
    if len(words) != 2 or not _plain(words[0]):
        return None
    first, last = words
    if _plain(last, LAST_TITLES) or (_INITIAL.fullmatch(last) is not None and _plain(last[0])):
        return first, last
    return None


def _plain(word: str, allowed: frozenset[str] = frozenset()) -> bool:
    """A plain word that no reading of nameparser's ties to a place: neither it nor a part of it is vocabulary.

    Parts count because nameparser capitalizes a particle inside a word by the word's place ("al-Hassan" as
    a last name, "Al-Hassan" as a first); a word whose case mappings do not round-trip ("ı", "ß") may match
    vocabulary in another case, so it is not plain either.
    """
    if _PLAIN_WORD.fullmatch(word) is None:
        return False
    lower = word.lower()
    if lower != word.upper().lower() or (lower in VOCABULARY and lower not in allowed):
        return False
    parts = _JOINS.split(lower)
    return len(parts) == 1 or not any(part in VOCABULARY for part in parts)
