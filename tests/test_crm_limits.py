"""The one capping rule both CRM mappings use (connectors/limits.py), no server.

Covers UTF-16 counting (an emoji is two units, as Java/JavaScript count),
cuts that never split a surrogate pair, the mark, exact values left out
rather than shortened, values that fit coming back untouched (so their
content hash does not move), and a property-based run over any text.
"""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from connectors.limits import Cut, cut_to, fit, utf16_length

EMOJI = "\U0001F600"  # outside the BMP: two UTF-16 code units


def test_length_is_counted_in_utf16_code_units() -> None:
    assert utf16_length("abc") == 3
    assert utf16_length(EMOJI) == 2
    assert utf16_length("é" + EMOJI * 3) == 7


def test_a_cut_never_splits_an_emoji() -> None:
    text = "ab" + EMOJI + "cd"  # 6 units
    assert cut_to(text, 3) == "ab"  # the emoji would need units 3 and 4: left out whole
    assert cut_to(text, 4) == "ab" + EMOJI
    assert cut_to(text, 6) == text


def test_the_mark_counts_against_the_limit() -> None:
    assert cut_to("x" * 20, 10, " [cut]") == "xxxx [cut]"
    assert cut_to("x" * 20, 4, " [cut]") == "xxxx"  # no room for the mark: a plain cut


def test_fit_cuts_free_text_and_leaves_exact_values_out() -> None:
    values = {"FirstName": "F" * 50, "Email": "e" * 70 + "@example.com", "Phone": "+15551234567", "Count": 3}
    limits = {"FirstName": 40, "Email": 80, "Phone": 40}
    fitted, cuts = fit(values, limits.get, exact=frozenset({"Email"}))
    assert fitted == {"FirstName": "F" * 40, "Phone": "+15551234567", "Count": 3}
    assert cuts == (Cut("FirstName", 50, 40), Cut("Email", 82, 80, dropped=True))
    assert cuts[1].describe() == "Email left out: 82 characters, limit 80"


def test_values_that_fit_come_back_as_they_are() -> None:
    values = {"a": "short", "b": EMOJI * 5, "c": None}
    fitted, cuts = fit(values, lambda _name: 10)
    assert fitted == values and list(fitted) == list(values) and cuts == ()


@given(st.text(), st.integers(min_value=0, max_value=64), st.sampled_from(["", " [truncated]"]))
def test_any_cut_fits_is_a_prefix_and_is_valid_utf16(text: str, limit: int, mark: str) -> None:
    out = cut_to(text, limit, mark)
    assert utf16_length(out) <= limit
    out.encode("utf-16-le")  # never a lone surrogate made by the cut
    if out != text:
        kept = out[: len(out) - len(mark)] if mark and out.endswith(mark) else out
        assert text.startswith(kept)
