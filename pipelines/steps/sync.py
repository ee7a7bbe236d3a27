"""The one sync step every CRM object goes through: contacts, activities, appointments.

A user (pipelines/steps/push.py, activities.py, appointments.py) turns its
records into `Item`s (key, content hash of what the CRM would receive, the
sync row's CRM id) and hands them here with the store's sync rows and a
batch writer over its sink. This module then, and only this module:

- decides each item: unchanged (hash as last accepted), waiting for a data
  change (its last error was permanent for this very hash), or to send;
- decides the dry run: nothing is written, the would-be creates (no CRM id
  known) and updates are counted. Sinks never hear of a dry run;
- sends the rest through the writer and records the outcomes batch by batch
  as the CRM answers (`record_outcomes`), so a run killed halfway resends
  nothing that had succeeded;
- keeps what a sink finished before a stop (`connectors.errors.PartialProgress`),
  then raises its cause.

An outcome `CONTACT_GONE` on an item hung off a contact (`Item.contact`)
resets that person's contact sync state: the next contact push upserts the
contact again by its key, then the item follows on the contact's new id.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Mapping, Sequence

from connectors.errors import PartialProgress, QuotaExhausted
from connectors.limits import Cut
from connectors.sink import CONTACT_GONE, SyncOutcome
from pipelines.state import StateStore
from pipelines.state.rows import SyncRow
from pipelines.steps.heap import long_lived_set_aside

CONTACT_OBJECT = "contact"  # the sync-state object type of persons (what activities hang off)
CUT_SAMPLE = 10  # records whose cut values are shown in the metadata
# The sync-state hash of a contact that must be sent again: no content hash is empty.
_RESEND = ""

OnBatch = Callable[[Sequence[SyncOutcome]], None]
# Sends items (never in a dry run); calls `on_batch` as the CRM answers, returns every outcome (again is fine).
Writer = Callable[[Sequence["Item"], OnBatch], Sequence[SyncOutcome]]
# Between the decision and the send: the items to send of those that changed (with what to send in `data`).
Refine = Callable[[list["Item"]], list["Item"]]


@dataclass(frozen=True)
class Item:
    """One record to consider: its sync key, the hash of what the CRM would receive, what the writer needs."""

    key: str
    digest: str
    data: Any
    crm_id: str | None = None  # the CRM record it is known as: a dry run counts it as an update
    day: str | None = None  # the day it is counted under (activities, appointments)
    contact: str | None = None  # the person whose CRM contact it hangs off (reset when the CRM says it is gone)


@dataclass
class Cuts:
    """Records whose values were cut (or left out) to fit the CRM's field limits: counted, a few kept."""

    records: int = 0
    sample: list[tuple[str, tuple[Cut, ...]]] = field(default_factory=list)

    def add(self, outcome: SyncOutcome) -> None:
        if outcome.truncated:
            self.records += 1
            if len(self.sample) < CUT_SAMPLE:
                self.sample.append((outcome.key, outcome.truncated))

    def described(self) -> list[str]:
        """The sample, for display."""
        return [f"{key}: " + "; ".join(cut.describe() for cut in cuts) for key, cuts in self.sample]

    def as_metadata(self) -> dict[str, Any]:
        """Words only here, for display: the figures stay typed in `records` and `sample`."""
        return {"values cut to fit the CRM": self.records, "cut values (sample)": self.described()}


@dataclass
class SyncStats:
    """The figures of one sync step for one target, typed; words only in the users' `as_metadata`."""

    target: str
    dry_run: bool = False
    considered: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    failed: int = 0
    waiting_for_change: int = 0
    contacts_gone: int = 0
    stopped: str | None = None
    errors: Counter[str] = field(default_factory=Counter)
    cuts: Cuts = field(default_factory=Cuts)
    seconds: float = 0.0

    def count(self, day: str | None, what: str, n: int = 1) -> None:
        """Add `n` to the figure `what` (`day` matters to the users that count per day)."""
        setattr(self, what, getattr(self, what) + n)

    def figures(self) -> dict[str, Any]:
        """The figures under stable keys: what the run history keeps and the summary reads."""
        return {"dry_run": self.dry_run, "considered": self.considered, "created": self.created,
                "updated": self.updated, "unchanged": self.unchanged, "failed": self.failed,
                "waiting_for_change": self.waiting_for_change, "contacts_gone": self.contacts_gone,
                "errors": dict(self.errors), "cut": self.cuts.records, "cut_sample": self.cuts.described(),
                "stopped": self.stopped, "seconds": round(self.seconds, 2)}

    def labels(self, labels: Mapping[str, str]) -> dict[str, str]:
        """`labels` with a dry run's words: what "would be" created or updated."""
        if not self.dry_run:
            return dict(labels)
        return {key: f"would be {label}" if key in ("created", "updated") else label
                for key, label in labels.items()}


