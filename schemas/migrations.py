"""Upgrade steps for stored canonical records, one per (schema, from_version).

A step takes a record of `from_version` and returns a new record of
`from_version + 1`; it never mutates its input and never calls a source.
Add a version by adding a step here, then (when the normalizers produce it)
bumping `registry.CURRENT_VERSIONS`.
"""

from __future__ import annotations

from typing import Any, Callable

from schemas._common import INVALID_PHONE
from schemas.fields import is_identity_phone

Record = dict[str, Any]
Step = Callable[[Record], Record]


def contact_v1_to_v2(record: Record) -> Record:
    """contact v2 adds what conversations tell about a contact.

    `preferred_channel` (the channel of its most recent conversation),
    `last_seen_at` (ISO-8601 UTC of its latest message) and
    `conversation_count`. A v1 record knows none of them: null, null, 0.
    """
    added = {"preferred_channel": None, "last_seen_at": None, "conversation_count": 0}
    upgraded: Record = {}
    for key, value in record.items():  # new keys go right after updated_at
        upgraded[key] = value
        if key == "updated_at":
            upgraded.update({k: record.get(k, v) for k, v in added.items()})
    for key, value in added.items():
        upgraded.setdefault(key, value)
    upgraded["version"] = 2
    return upgraded


def contact_v2_to_v3(record: Record) -> Record:
    """contact v3: a phone is an identity only when it is a real number (schemas.fields, the phone rule).

    v2 kept any number of a full length for its country, so the fictional
    `+1 555` numbers and letter placeholders (`555-CALL-NOW`, read as
    +15552255669) keyed persons and merged strangers. A stored phone that
    fails the rule now is dropped with an "invalid_phone" warning, as the v3
    normalizers drop it; the shape is v2's. A record left with neither email
    nor phone keys no person. This only upgrades what is stored: each run
    also normalizes again the raw payload of every record whose version is
    not current, which catches a letters-number and quarantines a record
    left without email or phone (`no_valid_email_or_phone`).
    """
    upgraded = {**record, "version": 3}
    phone = record.get("phone")
    if phone is not None and not is_identity_phone(phone):
        warnings = list(record.get("warnings") or ())
        upgraded["phone"] = None
        upgraded["warnings"] = warnings if INVALID_PHONE in warnings else [*warnings, INVALID_PHONE]
    return upgraded


MIGRATIONS: dict[tuple[str, int], Step] = {
    ("contact", 1): contact_v1_to_v2,
    ("contact", 2): contact_v2_to_v3,
}
