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

An outcome `CONTACT_GONE` (the person's CRM contact was deleted or merged
away in the CRM) is not the activity's fault and never waits for a data
change: the person's contact sync state is reset (no CRM id, no hash), so
the next contact push upserts the contact again by its key (an upsert by
email finds a merge's survivor), and the activity, whose hash covers its
contact id, is sent again after it onto the contact's new id.

The decision, the dry run, the recording and the partial-progress stop are
the one sync step's (pipelines/steps/sync.py); `hung_off_contacts` is what
activities and appointments add to it.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Protocol, Sequence

from connectors.sink import SyncOutcome
from pipelines.partitions import ReadWindow
from pipelines.state import StateStore
from pipelines.figures import Display, labelled
from pipelines.state.rows import EventRow
from pipelines.steps.sync import LABELS as SYNC_LABELS
from pipelines.steps.sync import CONTACT_OBJECT, Item, OnBatch, SyncStats, run, sync_chunk
from schemas.hashing import content_hash
from schemas.keys import record_activity_key

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


def activity_key(row: EventRow) -> str:
    """"source:conversation id", the key of its activity in every CRM (and in sync_state).

    The one rule (schemas.keys) the CRM mappings key their outcomes by: a
    key built differently here would drop those outcomes silently.
    """
    return record_activity_key(row.data)


@dataclass
class ActivityStats(SyncStats):
    """The sync step's figures, also per day, with what never reached it (no person, no contact yet)."""

    days: tuple[str, str] | None = None
    unlinked: int = 0
    waiting_for_contact: int = 0
    per_day: dict[str, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))

    def count(self, day: str | None, what: str, n: int = 1) -> None:
        setattr(self, what, getattr(self, what) + n)
        self.per_day[day or "undated"][what] += n

    def figures(self) -> dict[str, Any]:
        """The sync step's figures, the days, and what never reached it (stable keys: the run history's)."""
        return {**super().figures(), "days": list(self.days) if self.days else None,
                "unlinked": self.unlinked, "waiting_for_contact": self.waiting_for_contact}

    def as_metadata(self, labels: Mapping[str, str] | None = None) -> Display:
        """The figures in words, for the Dagster UI (the run history keeps `figures()`)."""
        return labelled(self.figures(), self.labels(LABELS if labels is None else labels),
                        shown={"stopped": self.stopped or "no", "days": days_shown(self.days)})

    def day_stats(self) -> dict[str, dict[str, int]]:
        """Per day: the counts above, for the run's per-day results."""
        return {day: {what: counts.get(what, 0) for what in DAY_COUNTS} for day, counts in sorted(self.per_day.items())}


def days_shown(days: Sequence[str] | None) -> str:
    """A day range as a person reads it: "all", one day, or "first...last"."""
    if not days:
        return "all"
    return days[0] if days[0] == days[-1] else f"{days[0]}...{days[-1]}"


# The activity push's figures in words, for display only; the keys are the data.
LABELS: dict[str, str] = {
    "dry_run": SYNC_LABELS["dry_run"],
    "days": "days",
    "considered": "conversations in these days",
    **{key: SYNC_LABELS[key] for key in ("created", "updated", "unchanged", "failed", "waiting_for_change")},
    "unlinked": "unlinked (waiting for their person)",
    "waiting_for_contact": "waiting for their contact in this CRM",
    **{key: SYNC_LABELS[key] for key in ("contacts_gone", "errors", "cut", "cut_sample", "stopped", "seconds")},
}


def push_activities(
    store: StateStore, sink: ActivitySink, *, days: tuple[str, str] | None, dry_run: bool = False
) -> ActivityStats:
    """Create or update the activities of the changed conversations of `days` (all when None)."""
    stats = ActivityStats(sink.target, days=days, dry_run=dry_run)
    if days is not None:
        for day in _day_range(days):
            stats.per_day[day]  # every day of the range is reported, even an empty one
    return run(stats, store.iter_conversations(days, batch=CHUNK), lambda chunk: hung_off_contacts(
        store, OBJECT_TYPE, chunk, activity_key, sink.activity, _inputs(sink), stats))


def _inputs(sink: ActivitySink) -> Callable[[Sequence[Item], OnBatch], list[SyncOutcome]]:
    """The writer: each item's activity input (its contact id and stored CRM id), in one upsert."""
    def write(todo: Sequence[Item], _on_batch: OnBatch) -> list[SyncOutcome]:
        return sink.upsert_activities([sink.activity_input(item.data[0].data, item.data[1], item.crm_id)
                                       for item in todo])
    return write


def hung_off_contacts(store: StateStore, object_type: str, chunk: Sequence[Any], key: Callable[[Any], str],
                      mapped: Callable[[Mapping[str, Any], str | None], Any],
                      write: Callable[[Sequence[Item], OnBatch], Sequence[SyncOutcome]],
                      stats: ActivityStats) -> None:
    """One page of records hung off a person's CRM contact (a row has `data`, `person_key`, `event_day`).

    Shared by activities and appointments: unlinked rows and rows whose
    person has no contact id in this target (outside a dry run, where the
    contact push did not create it) are counted, the rest go through the
    sync step hashed over `mapped(data, contact_id)`, each item's `data`
    being (row, contact id).
    """
    linked = []
    for row in chunk:
        if row.person_key:
            linked.append(row)
        else:
            stats.count(row.event_day, "considered")
            stats.count(row.event_day, "unlinked")
    contacts = store.sync_rows(stats.target, CONTACT_OBJECT, sorted({str(row.person_key) for row in linked}))
    rows = store.sync_rows(stats.target, object_type, [key(row) for row in linked])
    items = []
    for row in linked:
        contact = contacts.get(str(row.person_key))
        contact_id = contact.crm_id if contact else None
        if contact_id is None and not stats.dry_run:
            stats.count(row.event_day, "considered")
            stats.count(row.event_day, "waiting_for_contact")
            continue
        state = rows.get(key(row))
        items.append(Item(key(row), content_hash(mapped(row.data, contact_id)), (row, contact_id),
                          state.crm_id if state else None, row.event_day, str(row.person_key)))
    sync_chunk(store, object_type, items, rows, write, stats)


def _day_range(days: tuple[str, str]) -> list[str]:
    return ReadWindow.for_days(*days).day_list()
