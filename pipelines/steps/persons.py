"""Resolve identities and rebuild the merged persons, streamed by key."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from pipelines.state import StateStore
from schemas.identity import merge_person

CHUNK = 2000


@dataclass
class PersonStats:
    persons: int = 0
    changed: int = 0
    removed: int = 0
    records: int = 0
    seconds: float = 0.0

    def as_metadata(self) -> dict[str, Any]:
        return {
            "persons after de-duplication": self.persons,
            "contact records merged": self.records,
            "persons changed": self.changed,
            "persons removed (re-keyed)": self.removed,
            "seconds": round(self.seconds, 2),
        }


def rebuild_persons(store: StateStore) -> PersonStats:
    """Apply the matching rule, then merge each key's records into one person."""
    stats = PersonStats()
    started = time.monotonic()
    store.resolve_phone_identities()
    pending: list[tuple[str, dict[str, Any]]] = []
    for key, contacts in store.iter_person_groups():
        pending.append((key, merge_person(key, contacts)))
        stats.persons += 1
        stats.records += len(contacts)
        if len(pending) >= CHUNK:
            stats.changed += store.save_persons(pending)
            pending = []
    stats.changed += store.save_persons(pending)
    stats.removed = store.delete_orphan_persons()
    stats.seconds = time.monotonic() - started
    return stats
