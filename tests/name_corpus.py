"""Messy names for the name parity test (tests/test_name_parity.py).

Deterministic (a fixed seed, `random.Random`) and offline: the sandbox's
people as its platforms render them (`render_name`), and their names run
through what people, forms and imports do to a name: case, whitespace,
commas and periods, initials, titles, suffixes, particles ("van", "al-"),
conjunctions, nicknames in quotes or parentheses, apostrophes and hyphens,
other scripts (Han and hangul are read family name first), combining marks,
digits and emoji. Every word of nameparser's vocabulary is also put in each
place of a short name: vocabulary is what makes a word's place matter.
`names(n)` gives `n` values for `parse_name(value)`.
"""

from __future__ import annotations

import random
from typing import Callable

from nameparser import Lexicon

from sandbox.seed import FIRST_NAMES, LAST_NAMES, UNICODE_FIRST_NAMES, UNICODE_LAST_NAMES, PeoplePool, render_name

SEED = 20261201
PEOPLE = 16384  # the sandbox people drawn from (its PeoplePool caches 16384)

_OTHER_SCRIPTS = (
    "王", "小明", "王小明", "김", "철수", "김철수", "田中", "太郎", "たなか", "タロウ", "Иван", "ПЕТРОВ", "Γιώργος",
    "محمد", "علي", "שרה", "สมชาย", "राम", "Nguyễn", "Văn", "Þóra", "ǅemal", "ǆemal", "İbrahim", "ıssız", "Straße",
    "STRASSE", "ﬁnn", "Ⅻ", "ⓐnna", "ᄀ", "e\u0301mile", "\u0301a", "Ꭰ",
)
_SPECIALS = (".", ",", ";", ":", "'", "’", "-", "--", "\"", "(", ")", "[", "]", "/", "&", "+", "#", "@", "!", "?", "…",
             "\u200b", "\u00ad", "\u200d", "\ufeff", "1", "2", "3rd", "😀", "👍🏽", "\u3000", "\u00a0", "\t", "\n")


def _vocabulary() -> list[str]:
    lexicon = Lexicon.default()
    fields = ("titles", "given_name_titles", "suffix_acronyms", "suffix_words", "suffix_acronyms_ambiguous",
              "particles", "conjunctions", "bound_given_names", "maiden_markers", "surnames", "honorific_tails",
              "after_given_titles")
    words = {word for name in fields for word in getattr(lexicon, name)}
    words.update(key for key, _ in lexicon.capitalization_exceptions)
    return sorted(words)


_VOCABULARY = _vocabulary()
_LETTERS = "abcdefghijklmnopqrstuvwxyzıİßÓØŁÇÉÑÜŞΩЖЯ王김"
_NAMES = FIRST_NAMES + LAST_NAMES + UNICODE_FIRST_NAMES + UNICODE_LAST_NAMES


def _word(rng: random.Random) -> str:
    """A name (mostly), a word of nameparser's vocabulary, another script's name, or a name's first letters."""
    pool = rng.choices((_NAMES, _VOCABULARY, _OTHER_SCRIPTS, ()), weights=(75, 10, 7, 8))[0]
    return rng.choice(pool) if pool else rng.choice(_NAMES)[: rng.randrange(1, 4)]


def _case(rng: random.Random, text: str) -> str:
    roll = rng.random()
    if roll < 0.55:
        return text
    if roll < 0.70:
        return text.lower()
    if roll < 0.85:
        return text.upper()
    if roll < 0.92:
        return text.title()
    return "".join(ch.upper() if rng.random() < 0.5 else ch.lower() for ch in text)


def _insert(rng: random.Random, text: str, piece: str) -> str:
    at = rng.randrange(len(text) + 1)
    return text[:at] + piece + text[at:]


