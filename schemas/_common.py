"""Small helpers the per-source normalizers share (private to schemas/).

They read one field and either return its canonical value, append a
warning code to `warnings` and return None, or raise InvalidRecord.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from schemas.errors import (
    INVALID_ID,
    MALFORMED_PAYLOAD,
    NO_VALID_EMAIL_OR_PHONE,
    InvalidRecord,
)
from schemas.fields import normalize_email, normalize_phone, parse_timestamp
from schemas.text import clean_text, parse_source_id
from schemas.raw import MAX_DEPTH, NESTING_MARKER, raw_warnings, sanitized_fields

INVALID_EMAIL = "invalid_email"
INVALID_PHONE = "invalid_phone"


def require_mapping(raw: Any, what: str) -> Mapping[str, Any]:
    if not isinstance(raw, Mapping):
        raise InvalidRecord(MALFORMED_PAYLOAD, f"{what} is a {type(raw).__name__}, not an object")
    return raw


def require_id(value: Any, what: str) -> str:
    """The id as a string by `text.parse_source_id`'s rule, or InvalidRecord (`missing_id`, `invalid_id`)."""
    try:
        return parse_source_id(value)
    except InvalidRecord as exc:
        raise InvalidRecord(exc.reason, f"{what}: {exc.detail}") from None


def optional_id(value: Any) -> str | None:
    """Like `require_id`, but None when there is no usable id."""
    try:
        return parse_source_id(value)
    except InvalidRecord:
        return None


def field_id(record: Mapping[str, Any], key: str, what: str) -> str:
    """`require_id` of `record[key]`, refusing an id the store had to change to keep it
    (NUL bytes, lone surrogates: schemas.raw): the changed id could be another record's."""
    if key in sanitized_fields(record):
        raise InvalidRecord(INVALID_ID, f"{what}: its {key} held characters the store cannot keep")
    return require_id(record.get(key), what)


def optional_field_id(record: Mapping[str, Any], key: str) -> str | None:
    """`field_id`, or None when there is no usable id."""
    return None if key in sanitized_fields(record) else optional_id(record.get(key))


def prepare(raw: Any, what: str) -> tuple[dict[str, Any], list[str]]:
    """The payload as a normalizer reads its fields, and the warnings the record starts with.

    Every string is cleaned by `text.clean_text` (multi-line: a one-line
    field collapses its own whitespace), except values under id keys (`id`,
    `*_id`, `*Id`), which the id rule refuses rather than cleans; NaN and
    Infinity become null and nesting deeper than schemas.raw.MAX_DEPTH its
    marker, as the store keeps them. Warnings: `raw_sanitized:<change>` for
    what the store changed (schemas.raw), `cleaned:<field>` per
    top-level field that was changed here.
    """
    record = require_mapping(raw, what)
    warnings = raw_warnings(record)
    prepared: dict[str, Any] = {}
    for key, value in record.items():
        changed: list[bool] = []
        text_key = clean_text(key) if isinstance(key, str) else str(key)
        prepared[text_key] = value if _is_id_key(text_key) else _clean(value, 2, changed)
        if changed or text_key != key:
            warnings.append(f"cleaned:{text_key}")
    return prepared, warnings


def _is_id_key(key: str) -> bool:
    return key == "id" or key.endswith("_id") or key.endswith("Id")


def _clean(value: Any, depth: int, changed: list[bool]) -> Any:
    """`value` with clean strings (multi-line), finite numbers and bounded depth; `changed` gets True if not as it was."""
    if isinstance(value, str):
        text = clean_text(value, multiline=True)
        if text != value:
            changed.append(True)
        return text
    if isinstance(value, float) and not math.isfinite(value):
        changed.append(True)
        return None
    if isinstance(value, (dict, list, tuple)) and depth > MAX_DEPTH:
        changed.append(True)
        return NESTING_MARKER
    if isinstance(value, dict):
        return {_clean_key(k, changed): _clean(v, depth + 1, changed) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v, depth + 1, changed) for v in value]
    if value is None or isinstance(value, (bool, int, float)):
        return value
    changed.append(True)
    return clean_text(str(value), multiline=True)


def _clean_key(key: Any, changed: list[bool]) -> str:
    text = clean_text(key) if isinstance(key, str) else str(key)
    if text != key:
        changed.append(True)
    return text


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


def person_fields(email: str | None, phone: str | None, name: Any) -> dict[str, str | None]:
    """A canonical contact's identity fields: email, phone and the three parts of a `fields.NameParts`.

    One rule for every source's normalizer, so no two fill the name parts differently."""
    return {"email": email, "phone": phone, "first_name": name.first, "last_name": name.last, "full_name": name.full}
