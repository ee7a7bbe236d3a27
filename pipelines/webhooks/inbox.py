"""The `webhook_inbox` table: events as received, then marked as `webhook_sync` handles them.

One row per (source, event id): the receiver's insert does nothing when the
id is already there, so a replayed delivery changes nothing. `seq` orders
the rows; a batch is a range of it. Statuses:

- `pending`: stored, waiting for a `webhook_sync` run (the only status the sensor batches);
- `done`: its writes are recorded (raw record, canonical record, persons, CRM pushes;
  for a booking, its meeting/Event too);
- `ignored`: an event type the sync does not act on, kept as it came.

`waiting_for_appointment_support` is no longer written: it is what bookings
were marked before the sinks pushed appointments. The sensor puts any such
event back to pending (`requeue`), so those bookings are synced too.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Sequence

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from pipelines.state.tables import webhook_inbox as inbox
from pipelines.webhooks.events import SOURCE, Event

PENDING = "pending"
DONE = "done"
WAITING_FOR_APPOINTMENTS = "waiting_for_appointment_support"  # legacy: only ever requeued
IGNORED = "ignored"


@dataclass(frozen=True)
class InboxEvent:
    """One stored event, as webhook_sync reads it."""

    seq: int
    event_id: str
    event_type: str
    payload: dict[str, Any]


@dataclass(frozen=True)
class Batch:
    """Pending events from `first` to `last` (inbox seq, inclusive): what one webhook_sync run handles."""

    first: int
    last: int
    count: int

    @property
    def run_key(self) -> str:
        """Names the batch for good (a seq is never reused), so the same batch is never run twice."""
        return f"agentclara-inbox:{self.first}-{self.last}:{self.count}"


def store_event(engine: sa.Engine, event: Event, *, source: str = SOURCE) -> bool:
    """Write the event unless its id is already stored; True when it is new. Committed on return."""
    dialect = postgresql if engine.dialect.name == "postgresql" else sqlite
    row = {"source": source, "event_id": event.event_id, "event_type": event.event_type,
           "payload": event.payload, "body_sha256": event.body_sha256, "received_at": _now(),
           "status": PENDING if event.known else IGNORED}
    statement = (dialect.insert(inbox).values(row).on_conflict_do_nothing(index_elements=["source", "event_id"])
                 .returning(inbox.c.seq))  # a row back only when inserted (rowcount is not reliable here)
    with engine.begin() as conn:
        return conn.execute(statement).first() is not None


def pending_batch(engine: sa.Engine, *, limit: int) -> Batch | None:
    """The oldest pending events, at most `limit` of them, as one batch; None when none wait."""
    seqs = (sa.select(inbox.c.seq).where(inbox.c.status == PENDING).order_by(inbox.c.seq).limit(limit)
            .subquery())
    with engine.connect() as conn:
        first, last, count = conn.execute(
            sa.select(sa.func.min(seqs.c.seq), sa.func.max(seqs.c.seq), sa.func.count())).one()
    return Batch(int(first), int(last), int(count)) if count else None


def pending_events(engine: sa.Engine, first: int, last: int) -> list[InboxEvent]:
    """The events of [first, last] that are still pending, in seq order (done ones are never redone)."""
    c = inbox.c
    query = (sa.select(c.seq, c.event_id, c.event_type, c.payload)
             .where(c.status == PENDING, c.seq >= first, c.seq <= last).order_by(c.seq))
    with engine.connect() as conn:
        return [InboxEvent(row.seq, row.event_id, row.event_type, row.payload) for row in conn.execute(query)]


def mark(engine: sa.Engine, seqs: Sequence[int], status: str, *, run_id: str, detail: str | None = None) -> int:
    """Set these pending events' status (only pending ones: a mark never undoes another run's)."""
    if not seqs:
        return 0
    c = inbox.c
    with engine.begin() as conn:
        return conn.execute(
            inbox.update().where(c.seq.in_(list(seqs)), c.status == PENDING)
            .values(status=status, run_id=run_id, detail=detail, processed_at=_now())).rowcount


def status_counts(engine: sa.Engine) -> dict[str, int]:
    """Events per status (for the run's metadata, the demo and the benchmark)."""
    with engine.connect() as conn:
        rows = conn.execute(sa.select(inbox.c.status, sa.func.count()).group_by(inbox.c.status)).all()
    return {status: int(n) for status, n in rows}


def events(engine: sa.Engine) -> list[dict[str, Any]]:
    """Every stored event (tests and the demo): seq, event id, type, status, run id."""
    c = inbox.c
    with engine.connect() as conn:
        rows = conn.execute(sa.select(c.seq, c.event_id, c.event_type, c.status, c.run_id, c.detail)
                            .order_by(c.seq)).mappings().all()
    return [dict(row) for row in rows]


def check(engine: sa.Engine) -> None:
    """Raise unless the store answers (the health endpoint): one cheap read of the inbox."""
    with engine.connect() as conn:
        conn.execute(sa.select(inbox.c.seq).limit(1)).all()


def _now() -> datetime:
    return datetime.now(timezone.utc)


def requeue(engine: sa.Engine, status: str = WAITING_FOR_APPOINTMENTS) -> int:
    """Put every event of `status` back to pending (the next batch takes them); returns how many.

    Idempotent and migration-free: the bookings marked waiting before
    appointments were pushed go through webhook_sync once, then are done.
    A read first, so the sensor calling it every tick writes nothing (no
    write lock against the receiver) once none is left.
    """
    c = inbox.c
    with engine.connect() as conn:
        if conn.execute(sa.select(c.seq).where(c.status == status).limit(1)).first() is None:
            return 0
    with engine.begin() as conn:
        return conn.execute(inbox.update().where(c.status == status)
                            .values(status=PENDING, run_id=None, processed_at=None, detail=None)).rowcount