def _shape(rng: random.Random, first: str, last: str) -> str:
    """The words arranged as forms and imports arrange them."""
    initial = rng.choice((first, last, rng.choice(_VOCABULARY), rng.choice(_OTHER_SCRIPTS)))[0]
    return rng.choice((
        f"{first} {last}", f"{first} {last}", f"{first} {last}", first, last, f"{last}, {first}", f"{last},{first}",
        f"{last} ,{first}", f"{last}, {first},", f"{first} {initial}.", f"{first} {initial}", f"{initial}. {last}",
        f"{first} {initial}. {last}", f"{first} {_word(rng)} {last}", f"{first} {last}-{_word(rng)}",
        f"{first} {last}'{_word(rng)}", f"{last}, {first} {_word(rng)}", f"{first} {last}.", f"{first}. {last}",
        f'{first} "{_word(rng)}" {last}', f"{first} ({_word(rng)}) {last}", f"{first} & {last}", f"{_word(rng)} {last}",
        f"{first} {_word(rng)}", f"{_word(rng)}, {first}", f"{last}, {_word(rng)}", f"{_word(rng)}",
        f"{first}-{last}", f"{first}’{last}", f"{first} {last} {_word(rng)}",
    ))


def _mutations() -> list[tuple[float, Callable[[random.Random, str], str]]]:
    """(probability, mutation of the whole name)."""
    return [
        (0.04, lambda r, t: r.choice(("Dr. ", "Dr ", "Mr ", "Mrs. ", "Ms ", "Prof. ", "Sir ", "King ", "Rev ")) + t),
        (0.03, lambda r, t: r.choice(_VOCABULARY) + " " + t),
        (0.04, lambda r, t: t + r.choice((" Jr.", " Jr", " Sr.", " III", " II", " IV", " PhD", " MD", " Esq.", ", Jr."))),
        (0.03, lambda r, t: t + " " + r.choice(_VOCABULARY)),
        (0.04, lambda r, t: _insert(r, t, r.choice((" van ", " van der ", " de ", " de la ", " al-", " bin ", " O'",
                                                    " Mc", " Ó ", " y ", " and ", " St. ")))),
        (0.05, lambda r, t: _insert(r, t, r.choice(_SPECIALS))),
        (0.02, lambda r, t: _insert(r, t, " " + r.choice(_OTHER_SCRIPTS) + " ")),
        (0.02, lambda r, t: t.replace(" ", r.choice(("  ", "\t", "\u00a0", " \n ", "\u3000", "\u2003")))),
        (0.01, lambda r, t: r.choice(("  ", "\t", "\n", "\u00a0")) + t + r.choice(("", " ", "\n"))),
        (0.01, lambda r, t: t * 2),
    ]


_MUTATIONS = _mutations()


def _edge_cases() -> list[object]:
    return [
        None, 1, 1.5, b"John Smith", ["John"], "", " ", "-", "?", "n/a", "Guest", "Unknown", "john@example.com",
        "+1 415 555 2671", "Cher", "CHER", "cher", "King", "Dr", "Jr", "van", "and", "Smith, John", "SMITH, JOHN",
        "Smith, Jr", "King, Sarah", "John S.", "JOHN S.", "John Y.", "John I.", "John Ó.", "j. smith", "王 小明",
        "김 철수", "田中 太郎", "Ahmed Abdul", "Mary Née", "O'Brien, Zoë", "o’neil", "d'angelo", "al-hassan",
    ]


def names(count: int, seed: int = SEED) -> list[object]:
    """`count` messy name values (deterministic for a seed)."""
    rng = random.Random(seed)
    pool = PeoplePool()
    values: list[object] = _edge_cases()
    values += [f"{w}" for w in _VOCABULARY] + [f"John {w}" for w in _VOCABULARY] + [f"{w}, John" for w in _VOCABULARY]
    values += [f"Smith, {w}" for w in _VOCABULARY] + [f"{w} Smith" for w in _VOCABULARY] + [f"Mary {w}." for w in _LETTERS]
    values += [f"mary {w.lower()}." for w in _LETTERS] + [f"MARY {w.upper()}." for w in _LETTERS]
    while len(values) < count:
        person = pool.person(rng.randrange(PEOPLE))
        if rng.random() < 0.45:
            values.append(render_name(person, rng))
            continue
        first, last = (rng.choice(_NAMES) if rng.random() < 0.1 else person.first_name,
                       _word(rng) if rng.random() < 0.1 else person.last_name)
        text = _case(rng, _shape(rng, first, last))
        for probability, mutate in _MUTATIONS:
            if rng.random() < probability:
                text = mutate(rng, text)
        values.append(text)
    return values[:count]
