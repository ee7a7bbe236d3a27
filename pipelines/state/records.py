"""The `records` and `quarantine` family: canonical records, and the payloads that could not be one.

A normalized chunk lands here in one transaction: its canonical records,
its quarantined payloads, each record leaving the other table when it
turns valid (or invalid), and its raw rows marked normalized. The two
tables are one family because a record is always in exactly one of them;
they are separate from raw.py because this is the canonical side, read by
identity resolution and by the pushes (`iter_conversations`).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Iterable, Iterator, Sequence

import sqlalchemy as sa

from pipelines.state.base import StoreBase, utcnow
from pipelines.state.raw import MARK_NORMALIZED
from pipelines.state.rows import CONTACT_STREAM, CONVERSATION_STREAM, EventRow, Normalized, Quarantined
from pipelines.state.tables import quarantine, records
from schemas.hashing import content_hash
from schemas.keys import canonical_person_key
from schemas.registry import current_version, migrate

_RECORD_UPDATES = ["schema_name", "schema_version", "data", "email", "phone", "person_key",
                   "event_day", "link_id", "event_at", "channel", "content_hash", "normalized_at"]
_QUARANTINE_UPDATES = ["reason", "detail", "payload", "quarantined_at", "run_id"]


def _record_row(n: Normalized, now: datetime) -> dict[str, Any]:
    return {
        "source": n.source, "stream": n.stream, "record_id": n.record_id,
        "schema_name": n.data["schema"], "schema_version": n.data["version"], "data": n.data,
        "email": n.email, "phone": n.phone, "person_key": n.person_key, "event_day": n.event_day,
        "link_id": n.link_id, "event_at": n.event_at, "channel": n.channel,
        "content_hash": content_hash(n.data), "normalized_at": now,
    }


def _quarantine_row(q: Quarantined, now: datetime, run_id: str | None) -> dict[str, Any]:
    return {
        "source": q.source, "stream": q.stream, "record_id": q.record_id, "reason": q.reason,
        "detail": q.detail, "payload": q.payload, "quarantined_at": now, "run_id": run_id,
    }


def _group_ids(rows: Iterable[Normalized | Quarantined]) -> Iterator[tuple[str, str, list[str]]]:
    groups: dict[tuple[str, str], list[str]] = {}
    for row in rows:
        groups.setdefault((row.source, row.stream), []).append(row.record_id)
    for (source, stream), ids in groups.items():
        yield source, stream, ids


class RecordsFamily(StoreBase):
    """Write a normalized chunk atomically; read quarantine and stored conversations."""

    def save_normalized(
        self, version: int, good: Sequence[Normalized], bad: Sequence[Quarantined], *, run_id: str | None = None
    ) -> None:
        """Store one chunk's outcome and mark its raw rows normalized, atomically."""
        now = utcnow()
        with self.engine.begin() as conn:
            self._upsert(conn, records, [_record_row(n, now) for n in good], _RECORD_UPDATES)
            self._upsert(conn, quarantine, [_quarantine_row(q, now, run_id) for q in bad], _QUARANTINE_UPDATES)
            # A record that is now valid leaves quarantine, and the reverse.
            for rows, table in ((good, quarantine), (bad, records)):
                for source, stream, ids in _group_ids(rows):
                    conn.execute(
                        table.delete().where(
                            table.c.source == source, table.c.stream == stream, table.c.record_id.in_(ids)
                        )
                    )
            # One statement for the chunk (executemany), not one per record: it was a fifth of normalize.
            marks = []
            for row in [*good, *bad]:
                source, raw_stream, record_id = row.raw
                marks.append({"m_source": source, "m_stream": raw_stream, "m_id": record_id, "m_hash": row.payload_hash})
            if marks:
                conn.execute(MARK_NORMALIZED.values(normalized_version=version), marks)

    def upgrade_stale_contacts(self, stream: str = CONTACT_STREAM, *, batch: int = 2000) -> int:
        """Bring stored contacts of an older schema version to the current one, identity columns included.

        A run normalizes again the raw payload of every such record (its raw
        row's version is not current), but only for the sources it
        normalizes; this step makes sure the matching rule never sees what
        an older version let through from any other source (contact v2's
        `+1 555` phones: schemas.migrations.contact_v2_to_v3). Once every
        contact is current, a cheap query that finds nothing. Returns how
        many records were upgraded.
        """
        version = current_version("contact")
        c = records.c
        stale = (sa.select(c.source, c.record_id, c.data)
                 .where(c.stream == stream, c.schema_name == "contact", c.schema_version < version).limit(batch))
        update = records.update().where(
            c.source == sa.bindparam("u_source"), c.stream == stream, c.record_id == sa.bindparam("u_id"))
        upgraded = 0
        while True:  # each pass upgrades what it read, so the next one reads the rest
            with self.engine.begin() as conn:
                rows = conn.execute(stale).all()
                if not rows:
                    return upgraded
                values = []
                for row in rows:
                    data = migrate(row.data)
                    values.append({"u_source": row.source, "u_id": row.record_id, "data": data,
                                   "schema_version": data["version"], "email": data.get("email"),
                                   "phone": data.get("phone"), "content_hash": content_hash(data),
                                   "person_key": canonical_person_key(data.get("email"), data.get("phone"))})
                conn.execute(update, values)
            upgraded += len(rows)

    def iter_conversations(
        self, days: tuple[str, str] | None = None, *, batch: int = 1000
    ) -> Iterator[list[EventRow]]:
        """Stored conversations whose event_day is in [first, last] (all when None), by (source, id)."""
        return self.iter_events(CONVERSATION_STREAM, days=days, batch=batch)

    def iter_events(
        self,
        stream: str,
        *,
        days: tuple[str, str] | None = None,
        ids: Sequence[str] | None = None,
        batch: int = 1000,
    ) -> Iterator[list[EventRow]]:
        """Stored records of an event stream (conversations, appointments), optionally of some days
        or ids, by (source, id) in keyset pages: one short read each, whatever the store's size."""
        c = records.c
        query = sa.select(c.source, c.record_id, c.person_key, c.event_day, c.data).where(c.stream == stream)
        if days is not None:
            query = query.where(c.event_day >= days[0], c.event_day <= days[1])
        if ids is not None:
            query = query.where(c.record_id.in_(list(ids)))
        last: tuple[str, str] | None = None
        while True:
            page = query.order_by(c.source, c.record_id).limit(batch)
            if last is not None:
                page = page.where(sa.or_(c.source > last[0], sa.and_(c.source == last[0], c.record_id > last[1])))
            with self.engine.connect() as conn:
                rows = conn.execute(page).all()
            if not rows:
                return
            last = (rows[-1].source, rows[-1].record_id)
            yield [EventRow(r.source, r.record_id, r.person_key, r.event_day, r.data) for r in rows]

    def conversation_days(self, source: str | None, days: tuple[str, str]) -> dict[str, int]:
        """Stored conversations per event_day in [first, last] (of one source, or all)."""
        c = records.c
        query = (
            sa.select(c.event_day, sa.func.count())
            .where(c.stream == CONVERSATION_STREAM, c.event_day >= days[0], c.event_day <= days[1])
            .group_by(c.event_day)
        )
        if source:
            query = query.where(c.source == source)
        with self.engine.connect() as conn:
            return {day: int(n) for day, n in conn.execute(query).all()}

    def quarantine_reasons(self, source: str | None = None) -> dict[str, int]:
        """How many payloads are quarantined, per reason (of one source, or all)."""
        q = quarantine.c
        query = sa.select(q.reason, sa.func.count()).group_by(q.reason).order_by(q.reason)
        if source:
            query = query.where(q.source == source)
        with self.engine.connect() as conn:
            return {reason: n for reason, n in conn.execute(query).all()}

    def quarantine_sample(
        self, limit: int = 10, source: str | None = None, stream: str | None = None
    ) -> list[dict[str, Any]]:
        """The first `limit` quarantined payloads (source, record_id, reason, detail), by source and id."""
        q = quarantine.c
        query = sa.select(q.source, q.record_id, q.reason, q.detail).order_by(q.source, q.record_id).limit(limit)
        if source:
            query = query.where(q.source == source)
        if stream:
            query = query.where(q.stream == stream)
        with self.engine.connect() as conn:
            return [dict(row._mapping) for row in conn.execute(query).all()]
