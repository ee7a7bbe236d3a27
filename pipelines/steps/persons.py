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
key before it is dropped, so the CRM keeps one contact for them; a person
whose records went to no single key (strangers once merged on a placeholder
phone, a lead who withdrew their email and phone) leaves its CRM records as
they are, listed in the step's report for a person to merge or delete.
Before all of it, stored contacts of an older schema version are brought to
the current one, so the rule never sees a phone an older version let through.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any

from pipelines.figures import Display, labelled
from pipelines.state import StateStore
from pipelines.state.rows import Rekey
from pipelines.steps.heap import long_lived_set_aside
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
    upgraded: int = 0
    rekeyed: list[Rekey] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def left_behind(self) -> list[Rekey]:
        """CRM records of persons that no longer exist, left as they are in the CRM."""
        return [move for move in self.rekeyed if move.new_key is None]

    def figures(self) -> dict[str, Any]:
        """The figures under stable keys: what the run history keeps and the summary reads."""
        return {
            "persons": self.persons, "records": self.records, "changed": self.changed, "removed": self.removed,
            "linked": self.linked, "unlinked": self.unlinked,
            "moved": sum(move.carried for move in self.rekeyed),
            "duplicates": [{"target": m.target, "crm_id": m.crm_id, "old_key": m.old_key, "new_key": m.new_key}
                           for m in self.rekeyed if not m.carried and m.new_key is not None],
            "left_behind": [{"target": m.target, "crm_id": m.crm_id, "old_key": m.old_key} for m in self.left_behind],
            "upgraded": self.upgraded, "seconds": round(self.seconds, 2),
        }

    def as_metadata(self) -> Display:
        """The figures in words, for the Dagster UI (the run history keeps `figures()`)."""
        figures = self.figures()
        return labelled(figures, LABELS, shown={"duplicates": duplicates_shown(figures["duplicates"]),
                                                "left_behind": left_behind_shown(figures["left_behind"])})


# The persons step's figures in words, for display only; the keys are the data.
LABELS: dict[str, str] = {
    "persons": "persons after de-duplication",
    "records": "contact records merged",
    "changed": "persons changed",
    "removed": "persons removed (re-keyed)",
    "linked": "conversations linked",
    "unlinked": "conversations unlinked (waiting for their person)",
    "moved": "CRM records moved to a re-keyed person",
    "duplicates": "CRM duplicates to merge by hand",
    "left_behind": "CRM records left behind (their person no longer exists)",
    "upgraded": "contact records upgraded to the current schema",
    "seconds": "seconds",
}


def duplicates_shown(items: list[dict[str, Any]]) -> list[str]:
    """CRM records whose person merged into another one, as a person reads them."""
    return [f"{m['target']} {m['crm_id']}: was {m['old_key']}, now part of {m['new_key']}" for m in items]


def left_behind_shown(items: list[dict[str, Any]]) -> list[str]:
    """CRM records whose person no longer exists, as a person reads them."""
    return [f"{m['target']} {m['crm_id']}: was {m['old_key']}" for m in items]


def rebuild_persons(store: StateStore) -> PersonStats:
    """Apply the matching rule, link conversations, then merge each key's records into one person."""
    stats = PersonStats()
    started = time.monotonic()
    with long_lived_set_aside():
        _rebuild(store, stats)
    stats.seconds = time.monotonic() - started
    return stats


def _rebuild(store: StateStore, stats: PersonStats) -> None:
    stats.upgraded = store.upgrade_stale_contacts()
    store.refresh_planner_statistics()
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
    _warn_leftovers(stats.rekeyed)
    stats.removed = store.delete_orphan_persons()


def _save(store: StateStore, pending: list[tuple[str, dict[str, Any]]]) -> int:
    """Fold each person's conversation roll-up in, then save; returns how many changed."""
    rollups = store.conversation_rollups([key for key, _ in pending])
    return store.save_persons([
        (key, fold_conversations(person, conversation_rollup(rollups.get(key, ()))))
        for key, person in pending
    ])


def _warn_leftovers(moves: list[Rekey]) -> None:
    """Log each CRM record the sync stops managing, with what a person should do about it."""
    for move in moves:
        if move.new_key is None:
            log.warning("%s record %s was synced as %s, and no person has that key any more (its records were "
                        "quarantined or split up): left as it is in %s; merge or delete it there",
                        move.target, move.crm_id, move.old_key, move.target)
        elif not move.carried:
            log.warning("%s record %s was synced as %s, which is now part of %s; that person already has its "
                        "own %s record: merge the two in %s", move.target, move.crm_id, move.old_key,
                        move.new_key, move.target, move.target)
