"""A faster validator is admitted only with the same answers as the reference, value by value.

`normalize_phone` lets rphonenumbers decide where it cannot differ from
phonenumbers (schemas/phone_fast_path.py), and `normalize_email` lets emval
decide where it cannot differ from email-validator (schemas/email_fast_path.py).
Here each normalizer is run on 100,000 messy values from
tests/validator_corpus.py, a fixed seed, against the rule computed with the
reference library alone, called directly. One differing value fails the test,
naming the first few.
"""

from __future__ import annotations

import random
from typing import Any, Iterator

import phonenumbers
import pytest
from email_validator import EmailNotValidError, validate_email
from phonenumbers import re_util

from sandbox.seed import PeoplePool, render_email
from schemas import email_fast_path, phone_fast_path
from schemas.fields import is_identity_phone, normalize_email, normalize_phone
from tests.validator_corpus import REGIONS, emails, phones

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


# --- emails ------------------------------------------------------------------------------


def _as_validated(value: Any) -> str | None:
    """What normalize_email hands a validator: stripped, `mailto:` dropped, lower-cased; None when it hands nothing."""
    if not isinstance(value, str):
        return None
    text = value.strip()
    if text.lower().startswith("mailto:"):
        text = text[len("mailto:"):].strip()
    return text.lower() if text and "@" in text else None


def reference_email(value: Any) -> str | None:
    """normalize_email (schemas/fields.py) with email-validator only, as it was before the fast path."""
    text = _as_validated(value)
    if text is None:
        return None
    try:
        return validate_email(text, check_deliverability=False, allow_display_name=True).normalized
    except EmailNotValidError:
        return None


@pytest.fixture(scope="module")
def email_corpus() -> list[Any]:
    return emails(COUNT)


@pytest.fixture(scope="module")
def email_expected(email_corpus: list[Any]) -> list[str | None]:
    return [reference_email(value) for value in email_corpus]


def test_the_email_corpus_is_messy_and_large(email_corpus: list[Any], email_expected: list[str | None]) -> None:
    assert len(email_corpus) >= 100_000
    assert emails(500) == email_corpus[:500]  # deterministic: the same seed gives the same values
    kept = sum(e is not None for e in email_expected)
    assert 0.2 * COUNT < kept < 0.8 * COUNT, kept  # both answers are common
    changed = sum(e is not None and e != v for v, e in zip(email_corpus, email_expected))
    assert changed > 0.05 * COUNT, changed  # and many accepted values are rewritten (case, NFC, IDNA, display names)


def test_normalize_email_gives_the_reference_s_answer_for_every_value(
    email_corpus: list[Any], email_expected: list[str | None]
) -> None:
    got = [normalize_email(value) for value in email_corpus]
    differ = [(value, want, have) for value, want, have in zip(email_corpus, email_expected, got) if want != have]
    assert not differ, _differing(differ)


def _emval_decides(value: Any) -> bool:
    text = _as_validated(value)
    return text is not None and email_fast_path.email_by_emval(text) is not email_fast_path.UNDECIDED


def test_the_email_fast_path_is_on_and_decides_many_values(email_corpus: list[Any]) -> None:
    """The comparison above is only worth something while emval answers: the audited versions are installed.

    The corpus is mostly mess, so a third is plain; what the sandbox's people type is nearly all plain.
    """
    assert email_fast_path.ACTIVE, "not the audited (emval, email-validator) pair: see schemas/email_fast_path.py"
    decided = sum(_emval_decides(value) for value in email_corpus[:20_000])
    assert decided > 0.25 * 20_000, decided
    pool = PeoplePool()
    typed = [render_email(pool.person(i), random.Random(i)) for i in range(5_000)]
    decided = sum(_emval_decides(value) for value in typed)
    assert decided > 0.9 * len(typed), decided
