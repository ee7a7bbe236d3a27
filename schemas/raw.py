r"""Raw payloads as the state store keeps them: as they came, unless the database cannot hold that.

The store keeps every listed item (DESIGN.md: raw payloads are kept, so
history can be re-normalized), and one item the database refuses must never
fail its page. SQLite and PostgreSQL refuse, or a later JSON query chokes
on, a few things a JSON body can carry; `storable` changes exactly those,
and nothing else, so a clean payload is kept (and hashed) as it came:

| in the payload (a string or a key)      | kept as                             | noted as             |
|-----------------------------------------|-------------------------------------|----------------------|
| a lone UTF-16 surrogate (`"\ud83d"`)     | U+FFFD                              | `lone_surrogates`    |
| NUL (`\u0000`)                          | removed (PostgreSQL text refuses it) | `nul_bytes`          |
| `NaN`, `Infinity`, `-Infinity`          | null (PostgreSQL JSON refuses them) | `non_finite_numbers` |
| nesting deeper than MAX_DEPTH levels    | the string NESTING_MARKER           | `nesting_too_deep`   |
| a non-string key, a value JSON lacks    | its `str()`                         | `not_json`           |
| an integer of more than MAX_INT_BITS    | a string saying so                  | `not_json`           |

Other control characters and ANSI escapes are kept: both databases hold
them, and the raw form is evidence of what the source sent (canonical
records clean them: schemas.text.clean_text). When anything was changed
in an object payload, the object gets the key SANITIZED_KEY saying what,
and in which of its top-level fields (`{"_sanitized": {"changes":
["nul_bytes"], "fields": ["name"]}}`): the fact travels with the payload;
the normalizers copy it into the record's warnings (`raw_sanitized:<code>`),
and refuse an id field that was changed (`invalid_id`: a cleaned id could
be another record's id).
A payload that is not an object (a string among a page's objects) carries
no note; it is quarantined as `malformed_payload` anyway.

Ids are a separate rule (schemas.text.parse_source_id): an id that cannot
be a key is never cleaned; the item is kept under a key made from its
content hash, and quarantined by normalization.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

from schemas.text import MAX_ID_LENGTH, SURROGATE, replace_lone_surrogates
from schemas.hashing import content_hash

# Depth of the deepest object/array kept (the payload itself is level 1). Chat
# platforms' payloads are 3 to 5 levels deep; 32 leaves room and keeps any
# recursive walk over a stored payload far from Python's recursion limit.
MAX_DEPTH = 32
NESTING_MARKER = f"[nested deeper than {MAX_DEPTH} levels: not kept]"
SANITIZED_KEY = "_sanitized"
# Integers above this many bits (about 3,900 digits) are beyond what Python writes as JSON by default.
MAX_INT_BITS = 13_000

LONE_SURROGATES = "lone_surrogates"
NUL_BYTES = "nul_bytes"
NON_FINITE_NUMBERS = "non_finite_numbers"
NESTING_TOO_DEEP = "nesting_too_deep"
NOT_JSON = "not_json"


@dataclass(frozen=True)
class Storable:
    """A payload the store can hold, and what was changed to make it so (empty: kept as it came)."""

    value: Any
    changes: tuple[str, ...] = ()


def storable(payload: Any) -> Storable:
    """`payload` as the store keeps it (table above); equal to `payload` when nothing needed changing."""
    changes: set[str] = set()
    if not isinstance(payload, dict):
        return Storable(_walk(payload, 1, changes), tuple(sorted(changes)))
    value: dict[str, Any] = {}
    fields: list[str] = []
    for key, item in payload.items():
        found: set[str] = set()
        kept_key = _key(key, found)
        value[kept_key] = _walk(item, 2, found)
        if found:
            fields.append(kept_key)
            changes |= found
    if changes:
        value[SANITIZED_KEY] = {"changes": sorted(changes), "fields": fields}
    return Storable(value, tuple(sorted(changes)))


def sanitized_fields(payload: Any) -> frozenset[str]:
    """The top-level fields of a stored payload that `storable` changed (their values are not as sent)."""
    note = payload.get(SANITIZED_KEY) if isinstance(payload, dict) else None
    fields = note.get("fields") if isinstance(note, dict) else None
    return frozenset(f for f in fields if isinstance(f, str)) if isinstance(fields, list) else frozenset()


def raw_warnings(payload: Any) -> list[str]:
    """The warnings a canonical record gets for what `storable` changed in its payload."""
    note = payload.get(SANITIZED_KEY) if isinstance(payload, dict) else None
    changes = note.get("changes") if isinstance(note, dict) else None
    if not isinstance(changes, list):
        return []
    return [f"raw_sanitized:{change}" for change in changes if isinstance(change, str)]


def _walk(value: Any, depth: int, changes: set[str]) -> Any:
    if isinstance(value, str):
        return _text(value, changes)
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int):
        if value.bit_length() <= MAX_INT_BITS:
            return value
        changes.add(NOT_JSON)
        return f"[an integer of {value.bit_length()} bits: not kept]"
    if isinstance(value, float):
        if math.isfinite(value):
            return value
        changes.add(NON_FINITE_NUMBERS)
        return None
    if isinstance(value, (dict, list, tuple)):
        if depth > MAX_DEPTH:
            changes.add(NESTING_TOO_DEEP)
            return NESTING_MARKER
        if isinstance(value, dict):
            return {_key(key, changes): _walk(item, depth + 1, changes) for key, item in value.items()}
        return [_walk(item, depth + 1, changes) for item in value]
    changes.add(NOT_JSON)
    return _text(str(value), changes)


def _key(key: Any, changes: set[str]) -> str:
    if not isinstance(key, str):
        changes.add(NOT_JSON)
        key = str(key)
    return _text(key, changes)


def _text(value: str, changes: set[str]) -> str:
    if "\x00" in value:
        changes.add(NUL_BYTES)
        value = value.replace("\x00", "")
    if SURROGATE.search(value):
        changes.add(LONE_SURROGATES)
        value = replace_lone_surrogates(value)
    return value


# The one prefix of an item without a usable id: its raw key here (`content_key`), and its
# position marker in a listing (connectors.paging.decide.NO_ID_MARKER is this constant).
NO_ID_PREFIX = "noid:"
_KEY_UNSAFE = re.compile(r"[\x00-\x1f\x7f-\x9f\ud800-\udfff]")


def is_storable_key(record_id: Any) -> bool:
    """Can `record_id` be a raw row's key as it is: a non-blank string of at most MAX_ID_LENGTH
    characters without control characters or surrogates (schemas.text.parse_source_id's rule)?"""
    return (
        isinstance(record_id, str)
        and bool(record_id.strip())
        and len(record_id) <= MAX_ID_LENGTH
        and not _KEY_UNSAFE.search(record_id)
    )


def content_key(stored: Any) -> str:
    """The key of an item kept without a usable id: its content hash, so a rerun finds the same row.

    `stored` is the payload as `storable` gave it (hashable whatever the source sent)."""
    return NO_ID_PREFIX + content_hash(stored)[:24]


def raw_key(item: Any, id_key: str = "id") -> str:
    """The key a listed item is kept under: its id when that can be a key (an integer as its
    decimal string), else `content_key` of its storable form; normalization then quarantines it
    with the id's reason (`missing_id`, `invalid_id`) or as `malformed_payload` (not an object)."""
    item_id = item.get(id_key) if isinstance(item, dict) else None
    if isinstance(item_id, int) and not isinstance(item_id, bool):
        item_id = str(item_id)
    return item_id if is_storable_key(item_id) else content_key(storable(item).value)
