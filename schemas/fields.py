"""Field normalizers shared by every source: email, phone, name, time, tags.

Each function takes whatever a payload holds (str, number, None, garbage)
and returns the canonical value, or None when there is nothing usable.
Only `parse_timestamp` raises (`InvalidRecord("bad_timestamp")`), so that a
caller can decide whether a bad time is a warning or a reason to quarantine.
The characters of every canonical string and the id rule are in
`schemas/text.py` (`clean_text`, `parse_source_id`).
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from datetime import date, datetime, timezone
from email.utils import parsedate_to_datetime
from typing import Any, Iterable

import phonenumbers
from email_validator import EmailNotValidError, validate_email
from nameparser import HumanName

from schemas.email_fast_path import UNDECIDED as EMAIL_UNDECIDED, email_by_emval
from schemas.errors import BAD_TIMESTAMP, InvalidRecord
from schemas.name_fast_path import first_and_last_words
from schemas.phone_fast_path import UNDECIDED, phone_by_rphonenumbers

# --- email -------------------------------------------------------------------


def normalize_email(value: Any) -> str | None:
    """Trimmed, lower-cased, syntax-checked email (no DNS), or None when invalid.

    Accepts `mailto:` prefixes and display-name forms (`John <john@x.com>`).
    Special-use domains (`.test`, `.local`, `localhost`, ...) are invalid.
    """
    if not isinstance(value, str):
        return None
    text = value.strip()
    if text.lower().startswith("mailto:"):
        text = text[len("mailto:"):].strip()
    if not text or "@" not in text:
        return None
    lowered = text.lower()
    if (fast := email_by_emval(lowered)) is not EMAIL_UNDECIDED:  # where it must agree with email-validator
        return fast  # type: ignore[no-any-return]
    try:
        return validate_email(lowered, check_deliverability=False, allow_display_name=True).normalized
    except EmailNotValidError:
        return None


# --- phone -------------------------------------------------------------------
#
# The phone rule (DESIGN.md, "Matching people"; docs/identity.md): a phone
# is an identity, and so a canonical value, only when libphonenumber says
# the number is valid for its region (`is_valid_number`) AND its digits were
# typed as digits. Not identities: a number that merely has the right length
# (the fictional +1 555 area code of the platforms' docs, `+15551234567`),
# and anything spelled with letters (`555-CALL-NOW`, `1-800-FLOWERS`), which
# libphonenumber would read as keypad digits, so that five strangers who
# typed the same placeholder would share one number. Such a value is
# dropped with an "invalid_phone" warning (schemas/_common.read_phone): it
# never keys or joins a person. Everything downstream (the SQL rule in the
# state store, schemas.identity, the AgentPro visitor key) trusts that a
# canonical phone passed this one check.


def normalize_phone(value: Any, region: str | None = "US") -> str | None:
    """E.164 form of a phone number that is an identity (rule above), or None.

    `region` is the country assumed for numbers written without `+`.
    Separators, `tel:` prefixes and extensions (`ext. 12`, dropped) are
    fine; `12345`, `0000000000`, `n/a`, `+1 555 123 4567` and letters are not.
    """
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int):
        value = str(value)
    if not isinstance(value, str) or not value.strip():
        return None
    text = value.strip()
    if not any(ch.isdigit() for ch in text):
        return None
    fast = phone_by_rphonenumbers(text, region, _is_identity)  # where it must agree with phonenumbers
    if fast is not UNDECIDED:
        return fast  # type: ignore[return-value]
    try:
        number = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException:
        return None
    if not is_identity_number(number, text):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def is_identity_number(number: phonenumbers.PhoneNumber, typed: str) -> bool:
    """True when `number` (parsed from `typed`) is valid for its region and was typed in digits.

    phonenumbers turns letters into keypad digits before anything else, so
    the only trace of `555-CALL-NOW` in the parsed number is that `typed`
    holds fewer digits than its national number and extension are made of.
    """
    return _is_identity(phonenumbers, number, typed)


def _is_identity(lib: Any, number: Any, typed: str) -> bool:
    if not lib.is_valid_number(number):  # is_identity_number's rule, with phonenumbers or rphonenumbers
        return False
    made_of = str(number.national_number) + (number.extension or "")
    return len(lib.normalize_digits_only(typed)) >= len(made_of)


def is_identity_phone(e164: Any) -> bool:
    """True when a stored canonical phone still passes the rule (for records normalized by an older one).

    Only validity can be checked from an E.164 value; a letters-number is
    caught when its raw payload is normalized again.
    """
    return isinstance(e164, str) and e164.startswith("+") and normalize_phone(e164, None) == e164


# --- names -------------------------------------------------------------------

# Values chat platforms put in a name field when they do not know the name.
PLACEHOLDER_NAMES = frozenset(
    {"", "-", "--", "?", "n/a", "na", "none", "null", "nil", "unknown", "anonymous",
     "anon", "guest", "visitor", "user", "customer", "lead", "test", "no name"}
)


@dataclass(frozen=True)
class NameParts:
    """A person's name split for a CRM: `full` keeps title, middle and suffix."""

    first: str | None
    last: str | None
    full: str | None


