"""Booked appointments: landed, normalized, linked to their person, and sent as one meeting/Event each.

The webhook job (`webhook_sync`) hands this module the `data` of each
`appointment.booked` event and calls, in this order:

1. `land_appointments(store, payloads, run_id=...)`: each payload is kept
   twice, as AgentPro's listed conversations are: raw stream `appointments`
   (-> canonical `appointment` records) and raw stream
   `appointment_customers` (-> a canonical contact of the customer who
   booked, `schemas.appointment.contact_from_appointment`), so that each raw
   row has one output and one normalization mark;
2. `normalize_appointments(store, region=..., run_id=...)`;
3. `pipelines.steps.persons.rebuild_persons(store)`: the customer becomes
   a person (or joins one) by the identity rule;
4. `pipelines.steps.push.push_persons(store, sink)`: a person the CRM has
   never seen is created there first;
5. `push_appointments(store, sink, ids=...)`: links each appointment to its
   person, then creates or updates its meeting/Event on the person's contact.

An appointment's person is the person of the contact record taken from the
same booking (it went through the identity rule in step 3), else of the
source's contact that shares its `link_id` (the AgentClara customer_id),
as a conversation is linked. Pushing follows `pipelines/steps/activities.py`:
the hash of what the CRM would receive (`sink.appointment(appointment,
contact_id)`) against sync_state (object_type "appointment", key
"agentclara:<appointment id>"), the CRM id kept so the same appointment
booked again updates its meeting/Event in place; outcomes are recorded
by the one sync step (pipelines/steps/sync.py, through
`activities.hung_off_contacts`: a contact gone from the CRM is sent again
next run, then its appointment).
"""

from __future__ import annotations

from typing import Any, Iterable, Iterator, Mapping, Protocol, Sequence

import sqlalchemy as sa

from connectors.sink import SyncOutcome
from pipelines.state import StateStore
from pipelines.state.store import CONTACT_STREAM, EventRow, Normalized, RawRow
from pipelines.state.tables import records
from pipelines.figures import Display
from pipelines.steps.activities import LABELS as ACTIVITY_LABELS
from pipelines.steps.activities import ActivityStats, hung_off_contacts
from pipelines.steps.normalize import Kind, NormalizeStats, normalize_pending
from pipelines.steps.sync import Item, OnBatch, run
from schemas.appointment import (
    SCHEMA,
    SOURCE,
    appointment_day,
    appointment_key,
    contact_from_appointment,
    normalize_appointment,
)
from schemas.raw import raw_key

OBJECT_TYPE = "appointment"
RAW_STREAM = "appointments"  # raw: the payloads, normalized into appointments
CUSTOMER_STREAM = "appointment_customers"  # raw: the same payloads, normalized into their customer's contact
APPOINTMENT_STREAM = "appointments"  # canonical
CHUNK = 500


def appointment_row(row: RawRow, data: dict[str, Any]) -> Normalized:
    """The stored row of a canonical appointment; its person is linked later (`link_appointments`)."""
    return Normalized(
        source=row.source, stream=APPOINTMENT_STREAM, raw_stream=row.stream, record_id=row.record_id, data=data,
        payload_hash=row.payload_hash, email=data.get("email"), phone=data.get("phone"),
        event_day=appointment_day(data), event_at=data.get("start_at"),
        link_id=str(data.get("contact_source_id") or data.get("source_id")),
    )


APPOINTMENTS = Kind(SCHEMA, APPOINTMENT_STREAM, {(SOURCE, RAW_STREAM): normalize_appointment}, appointment_row)
CUSTOMER_NORMALIZERS = {(SOURCE, CUSTOMER_STREAM): contact_from_appointment}


def land_appointments(store: StateStore, payloads: Iterable[Any], *, run_id: str | None = None) -> int:
    """Keep each `appointment.booked` payload under its id in both raw streams; returns how many are new or changed.

    A payload without a usable id is kept under its content hash, so that
    normalizing quarantines it with its reason (schemas.raw.raw_key).
    """
    items = [(raw_key(payload, "id"), payload) for payload in payloads]
    changed = store.save_raw(SOURCE, RAW_STREAM, items, run_id=run_id)
    store.save_raw(SOURCE, CUSTOMER_STREAM, items, run_id=run_id)
    return changed


