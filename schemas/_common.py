"""Small helpers the per-source normalizers share (private to schemas/).

They read one field and either return its canonical value, append a
warning code to `warnings` and return None, or raise InvalidRecord.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from schemas.errors import (
    MALFORMED_PAYLOAD,
    MISSING_ID,
    NO_VALID_EMAIL_OR_PHONE,
    InvalidRecord,
)
from schemas.fields import normalize_email, normalize_phone, parse_timestamp

INVALID_EMAIL = "invalid_email"
INVALID_PHONE = "invalid_phone"


def require_mapping(raw: Any, what: str) -> Mapping[str, Any]:
    if not isinstance(raw, Mapping):
        raise InvalidRecord(MALFORMED_PAYLOAD, f"{what} is a {type(raw).__name__}, not an object")
    return raw


def require_id(value: Any, what: str) -> str:
    """A non-blank string or integer id, as a string."""
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise InvalidRecord(MISSING_ID, f"{what} has no id")
    text = str(value).strip()
    if not text:
        raise InvalidRecord(MISSING_ID, f"{what} has a blank id")
    return text


def optional_id(value: Any) -> str | None:
    """Like `require_id`, but None when there is no usable id."""
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        return None
    return str(value).strip() or None


def is_blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def read_email(value: Any, warnings: list[str]) -> str | None:
    email = normalize_email(value)
    if email is None and not is_blank(value):
        warnings.append(INVALID_EMAIL)
    return email


def read_phone(value: Any, region: str, warnings: list[str]) -> str | None:
    phone = normalize_phone(value, region)
    if phone is None and not is_blank(value):
        warnings.append(INVALID_PHONE)
    return phone


def read_time(value: Any, field: str, warnings: list[str]) -> datetime | None:
    try:
        return parse_timestamp(value)
    except InvalidRecord:
        warnings.append(f"bad_timestamp:{field}")
        return None


def require_email_or_phone(email: str | None, phone: str | None, what: str, warnings: list[str]) -> None:
    if email is None and phone is None:
        dropped = f" (dropped: {', '.join(warnings)})" if warnings else ""
        raise InvalidRecord(NO_VALID_EMAIL_OR_PHONE, f"{what} has no valid email or phone{dropped}")


def text_or_none(value: Any) -> str | None:
    """A trimmed, whitespace-collapsed string, or None for blanks and non-strings."""
    if not isinstance(value, str):
        return None
    text = " ".join(value.split())
    return text or None
