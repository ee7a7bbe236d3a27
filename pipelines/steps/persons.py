"""Resolve identities, link conversations to persons, and rebuild the merged persons, streamed by key.

Order matters: the matching rule first gives every contact record its
person key; then every stored conversation is linked to a person (the
contact record it belongs to, else its email/phone hints by the same rule;
a conversation nobody claims stays unlinked and waits for its person);
then each person is merged from its contacts and gets its conversation
roll-ups (count, last activity, channels: a SQL aggregate per chunk of
persons) folded in before it is hashed, so a new conversation changes the
person and the CRM contact is updated too. Last, a person whose key changed
(a phone-only customer who gave an email) hands its CRM records to its new
key before it is dropped, so the CRM keeps one contact for them.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any

from pipelines.state import StateStore
from pipelines.state.store import Rekey
from schemas.identity import conversation_rollup, fold_conversations, merge_person

CHUNK = 2000

log = logging.getLogger(__name__)


@dataclass
class PersonStats:
    persons: int = 0
    changed: int = 0
    removed: int = 0
    records: int = 0
    linked: int = 0
    unlinked: int = 0
    rekeyed: list[Rekey] = field(default_factory=list)
    seconds: float = 0.0

    def as_metadata(self) -> dict[str, Any]:
        return {
            "persons after de-duplication": self.persons,
            "contact records merged": self.records,
            "persons changed": self.changed,
            "persons removed (re-keyed)": self.removed,
            "conversations linked": self.linked,
            "conversations unlinked (waiting for their person)": self.unlinked,
            "CRM records moved to a re-keyed person": sum(move.carried for move in self.rekeyed),
            "CRM duplicates to merge by hand": [
                f"{move.target} {move.crm_id}: was {move.old_key}, now part of {move.new_key}"
                for move in self.rekeyed if not move.carried],
            "seconds": round(self.seconds, 2),
        }


def rebuild_persons(store: StateStore) -> PersonStats:
    """Apply the matching rule, link conversations, then merge each key's records into one person."""
    stats = PersonStats()
    started = time.monotonic()
    store.resolve_phone_identities()
    stats.linked, stats.unlinked = store.link_conversations()
    pending: list[tuple[str, dict[str, Any]]] = []
    for key, contacts in store.iter_person_groups():
        pending.append((key, merge_person(key, contacts)))
        stats.persons += 1
        stats.records += len(contacts)
        if len(pending) >= CHUNK:
            stats.changed += _save(store, pending)
            pending = []
    stats.changed += _save(store, pending)
    stats.rekeyed = store.carry_rekeyed_crm_records()
    for move in stats.rekeyed:
        if not move.carried:
            log.warning("%s record %s was synced as %s, which is now part of %s; that person already has its "
                        "own %s record: merge the two in %s", move.target, move.crm_id, move.old_key,
                        move.new_key, move.target, move.target)
    stats.removed = store.delete_orphan_persons()
    stats.seconds = time.monotonic() - started
    return stats


def _save(store: StateStore, pending: list[tuple[str, dict[str, Any]]]) -> int:
    """Fold each person's conversation roll-up in, then save; returns how many changed."""
    rollups = store.conversation_rollups([key for key, _ in pending])
    return store.save_persons([
        (key, fold_conversations(person, conversation_rollup(rollups.get(key, ()))))
        for key, person in pending
    ])