# The sync step's figures in words, for display only (pipelines.figures.labelled); the keys are the data.
LABELS: dict[str, str] = {
    "dry_run": "dry run",
    "created": "created",
    "updated": "updated",
    "unchanged": "unchanged",
    "failed": "failed",
    "waiting_for_change": "failed earlier, waiting for a data change",
    "contacts_gone": "contacts gone from the CRM (sent again next run)",
    "errors": "errors by code",
    "cut": "values cut to fit the CRM",
    "cut_sample": "cut values (sample)",
    "stopped": "stopped early",
    "seconds": "seconds",
}


def run(stats: SyncStats, chunks: Iterable[Any], each: Callable[[Any], None]) -> SyncStats:
    """Run `each` over the chunks; a spent quota stops it cleanly with progress kept (`stats.stopped`)."""
    started = time.monotonic()
    try:
        with long_lived_set_aside():
            for chunk in chunks:
                each(chunk)
    except QuotaExhausted as exc:
        stats.stopped = str(exc)
    stats.seconds += time.monotonic() - started
    return stats


def sync_chunk(store: StateStore, object_type: str, items: Sequence[Item], rows: Mapping[str, SyncRow],
               write: Writer, stats: SyncStats, *, refine: Refine | None = None) -> None:
    """Decide, then (unless a dry run) send and record one chunk of items; `rows` are their sync rows by key."""
    todo = decide(items, rows, stats)
    if todo and refine is not None:
        todo = refine(todo)
    if not todo:
        return
    if stats.dry_run:
        for item in todo:
            stats.count(item.day, "updated" if item.crm_id else "created")
        return
    send(store, object_type, todo, write, stats)


def decide(items: Sequence[Item], rows: Mapping[str, SyncRow], stats: SyncStats) -> list[Item]:
    """The items to send; the others counted unchanged, or waiting for a data change after a permanent error."""
    todo = []
    for item in items:
        stats.count(item.day, "considered")
        row = rows.get(item.key)
        if row and row.last_hash == item.digest:
            stats.count(item.day, "unchanged")
        elif row and row.error_permanent and row.failed_hash == item.digest:
            stats.count(item.day, "waiting_for_change")
        else:
            todo.append(item)
    return todo


def send(store: StateStore, object_type: str, todo: Sequence[Item], write: Writer, stats: SyncStats) -> None:
    """Write `todo`, recording each outcome once as it comes; a stop part-way keeps what finished, then raises."""
    by_key = {item.key: item for item in todo}
    recorded: set[str] = set()

    def on_batch(outcomes: Sequence[SyncOutcome]) -> None:
        fresh = [o for o in outcomes if o.key in by_key and o.key not in recorded]
        recorded.update(o.key for o in fresh)
        record_outcomes(store, stats.target, object_type, fresh, by_key, stats)

    try:
        on_batch(write(todo, on_batch))
    except PartialProgress as exc:
        on_batch(exc.outcomes)
        raise exc.cause from None


def record_outcomes(store: StateStore, target: str, object_type: str, outcomes: Sequence[SyncOutcome],
                    by_key: Mapping[str, Item], stats: SyncStats) -> None:
    """Count and record the outcomes of the keys in `by_key` (others are dropped), and reset gone contacts."""
    known = [o for o in outcomes if o.key in by_key]
    for outcome in known:
        stats.cuts.add(outcome)
        day = by_key[outcome.key].day
        if not outcome.ok:
            stats.count(day, "failed")
            stats.errors[outcome.error_code or "ERROR"] += 1
        else:
            stats.count(day, "created" if outcome.created else "updated")
    if known:
        store.record_sync(target, object_type, [
            (o.key, by_key[o.key].digest, o.ok, o.crm_id, o.error, o.error_code, o.permanent) for o in known])
    gone = sorted({str(by_key[o.key].contact) for o in known
                   if o.error_code == CONTACT_GONE and by_key[o.key].contact})
    if gone:
        forget_contacts(store, target, gone)
        stats.contacts_gone += len(gone)


def forget_contacts(store: StateStore, target: str, person_keys: Sequence[str]) -> None:
    """Reset these persons' contact sync state: no CRM id, a hash no person has, the reason kept.

    The next contact push then upserts each by its key (never by the stale
    id), and until it has, what hangs off them waits for their contact.
    """
    reason = "its CRM contact was deleted or merged away in the CRM; it is sent again on the next push"
    store.record_sync(target, CONTACT_OBJECT, [(key, _RESEND, True, None, None, None, False) for key in person_keys])
    store.record_sync(target, CONTACT_OBJECT,
                      [(key, _RESEND, False, None, reason, CONTACT_GONE, False) for key in person_keys])
