"""`normalize_phone`'s fast path (schemas/fields.py): rphonenumbers decides where it cannot differ from phonenumbers.

rphonenumbers (0.1.0) runs phonenumbers' parsing and validation as a Rust port
of libphonenumber, about five times faster here. phonenumbers stays the
reference: a canonical phone keys a person, so the fast path may only give the
answer phonenumbers would give. Its code is ported function by function (the
port's own differential suite compares them, and tests/test_validator_parity.py
compares the two here on 100,000 messy phones), but its metadata is that of
phonenumbers 9.0.41, while the pinned reference is 9.0.43. Parsing and
validating a number read the metadata of the default region (upper-cased) and
of the regions of the number's country code, nothing else (formatting to E.164
reads none), so rphonenumbers decides only when none of those is in `STALE`:
the regions whose file under phonenumbers/data differs between the 9.0.41 and
9.0.43 wheels (`alt_format_*` files differ too, but only the matcher reads
them). phonenumbers decides everything else:

- a default region in `STALE`, or a number whose country code has a region in
  `STALE` (or whose region list differs between the two libraries);
- any exception from rphonenumbers: a parse error (without a number there is
  no country code to check), or text Rust cannot take (lone surrogates);
- every value, when the installed versions are not the audited `PAIR`: an
  upgrade of either library turns the fast path off until `STALE` is made
  again for the new pair (diff the two releases' phonenumbers/data) and the
  parity test passes with it.
"""

from __future__ import annotations

from typing import Any, Callable

import phonenumbers
import phonenumbers.re_util
import rphonenumbers

# For what phonenumbers decides: keep its compiled metadata patterns rather than compiling them per call
# (its own switch; the same answers in about half the time).
phonenumbers.re_util.enable_pattern_cache()

# (rphonenumbers, the phonenumbers release whose metadata it ships, phonenumbers): the audited pair.
PAIR = ("0.1.0", "9.0.41", "9.0.43")
STALE = frozenset(
    "AU AX BJ BW CC CN CO CR CV CX DE DK EC ES ET FI GE GH GY IN KE KW LA PG PY RO RU SH ZW".split()
)
ACTIVE = (rphonenumbers.__version__, rphonenumbers.__phonenumbers_version__, phonenumbers.__version__) == PAIR


def _stale_codes() -> frozenset[int]:
    reference = phonenumbers.COUNTRY_CODE_TO_REGION_CODE
    fast = rphonenumbers.COUNTRY_CODE_TO_REGION_CODE
    return frozenset(
        code for code in set(reference) | set(fast)
        if STALE & set(reference.get(code, ())) or tuple(reference.get(code, ())) != tuple(fast.get(code, ()))
    )


STALE_CODES = _stale_codes()
UNDECIDED = object()


def phone_by_rphonenumbers(text: str, region: str | None, is_identity: Callable[[Any, Any, str], bool]) -> Any:
    """The E.164 phone or None that phonenumbers would give for stripped `text`, or UNDECIDED.

    `is_identity(lib, number, typed)` is the phone rule (schemas/fields.py), run with rphonenumbers.
    """
    if not ACTIVE or not (region is None or (type(region) is str and region.upper() not in STALE)):
        return UNDECIDED
    try:
        number = rphonenumbers.parse(text, region)
    except Exception:  # NumberParseException, or what Rust cannot take (UnicodeEncodeError on lone surrogates)
        return UNDECIDED
    if number.country_code in STALE_CODES:
        return UNDECIDED
    if not is_identity(rphonenumbers, number, text):
        return None
    return rphonenumbers.format_number(number, rphonenumbers.PhoneNumberFormat.E164)
