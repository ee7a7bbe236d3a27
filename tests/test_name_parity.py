"""`parse_name`'s fast path gives nameparser's answer, name by name.

`parse_name` splits the names nameparser would split by position alone
without it (schemas/name_fast_path.py). Here it runs on 100,000 messy names
from tests/name_corpus.py, a fixed seed, against nameparser after the
placeholder check (`_parse_with_nameparser`, as parse_name was before the
fast path). Every distinct text the fast path decides is compared (nameparser
costs ~0.3 ms a name, so each text once); the texts it leaves to nameparser
go through the same call either way, and a sample of them is compared too.
One differing name fails the test, naming the first few.
"""

from __future__ import annotations

import random
from typing import Any

import pytest

from sandbox.seed import PeoplePool, render_name
from schemas import name_fast_path
from schemas.fields import NameParts, _is_placeholder, _parse_with_nameparser, _simple_first_last, parse_name
from tests.name_corpus import names

COUNT = 100_000
_EMPTY = NameParts(None, None, None)


def _text(value: Any) -> str | None:
    """The single-spaced text parse_name splits, None for what it never splits (non-strings, placeholders)."""
    if not isinstance(value, str):
        return None
    text = " ".join(value.split())
    return None if _is_placeholder(text) else text


@pytest.fixture(scope="module")
def corpus() -> list[Any]:
    return names(COUNT)


@pytest.fixture(scope="module")
def by_text(corpus: list[Any]) -> dict[str, Any]:
    """Each distinct text and one value that gives it."""
    texts: dict[str, Any] = {}
    for value in corpus:
        if (text := _text(value)) is not None:
            texts.setdefault(text, value)
    return texts


@pytest.fixture(scope="module")
def decided(by_text: dict[str, Any]) -> set[str]:
    return {text for text in by_text if _simple_first_last(text) is not None}


def _differing(rows: list[tuple[Any, Any, Any]]) -> str:
    shown = "\n".join(f"  {given!r}: nameparser {want}, ours {got}" for given, want, got in rows[:8])
    return f"{len(rows)} names differ, the first ones:\n{shown}"


def test_the_corpus_is_messy_and_large(corpus: list[Any], by_text: dict[str, Any], decided: set[str]) -> None:
    assert len(corpus) >= 100_000
    assert names(500) == corpus[:500]  # deterministic: the same seed gives the same values
    assert len(by_text) > 0.5 * COUNT, len(by_text)
    assert 0.2 * len(by_text) < len(decided) < 0.8 * len(by_text), len(decided)  # both paths are common
    for shape in (", ", ".", "'", "-"):  # "Doe, Jane", "Jane D.", "O'Brien", "Jean-Luc"
        assert sum(shape in text for text in decided) > 50, shape
    assert sum(" " not in text for text in decided) > 50  # "Cher"
    assert sum("王" in text or "김" in text for text in by_text) > 50  # names read family name first


def test_parse_name_gives_nameparser_s_answer_where_the_fast_path_decides(
    by_text: dict[str, Any], decided: set[str]
) -> None:
    differ = [(text, want, got) for text in sorted(decided)
              if (want := _parse_with_nameparser(text)) != (got := parse_name(by_text[text]))]
    assert not differ, _differing(differ)


def test_parse_name_gives_nameparser_s_answer_elsewhere(
    corpus: list[Any], by_text: dict[str, Any], decided: set[str]
) -> None:
    rest = sorted(set(by_text) - decided)[::15]
    differ = [(text, want, got) for text in rest
              if (want := _parse_with_nameparser(text)) != (got := parse_name(by_text[text]))]
    unsplit = [(value, _EMPTY, got) for value in corpus[:5_000] if _text(value) is None and (got := parse_name(value)) != _EMPTY]
    assert not differ + unsplit, _differing(differ + unsplit)


def test_the_fast_path_is_on_and_decides_most_sandbox_names() -> None:
    """The comparison above is only worth something while the fast path answers: the audited nameparser."""
    assert name_fast_path.ACTIVE, "not the audited nameparser: see schemas/name_fast_path.py"
    pool = PeoplePool()
    typed = [text for i in range(5_000) if (text := _text(render_name(pool.person(i), random.Random(i))))]
    taken = sum(_simple_first_last(text) is not None for text in typed)
    assert taken > 0.9 * len(typed), (taken, len(typed))
