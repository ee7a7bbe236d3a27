"""A faster validator is admitted only with the same answers as the reference, value by value.

`normalize_phone` lets rphonenumbers decide where it cannot differ from
phonenumbers (schemas/phone_fast_path.py). Here both are run on 100,000 messy
(value, region) pairs from tests/validator_corpus.py, a fixed seed: the
normalizer against the rule computed with phonenumbers alone, called
directly. One differing value fails the test, naming the first few.
"""

from __future__ import annotations

from typing import Any, Iterator

import phonenumbers
import pytest
from phonenumbers import re_util

from schemas import phone_fast_path
from schemas.fields import is_identity_phone, normalize_phone
from tests.validator_corpus import REGIONS, phones

COUNT = 100_000


def reference_phone(value: Any, region: str | None) -> str | None:
    """The phone rule (schemas/fields.py) with phonenumbers only, as it was before the fast path."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int):
        value = str(value)
    if not isinstance(value, str) or not value.strip():
        return None
    text = value.strip()
    if not any(ch.isdigit() for ch in text):
        return None
    try:
        number = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(number):
        return None
    if len(phonenumbers.normalize_digits_only(text)) < len(str(number.national_number) + (number.extension or "")):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


@pytest.fixture(scope="module", autouse=True)
def compiled_patterns_kept() -> Iterator[None]:
    """phonenumbers keeps its compiled regexes (the same patterns, compiled once: the same answers).

    Without it, the corpus' ~250 regions overflow `re`'s cache and the reference spends most of its time compiling.
    """
    kept = re_util._COMPILED_PATTERNS
    re_util.enable_pattern_cache()
    yield
    re_util._COMPILED_PATTERNS = kept


@pytest.fixture(scope="module")
def corpus() -> list[tuple[Any, str | None]]:
    return phones(COUNT)


@pytest.fixture(scope="module")
def expected(corpus: list[tuple[Any, str | None]]) -> list[str | None]:
    return [reference_phone(value, region) for value, region in corpus]


def _differing(pairs: list[tuple[Any, Any, Any]]) -> str:
    shown = "\n".join(f"  {given!r}: reference {want!r}, ours {got!r}" for given, want, got in pairs[:8])
    return f"{len(pairs)} values differ, the first ones:\n{shown}"


def test_the_corpus_is_messy_and_large(corpus: list[tuple[Any, str | None]], expected: list[str | None]) -> None:
    assert len(corpus) >= 100_000
    assert phones(500) == corpus[:500]  # deterministic: the same seed gives the same values
    kept = sum(e is not None for e in expected)
    assert 0.2 * COUNT < kept < 0.8 * COUNT, kept  # both answers are common
    assert {region for _, region in corpus} >= set(REGIONS)


def test_normalize_phone_gives_the_reference_s_answer_for_every_value(
    corpus: list[tuple[Any, str | None]], expected: list[str | None]
) -> None:
    got = [normalize_phone(value, region) for value, region in corpus]
    differ = [((value, region), want, have) for (value, region), want, have in zip(corpus, expected, got) if want != have]
    assert not differ, _differing(differ)


def test_is_identity_phone_agrees_with_the_reference(expected: list[str | None]) -> None:
    canonical = sorted({e for e in expected if e is not None})[::4]
    candidates = canonical + [e[:-1] for e in canonical[::8]] + [e + "0" for e in canonical[::8]]
    differ = [(e, want, have) for e in candidates
              if (want := reference_phone(e, None) == e) != (have := is_identity_phone(e))]
    assert not differ, _differing(differ)


def test_the_fast_path_is_on_and_decides_many_values(corpus: list[tuple[Any, str | None]]) -> None:
    """The comparison above is only worth something while rphonenumbers answers: the audited versions are installed."""
    assert phone_fast_path.ACTIVE, "not the audited (rphonenumbers, phonenumbers) pair: see schemas/phone_fast_path.py"
    decided = 0
    for value, region in corpus[:20_000]:
        if isinstance(value, str) and value.strip():
            decided += phone_fast_path.phone_by_rphonenumbers(
                value.strip(), region, lambda lib, n, t: True) is not phone_fast_path.UNDECIDED
    assert decided > 0.4 * 20_000, decided
