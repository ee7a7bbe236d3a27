"""Send each CRM only the persons whose mapped properties changed.

The hash is taken over what the sink would write (its mapping, with the
mapping file's rules when there is one), per target, so a mapping change
resends what it affects and nothing else; targets keep separate state, so
turning a second CRM on later sends it everything and the first one nothing
new.

With a mapping file (`pipelines/mapping`), the changed persons' current CRM
records are read first when a write policy or the mode needs them
(`if_empty`, `update_only`, `create_only`; and in a dry run, to show what
would change, old value to new). A person the mode does not send is
counted as skipped and not recorded as synced, so it is sent once the mode
allows it.

The decision (changed, unchanged, waiting for a data change), the dry run,
the batch-by-batch recording and the partial-progress stop are the one sync
step's (pipelines/steps/sync.py); this module adds what is contacts' own:
the hash over the sink's mapping, re-keyed persons moved by CRM id, and the
mapping file's reads, modes and preview (`_Batch`).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field, replace
from typing import Any, Sequence

from connectors.sink import ContactSink, SyncOutcome
from pipelines.mapping.apply import Change, changes, outgoing, same, skip_reason
from pipelines.mapping.model import UPDATE_ONLY
from pipelines.mapping.plan import Loaded, WritePlan, configure
from pipelines.state import StateStore
from pipelines.figures import Display, labelled
from pipelines.state.rows import SyncRow
from pipelines.steps.sync import CONTACT_OBJECT as OBJECT_TYPE
from pipelines.steps.sync import LABELS as SYNC_LABELS
from pipelines.steps.sync import Cuts, Item, OnBatch, SyncStats, run, sync_chunk
from schemas.hashing import content_hash

__all__ = ["OBJECT_TYPE", "CHUNK", "LABELS", "PREVIEW_ROWS", "Cuts", "PushStats", "describe", "push_persons"]

CHUNK = 1000
PREVIEW_ROWS = 50  # dry run: property changes shown in the metadata and the summary


@dataclass
class PushStats(SyncStats):
    """The contact push's figures: the sync step's, and the mapping file's."""

    mapped: bool = False  # a mapping file is in force
    skipped: Counter[str] = field(default_factory=Counter)  # why the mode did not send a person
    held_back: int = 0  # if_empty values not sent because the CRM has another one
    preview: list[Change] = field(default_factory=list)
    persons_changing: int = 0  # dry run: persons with at least one property that would change

    def figures(self) -> dict[str, Any]:
        """The sync step's figures, and with a mapping file its own (runs without one keep as before)."""
        out = super().figures()
        if self.mapped:
            out.update(skipped_not_in_crm=self.skipped["not in CRM"],
                       skipped_already_in_crm=self.skipped["already in CRM"], held_back=self.held_back)
            if self.dry_run:
                out.update(persons_changing=self.persons_changing,
                           preview=[describe(change) for change in self.preview])
        return out

    def as_metadata(self) -> Display:
        """The figures in words, for the Dagster UI (the run history keeps `figures()`)."""
        return labelled(self.figures(), self.labels(LABELS), shown={"stopped": self.stopped or "no"})


# The contact push's figures in words, for display only; the keys are the data.
LABELS: dict[str, str] = {
    **{key: label for key, label in SYNC_LABELS.items() if key not in ("contacts_gone", "seconds")},
    "skipped_not_in_crm": "skipped: not in CRM",
    "skipped_already_in_crm": "skipped: already in CRM",
    "held_back": "held back by if_empty",
    "persons_changing": "persons with changes",
    "preview": "changes (preview)",
    "seconds": "seconds",
}


def describe(change: Change) -> str:
    """A preview line, for display: `key: property 'old' -> 'new'` (held back ones say so)."""
    note = " (held back: if_empty, the CRM has a value)" if change.held else ""
    return f"{change.key}: {change.name} {_shown(change.old)} -> {_shown(change.new)}{note}"


def _shown(value: Any) -> str:
    text = "" if value is None else str(value)
    return repr(text if len(text) <= 60 else text[:57] + "...")


def push_persons(store: StateStore, sink: ContactSink, *, dry_run: bool = False,
                 mapping: Loaded | None = None) -> PushStats:
    """Diff every person against the target's sync state and upsert the changed ones.

    `mapping` (the target's section of SYNC_MAPPING_FILE) is checked against
    the CRM before anything is written: a bad one raises `MappingError`. In
    a dry run nothing is created in the CRM, not even a missing property.
    """
    stats = PushStats(sink.target, dry_run=dry_run)
    plan = configure(sink, mapping)  # type: ignore[arg-type]
    stats.mapped = plan.active
    sink.prepare(create=not dry_run)
    return run(stats, store.iter_persons(batch=CHUNK), lambda chunk: _push_chunk(store, sink, chunk, stats, plan))