_EMPTY_NAME = NameParts(None, None, None)


def parse_name(full: Any) -> NameParts:
    """Split a free-text name with nameparser, fixing ALL-CAPS or all-lower case.

    "SMITH, JOHN" -> John / Smith / "John Smith"; "Dr. Jane Doe Jr." ->
    Jane / Doe / "Dr. Jane Doe Jr."; "Cher" -> Cher / None. Placeholders
    ("Guest", "Unknown", ...) and values that are really an email or a phone
    number give no name at all. A piece written all upper or all lower case
    is re-cased ("jane DOE" -> "Jane Doe"); mixed case ("DeShawn") is kept.
    """
    if not isinstance(full, str):
        return _EMPTY_NAME
    text = " ".join(full.split())
    if _is_placeholder(text):
        return _EMPTY_NAME
    simple = _simple_first_last(text)
    if simple is not None:
        return simple
    return _parse_with_nameparser(text)


def _simple_first_last(text: str) -> NameParts | None:
    """"Jane Doe", "Cher", "Doe, Jane", "Jane D." without nameparser's pipeline, which costs ~0.5 ms a name.

    Only the shapes nameparser splits by position alone (schemas/name_fast_path.py; a test holds
    the two paths equal on 100,000 messy names): most names chat platforms send.
    """
    words = first_and_last_words(text)
    if words is None:
        return None
    first, last = (_fix_case(w) if w and (w.isupper() or w.islower()) else w for w in words)
    return NameParts(first, last, f"{first} {last}" if last else first)


def _parse_with_nameparser(text: str) -> NameParts:
    name = HumanName(text)
    name.capitalize()  # only changes names written all upper or all lower as a whole
    for attr in ("first", "middle", "last"):  # "jane DOE": fix each uniform-case piece
        piece = getattr(name, attr)
        if piece and (piece.isupper() or piece.islower()):
            setattr(name, attr, _fix_case(piece))
    first = _clean(name.first)
    last = _clean(name.last)
    if first is None and last is None:
        return _EMPTY_NAME
    return NameParts(first, last, _clean(str(name)))


def split_name(full: Any) -> tuple[str | None, str | None]:
    """(first, last) of a free-text name; see `parse_name`."""
    parts = parse_name(full)
    return parts.first, parts.last


def crm_names(first: Any, last: Any, full: Any) -> tuple[str | None, str | None]:
    """(first, last) as every CRM receives them, from a person's name fields: the one rule both mappings use.

    Stored parts are kept. A missing last name is taken from the full name
    only when the full name begins with the first name ("Mary Ann" in "Mary
    Ann Smith" leaves "Smith"); a full name alone is split after its first
    word, a one-word name being a first name, as `parse_name` reads it. A
    full name is never copied whole into the last name: that put "Robert
    Jones" as the last name of a "Bob" (Salesforce's old copy; a required
    LastName is filled by the Salesforce mapping's placeholder instead).
    """
    first_s, last_s, full_s = (_one_line(v) for v in (first, last, full))
    if full_s is None or (first_s and last_s):
        return first_s, last_s
    if first_s is None and last_s is None:
        head, _, rest = full_s.partition(" ")
        return head, rest or None
    if last_s is None and full_s.lower().startswith(first_s.lower() + " "):  # type: ignore[union-attr]
        return first_s, full_s[len(first_s) + 1:]  # type: ignore[arg-type]
    return first_s, last_s


def _one_line(value: Any) -> str | None:
    """A value as one line of single-spaced text, None when empty (what the CRM mappings send)."""
    if value is None:
        return None
    return " ".join(str(value).split()) or None


def name_from_parts(first: Any, last: Any) -> NameParts:
    """Canonical name from separate first/last fields (each may be missing)."""
    first_s = _fix_case(first) if isinstance(first, str) and not _is_placeholder(first) else None
    last_s = _fix_case(last) if isinstance(last, str) and not _is_placeholder(last) else None
    if first_s is None and last_s is None:
        return _EMPTY_NAME
    full = " ".join(p for p in (first_s, last_s) if p)
    return NameParts(first_s, last_s, full)


@functools.lru_cache(maxsize=65_536)
def _fix_case(part: str) -> str | None:
    # Cached: a pure function of one name word, and the same words ("JOHN", "smith") come back
    # all through a load, each costing a HumanName (~0.2 ms) otherwise.
    text = " ".join(part.split())
    if not text:
        return None
    if text.isupper() or text.islower():
        name = HumanName(last=text)
        name.capitalize(force=True)
        text = name.last or text
    return text