def normalize_appointments(store: StateStore, *, region: str = "US",
                           run_id: str | None = None) -> tuple[NormalizeStats, NormalizeStats]:
    """Normalize the pending payloads: (their customers as contacts, the appointments), bad ones quarantined."""
    customers = normalize_pending(store, SOURCE, CUSTOMER_STREAM, region=region, run_id=run_id,
                                  normalizers=CUSTOMER_NORMALIZERS)
    appointments = normalize_pending(store, SOURCE, RAW_STREAM, region=region, run_id=run_id, kind=APPOINTMENTS)
    return customers, appointments


def link_appointments(store: StateStore) -> tuple[int, int]:
    """Give every stored appointment its person (rule in the module doc); returns (linked, unlinked).

    Run after `rebuild_persons`, which gives the contact records their
    person keys. Only rows whose person changed are written.
    """
    contact = records.alias("c")
    c = contact.c
    own = sa.select(c.person_key).where(c.stream == CONTACT_STREAM, c.source == records.c.source,
                                        c.record_id == records.c.record_id).scalar_subquery()
    shared = sa.select(sa.func.min(c.person_key)).where(c.stream == CONTACT_STREAM, c.source == records.c.source,
                                                        c.link_id == records.c.link_id).scalar_subquery()
    person = sa.func.coalesce(own, shared)
    with store.engine.begin() as conn:
        conn.execute(records.update().where(records.c.stream == APPOINTMENT_STREAM,
                                            records.c.person_key.is_distinct_from(person)).values(person_key=person))
        counts = dict(conn.execute(
            sa.select(records.c.person_key.is_not(None), sa.func.count())
            .where(records.c.stream == APPOINTMENT_STREAM).group_by(records.c.person_key.is_not(None))).all())
    return int(counts.get(True, 0)), int(counts.get(False, 0))


def iter_appointments(store: StateStore, *, ids: Sequence[str] | None = None,
                      batch: int = CHUNK) -> Iterator[list[EventRow]]:
    """Stored appointments (only these appointment ids when given), by (source, id), in keyset pages."""
    return store.iter_events(APPOINTMENT_STREAM, ids=ids, batch=batch)


class AppointmentSink(Protocol):
    target: str

    def prepare_appointments(self, *, create: bool = True) -> None:
        """Check what meetings/Events need before anything is written, and create what is missing if `create`."""

    def appointment(self, appointment: Mapping[str, Any], contact_id: str | None) -> dict[str, Any]:
        """What the CRM would receive for this appointment (hashed for diffing)."""

    def appointment_input(self, appointment: Mapping[str, Any], contact_id: str | None,
                          crm_id: str | None) -> dict[str, Any]:
        """One input of `upsert_appointments`."""

    def upsert_appointments(self, items: Sequence[Mapping[str, Any]]) -> list[SyncOutcome]:
        """One outcome per appointment key."""


class AppointmentStats(ActivityStats):
    """The activity counts, per day an appointment starts on, labelled for appointments."""

    def as_metadata(self, labels: Mapping[str, str] | None = None) -> Display:
        return super().as_metadata(LABELS if labels is None else labels)


# The appointment push's figures in words, for display only: the activities' but what is considered.
LABELS: dict[str, str] = {key: label for key, label in {
    **ACTIVITY_LABELS, "considered": "appointments considered"}.items() if key != "days"}


def push_appointments(store: StateStore, sink: AppointmentSink, *, dry_run: bool = False,
                      ids: Sequence[str] | None = None) -> AppointmentStats:
    """Link, then create or update the meeting/Event of every changed appointment (of `ids` when given).

    Run after the contact push (the person's CRM contact id is what the
    meeting/Event hangs off). A spent quota stops it with progress kept
    (`stats.stopped`); auth and set-up errors raise. A dry run creates
    nothing in the CRM, not even a missing property.
    """
    stats = AppointmentStats(sink.target, dry_run=dry_run)
    link_appointments(store)
    sink.prepare_appointments(create=not dry_run)

    def write(todo: Sequence[Item], _on_batch: OnBatch) -> list[SyncOutcome]:
        return sink.upsert_appointments([sink.appointment_input(item.data[0].data, item.data[1], item.crm_id)
                                         for item in todo])

    return run(stats, iter_appointments(store, ids=ids), lambda chunk: hung_off_contacts(
        store, OBJECT_TYPE, chunk, lambda row: appointment_key(row.data), sink.appointment, write, stats))