def _push_chunk(store: StateStore, sink: ContactSink, chunk: list[tuple[str, dict[str, Any]]],
                stats: PushStats, plan: WritePlan = WritePlan()) -> None:
    """One page of persons through the sync step: hashed over what the sink would write."""
    rows = store.sync_rows(sink.target, OBJECT_TYPE, [key for key, _person in chunk])
    items = [Item(key, content_hash(sink.properties(person)), person,
                  rows[key].crm_id if key in rows else None) for key, person in chunk]
    batch = _Batch(sink, rows, stats, plan)
    sync_chunk(store, OBJECT_TYPE, items, rows, batch.write, stats, refine=batch.refine if plan.active else None)


class _Batch:
    """One chunk's mapping work (what to send, the CRM ids just read) and its writer over the sink."""

    def __init__(self, sink: Any, rows: dict[str, SyncRow], stats: PushStats, plan: WritePlan) -> None:
        self.sink, self.rows, self.stats, self.plan = sink, rows, stats, plan
        self.payloads: dict[str, dict[str, Any]] | None = None
        self.known: dict[str, str | None] | None = None

    def refine(self, todo: list[Item]) -> list[Item]:
        """The persons the mode sends, with what to send; a dry run counts by the CRM's answer when read."""
        self.payloads, self.known = _apply_mapping(self.sink, [item.data for item in todo], self.rows, self.stats,
                                                   self.plan)
        kept = [item for item in todo if item.key in self.payloads]
        if self.known is None:
            return kept
        return [replace(item, crm_id=self.known.get(item.key)) for item in kept]

    def write(self, todo: Sequence[Item], on_batch: OnBatch) -> list[SyncOutcome]:
        """Re-keyed persons onto the CRM record they were synced as (by id), the others upserted by key."""
        moved: list[tuple[dict[str, Any], str]] = []
        rest: list[dict[str, Any]] = []
        for item in todo:
            row = self.rows.get(item.key)
            if row and row.moved_from and row.crm_id:
                moved.append((item.data, row.crm_id))
            else:
                rest.append(item.data)
        extra: dict[str, Any] = {} if self.payloads is None else {"payloads": self.payloads}
        if moved:
            on_batch(self.sink.move(moved, on_batch=on_batch, **extra))
        if self.known is not None:  # the records just read are updated by id (never created under update_only)
            extra.update(known={key: crm_id for key, crm_id in self.known.items() if crm_id},
                         create=self.plan.mode != UPDATE_ONLY)
        return self.sink.upsert(rest, on_batch=on_batch, **extra)


def _apply_mapping(
    sink: Any,
    todo: list[dict[str, Any]],
    states: dict[str, Any],
    stats: PushStats,
    plan: WritePlan,
) -> tuple[dict[str, dict[str, Any]], dict[str, str | None] | None]:
    """(person key -> what to send, for the persons the mode sends; person key -> CRM id or None, when read).

    The current records are read (in the sink's batches, under its rate
    budget) only when `if_empty`, the mode or a dry run's preview needs them.
    """
    dry_run = stats.dry_run
    desired = {person["person_key"]: sink.properties(person) for person in todo}
    current: dict[str, Any] | None = None
    if plan.needs_current or dry_run:
        names = sorted({name for props in desired.values() for name in props}) if dry_run else list(plan.if_empty)
        ids = {key: state.crm_id for key, state in states.items() if state and state.moved_from and state.crm_id}
        current = sink.current(todo, names, ids)
    payloads: dict[str, dict[str, Any]] = {}
    for key, wanted in desired.items():
        now = current.get(key) if current is not None else None
        reason = skip_reason(plan.mode, now is not None) if current is not None else None
        if reason:
            stats.skipped[reason] += 1
            continue
        payloads[key], held = outgoing(wanted, now, plan.policies)
        stats.held_back += sum(not same((now or {}).get(name), wanted[name]) for name in held)
        if dry_run:
            found = changes(key, wanted, now, plan.policies)
            stats.persons_changing += bool(found)
            stats.preview.extend(found[:max(0, PREVIEW_ROWS - len(stats.preview))])
    if current is None:
        return payloads, None
    return payloads, {key: str(now.get("id") or "") or None if now is not None else None
                      for key, now in current.items()}