def _is_placeholder(text: str) -> bool:
    stripped = text.strip()
    if stripped.casefold() in PLACEHOLDER_NAMES:
        return True
    if "@" in stripped:  # an email in the name field
        return True
    digits = sum(ch.isdigit() for ch in stripped)
    return digits >= 5 and digits >= len(stripped.replace(" ", "")) // 2  # a phone number


def _clean(value: str | None) -> str | None:
    if not value:
        return None
    text = " ".join(value.split())
    return text or None


# --- time --------------------------------------------------------------------

# Numbers above this are epoch milliseconds (1e11 seconds is the year 5138).
_EPOCH_MS_THRESHOLD = 100_000_000_000


def parse_timestamp(value: Any) -> datetime | None:
    """Timezone-aware UTC datetime from ISO-8601, epoch seconds/ms or RFC 2822.

    None and blank strings give None; naive values are taken as UTC; a
    date alone is midnight UTC. Anything else raises
    `InvalidRecord("bad_timestamp")`.
    """
    if value is None:
        return None
    if isinstance(value, datetime):
        return _as_utc(value)
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day, tzinfo=timezone.utc)
    if isinstance(value, bool):
        raise InvalidRecord(BAD_TIMESTAMP, f"not a timestamp: {value!r}")
    if isinstance(value, (int, float)):
        return _from_epoch(value)
    if not isinstance(value, str):
        raise InvalidRecord(BAD_TIMESTAMP, f"not a timestamp: {type(value).__name__}")
    text = value.strip()
    if not text:
        return None
    if re.fullmatch(r"-?\d+(\.\d+)?", text):
        return _from_epoch(float(text))
    try:
        return _as_utc(datetime.fromisoformat(text))
    except ValueError:
        pass
    try:
        return _as_utc(parsedate_to_datetime(text))
    except (TypeError, ValueError, IndexError):
        raise InvalidRecord(BAD_TIMESTAMP, f"unreadable timestamp: {text[:40]!r}") from None


# The two datetime formats the CRMs are sent, named once (`crm_datetime`):
# a moment, 2024-03-15T10:30:00.000Z: UTC with milliseconds, for HubSpot datetime properties
# (which take this ISO form as well as epoch milliseconds) and Salesforce dateTime fields (ISO
# with an offset, 'Z' being UTC's);
ISO_MILLIS_UTC = "iso-millis-utc"
# a day, 2024-03-15, for Salesforce date fields (a Task's ActivityDate).
ISO_DATE = "iso-date"


def crm_datetime(value: Any, fmt: str = ISO_MILLIS_UTC) -> str | None:
    """`value` (an ISO-8601 string, a datetime or a date) as a CRM is sent it; None when empty.

    The one formatter of every CRM mapping, so HubSpot and Salesforce never
    disagree on a moment. ISO_MILLIS_UTC: the moment in UTC (a naive time
    is read as UTC). ISO_DATE: the day as written (a datetime's own date,
    a string's first ten characters), with no time-zone shift.
    """
    if not value:
        return None
    if fmt == ISO_DATE:
        return value.isoformat()[:10] if isinstance(value, date) else str(value)[:10]
    if fmt != ISO_MILLIS_UTC:
        raise ValueError(f"unknown CRM datetime format {fmt!r}")
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def _from_epoch(number: float) -> datetime:
    if number != number or number in (float("inf"), float("-inf")):
        raise InvalidRecord(BAD_TIMESTAMP, f"not a timestamp: {number!r}")
    seconds = number / 1000 if abs(number) >= _EPOCH_MS_THRESHOLD else number
    try:
        return datetime.fromtimestamp(seconds, tz=timezone.utc)
    except (OverflowError, OSError, ValueError):
        raise InvalidRecord(BAD_TIMESTAMP, f"epoch out of range: {number!r}") from None


def _as_utc(value: datetime) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        return value.replace(tzinfo=timezone.utc)
    return value.astimezone(timezone.utc)


def to_iso(value: datetime | None) -> str | None:
    """ISO-8601 in UTC (`2024-03-15T10:30:00+00:00`); naive means UTC; None stays None."""
    if value is None:
        return None
    return _as_utc(value).isoformat()


# --- tags --------------------------------------------------------------------


def clean_tags(value: Any) -> list[str]:
    """Sorted, unique, lower-cased tags from a list or a comma-separated string.

    Items may be strings, numbers or `{"name": ...}`/`{"label": ...}` objects;
    whitespace is collapsed and empty items dropped. Anything else gives [].
    """
    if value is None:
        return []
    if isinstance(value, str):
        items: Iterable[Any] = value.split(",")
    elif isinstance(value, (list, tuple, set, frozenset)):
        items = value
    else:
        return []
    tags: set[str] = set()
    for item in items:
        if isinstance(item, dict):
            item = item.get("name", item.get("label"))
        if isinstance(item, bool) or not isinstance(item, (str, int)):
            continue
        tag = " ".join(str(item).split()).lower()
        if tag:
            tags.add(tag)
    return sorted(tags)
