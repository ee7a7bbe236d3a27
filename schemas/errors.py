"""Errors raised while turning raw source payloads into canonical records.

`InvalidRecord` means "quarantine this one record and carry on"; its
`reason` is a short, stable code the quarantine table can group by:

| reason                    | when                                                        |
|---------------------------|-------------------------------------------------------------|
| `malformed_payload`       | the payload (or a part the normalizer needs) has the wrong type |
| `missing_id`              | no source id: missing, null, a boolean or blank             |
| `invalid_id`              | an id that cannot be a key (`text.parse_source_id`): a float, list or object, over 255 characters, control characters or lone surrogates |
| `no_valid_email_or_phone` | neither a syntactically valid email nor a valid phone       |
| `bad_timestamp`           | `fields.parse_timestamp` got a value it cannot read         |
| `no_timestamp`            | a conversation with no start, message or update time: it belongs to no day; an appointment without a start |
| `end_before_start`        | an appointment that ends before it starts (schemas/appointment.py) |
| `normalizer_error`        | the normalizer raised something no rule foresaw (a bug to fix; the record waits in quarantine) |
| `unstorable`              | its canonical record could not be written to the store (pipelines/steps/normalize.py) |

Normalizers never quarantine a record for a bad timestamp, an invalid email
next to a valid phone (or the reverse), an unknown channel, status or role:
those become entries in the record's `warnings` list instead.

`MigrationError` means a stored record cannot be brought to the current
schema version (unknown schema, unknown version, or no step on the path).
"""

from __future__ import annotations

MALFORMED_PAYLOAD = "malformed_payload"
MISSING_ID = "missing_id"
INVALID_ID = "invalid_id"
NO_VALID_EMAIL_OR_PHONE = "no_valid_email_or_phone"
BAD_TIMESTAMP = "bad_timestamp"
NO_TIMESTAMP = "no_timestamp"
END_BEFORE_START = "end_before_start"
NORMALIZER_ERROR = "normalizer_error"
UNSTORABLE = "unstorable"

REASONS = frozenset({
    MALFORMED_PAYLOAD, MISSING_ID, INVALID_ID, NO_VALID_EMAIL_OR_PHONE, BAD_TIMESTAMP, NO_TIMESTAMP, END_BEFORE_START,
    NORMALIZER_ERROR, UNSTORABLE,
})


class InvalidRecord(ValueError):
    """One source record cannot become a canonical record; quarantine it with `reason`."""

    def __init__(self, reason: str, detail: str = "") -> None:
        self.reason = reason
        self.detail = detail
        super().__init__(f"{reason}: {detail}" if detail else reason)


class MigrationError(Exception):
    """A stored record has no migration path to the requested schema version."""
