"""Content hashes that are stable across runs, machines and Python versions.

The hash is sha256 over canonical JSON: keys sorted, no whitespace, UTF-8,
datetimes as ISO-8601 UTC, dates as ISO dates, sets as sorted lists, tuples
as lists. Equal content gives equal hashes whatever the key or set order.
"""

from __future__ import annotations

import hashlib
import json
from datetime import date, datetime, timezone
from decimal import Decimal
from typing import Any


def canonical_json(obj: Any) -> str:
    """The exact text that `content_hash` hashes."""
    return json.dumps(
        obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=_encode
    )


def content_hash(obj: Any) -> str:
    """Hex sha256 of `canonical_json(obj)`."""
    return hashlib.sha256(canonical_json(obj).encode("utf-8")).hexdigest()


def _encode(value: Any) -> Any:
    if isinstance(value, datetime):  # same text as fields.to_iso; naive means UTC
        if value.tzinfo is None or value.utcoffset() is None:
            value = value.replace(tzinfo=timezone.utc)
        return value.astimezone(timezone.utc).isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, (set, frozenset)):
        return sorted(value, key=canonical_json)
    if isinstance(value, Decimal):
        return str(value)
    raise TypeError(f"content_hash cannot encode {type(value).__name__}")
