"""Send each CRM one activity per conversation: created once, updated when it changes.

Runs after the target's contact push, because an activity hangs off its
person's CRM contact (`sync_state` crm_id of object_type "contact"). For
the conversations whose day (`records.event_day`) is in the run's days:

- unlinked (no person yet): counted, not sent; a later run links and sends it;
- linked to a person the target has no contact id for (its upsert failed,
  or never ran): counted as waiting for the contact;
- otherwise mapped by the sink (`sink.activity(conversation, contact_id)`:
  exactly what the CRM would receive) and hashed; sent when that hash
  differs from the last one the target accepted (sync_state, object_type
  "activity", key "source:conversation id"), with the CRM id kept from
  before so a new message updates the same engagement or Task.

Outcomes are recorded per conversation as the sink returns them, like
contacts: a rerun sends nothing, a permanent error waits for a data change.
"""

from __future__ import annotations

import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any, Mapping, Protocol, Sequence

from connectors.errors import ConnectorError, QuotaExhausted
from connectors.sink import SyncOutcome
from pipelines.partitions import ReadWindow
from pipelines.state import StateStore
from pipelines.state.store import ConversationRow
from pipelines.steps.push import OBJECT_TYPE as CONTACT_OBJECT
from schemas.hashing import content_hash

OBJECT_TYPE = "activity"
# What is counted per day of the run's range.
DAY_COUNTS = ("considered", "created", "updated", "unchanged", "failed", "waiting_for_change", "unlinked",
              "waiting_for_contact")
CHUNK = 1000


class ActivitySink(Protocol):
    target: str

    def activity(self, conversation: Mapping[str, Any], contact_id: str | None) -> dict[str, Any]:
        """What the CRM would receive for this conversation (hashed for diffing)."""

    def activity_input(self, conversation: Mapping[str, Any], contact_id: str | None,
                       crm_id: str | None) -> dict[str, Any]:
        """One input of `upsert_activities`."""

    def upsert_activities(self, items: Sequence[Mapping[str, Any]]) -> list[SyncOutcome]:
        """One outcome per activity key."""


def activity_key(row: ConversationRow) -> str:
    """"source:conversation id", the key of its activity in every CRM (and in sync_state)."""
    return f"{row.source}:{row.data.get('source_id') or row.record_id}"


@dataclass
class ActivityStats:
    target: str
    days: tuple[str, str] | None = None
    dry_run: bool = False
    considered: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    failed: int = 0
    waiting_for_change: int = 0
    unlinked: int = 0
    waiting_for_contact: int = 0
    stopped: str | None = None
    errors: Counter[str] = field(default_factory=Counter)
    per_day: dict[str, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))
    seconds: float = 0.0

    def count(self, day: str | None, what: str, n: int = 1) -> None:
        setattr(self, what, getattr(self, what) + n)
        self.per_day[day or "undated"][what] += n

    def as_metadata(self) -> dict[str, Any]:
        verb = "would be " if self.dry_run else ""
        return {
            "dry run": self.dry_run,
            "days": "all" if self.days is None else (
                self.days[0] if self.days[0] == self.days[1] else f"{self.days[0]}...{self.days[1]}"),
            "conversations in these days": self.considered,
            f"{verb}created": self.created,
            f"{verb}updated": self.updated,
            "unchanged": self.unchanged,
            "failed": self.failed,
            "failed earlier, waiting for a data change": self.waiting_for_change,
            "unlinked (waiting for their person)": self.unlinked,
            "waiting for their contact in this CRM": self.waiting_for_contact,
            "errors by code": dict(self.errors),
            "stopped early": self.stopped or "no",
            "seconds": round(self.seconds, 2),
        }

    def day_stats(self) -> dict[str, dict[str, int]]:
        """Per day: the counts above, for the run's per-day results."""
        return {day: {what: counts.get(what, 0) for what in DAY_COUNTS} for day, counts in sorted(self.per_day.items())}


def push_activities(
    store: StateStore, sink: ActivitySink, *, days: tuple[str, str] | None, dry_run: bool = False
) -> ActivityStats:
    """Create or update the activities of the changed conversations of `days` (all when None)."""
    stats = ActivityStats(sink.target, days=days, dry_run=dry_run)
    started = time.monotonic()
    if days is not None:
        for day in _day_range(days):
            stats.per_day[day]  # every day of the range is reported, even an empty one
    try:
        for chunk in store.iter_conversations(days, batch=CHUNK):
            _push_chunk(store, sink, chunk, stats, dry_run)
    except QuotaExhausted as exc:
        stats.stopped = str(exc)
    stats.seconds = time.monotonic() - started
    return stats


def _push_chunk(store: StateStore, sink: ActivitySink, chunk: list[ConversationRow], stats: ActivityStats,
                dry_run: bool) -> None:
    linked = []
    for row in chunk:
        stats.count(row.event_day, "considered")
        if row.person_key:
            linked.append(row)
        else:
            stats.count(row.event_day, "unlinked")
    contacts = store.sync_rows(sink.target, CONTACT_OBJECT, sorted({row.person_key for row in linked}))
    states = store.sync_rows(sink.target, OBJECT_TYPE, [activity_key(row) for row in linked])
    todo: list[tuple[str, ConversationRow, str | None, str, str | None]] = []
    for row in linked:
        contact = contacts.get(row.person_key)  # type: ignore[arg-type]
        contact_id = contact.crm_id if contact else None
        if contact_id is None and not dry_run:
            stats.count(row.event_day, "waiting_for_contact")
            continue
        key = activity_key(row)
        state = states.get(key)
        digest = content_hash(sink.activity(row.data, contact_id))
        if state and state.last_hash == digest:
            stats.count(row.event_day, "unchanged")
        elif state and state.error_permanent and state.failed_hash == digest:
            stats.count(row.event_day, "waiting_for_change")
        else:
            todo.append((key, row, contact_id, digest, state.crm_id if state else None))
    if not todo:
        return
    if dry_run:
        for _key, row, _contact, _digest, crm_id in todo:
            stats.count(row.event_day, "updated" if crm_id else "created")
        return
    by_key = {key: (row, digest) for key, row, _contact, digest, _crm in todo}
    inputs = [sink.activity_input(row.data, contact_id, crm_id) for _key, row, contact_id, _digest, crm_id in todo]
    try:
        outcomes = sink.upsert_activities(inputs)
    except ConnectorError as exc:
        # Keep whatever the sink finished before it had to stop, then stop.
        _record(store, sink.target, getattr(exc, "outcomes", []), by_key, stats)
        raise
    _record(store, sink.target, outcomes, by_key, stats)


def _record(store: StateStore, target: str, outcomes: Sequence[SyncOutcome],
            by_key: Mapping[str, tuple[ConversationRow, str]], stats: ActivityStats) -> None:
    known = [o for o in outcomes if o.key in by_key]
    for outcome in known:
        day = by_key[outcome.key][0].event_day
        if not outcome.ok:
            stats.count(day, "failed")
            stats.errors[outcome.error_code or "ERROR"] += 1
        else:
            stats.count(day, "created" if outcome.created else "updated")
    store.record_sync(
        target,
        OBJECT_TYPE,
        [(o.key, by_key[o.key][1], o.ok, o.crm_id, o.error, o.error_code, o.permanent) for o in known],
    )


def _day_range(days: tuple[str, str]) -> list[str]:
    return ReadWindow.for_days(*days).day_list()
