"""Upgrade steps for stored canonical records, one per (schema, from_version).

A step takes a record of `from_version` and returns a new record of
`from_version + 1`; it never mutates its input and never calls a source.
Add a version by adding a step here, then (when the normalizers produce it)
bumping `registry.CURRENT_VERSIONS`.
"""

from __future__ import annotations

from typing import Any, Callable

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


MIGRATIONS: dict[tuple[str, int], Step] = {
    ("contact", 1): contact_v1_to_v2,
}
