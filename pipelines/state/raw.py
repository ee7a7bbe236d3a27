"""The `raw_records` family: payloads as the sources sent them, and which are normalized.

Raw payloads are kept by (source, stream, id) so that a new schema version
can re-normalize history without calling a source again. This family owns
what is kept and the marks saying which payload, at which schema version,
was last normalized (`MARK_NORMALIZED`, set by records.py in the same
transaction as the canonical records). It is separate because it is the
only write path that takes outside data as it came, and so the only one
that must survive a payload the database refuses.
"""

from __future__ import annotations

from collections import Counter
from typing import Any, Iterable, Iterator, Mapping, Sequence

import sqlalchemy as sa

from pipelines.state.base import StoreBase, refused_data, utcnow
from pipelines.state.rows import RawRow
from pipelines.state.tables import quarantine, raw_records
from schemas.errors import UNSTORABLE
from schemas.hashing import content_hash
from schemas.raw import content_key, is_storable_key, storable

# Marks one raw row normalized, if its payload is still the one that was normalized.
MARK_NORMALIZED = (
    raw_records.update()
    .where(
        raw_records.c.source == sa.bindparam("m_source"),
        raw_records.c.stream == sa.bindparam("m_stream"),
        raw_records.c.record_id == sa.bindparam("m_id"),
        raw_records.c.payload_hash == sa.bindparam("m_hash"),
    )
    .values(normalized_hash=sa.bindparam("m_hash"))
)


class RawFamily(StoreBase):
    """Keep raw payloads, read them back, and find those that need normalizing."""

    def save_raw(
        self,
        source: str,
        stream: str,
        items: Iterable[tuple[Any, Any]],
        *,
        run_id: str | None = None,
        changes: Counter[str] | None = None,
        landed: list[RawRow] | None = None,
    ) -> int:
        """Keep raw payloads by id; returns how many are new or changed.

        Each payload is kept as `schemas.raw.storable` makes it (as it came,
        unless the database cannot hold that), under its id when that can
        be a key, else under its content hash (`schemas.raw.content_key`).
        `changes`, when given, counts what `storable` changed, per change;
        `landed`, when given, gets the new or changed rows as stored (for
        normalizing them while the read goes on).
        A page the database still refuses is written row by row, so one
        row never costs the others (`_save_raw_rows`).
        """
        now = utcnow()
        rows: dict[str, dict[str, Any]] = {}
        for record_id, payload in items:
            kept = storable(payload)
            if changes is not None:
                changes.update(kept.changes)
            key = record_id if is_storable_key(record_id) else content_key(kept.value)
            rows[key] = {
                "source": source, "stream": stream, "record_id": key, "payload": kept.value,
                "payload_hash": content_hash(kept.value), "first_seen_at": now, "fetched_at": now,
                "run_id": run_id,
            }
        if not rows:
            return 0
        try:
            changed = self._save_raw_rows(source, stream, list(rows.values()))
        except sa.exc.StatementError as exc:
            if not refused_data(exc):
                raise
            if len(rows) == 1:
                self._quarantine_unstorable(source, stream, next(iter(rows.values())), run_id)
                return 0
        else:
            if landed is not None:
                landed.extend(RawRow(source, stream, r["record_id"], r["payload"], r["payload_hash"]) for r in changed)
            return len(changed)
        return sum(self.save_raw(source, stream, [(key, row["payload"])], run_id=run_id, landed=landed)
                   for key, row in rows.items())

    def _save_raw_rows(self, source: str, stream: str, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        with self.engine.begin() as conn:
            known = dict(
                conn.execute(
                    sa.select(raw_records.c.record_id, raw_records.c.payload_hash).where(
                        raw_records.c.source == source,
                        raw_records.c.stream == stream,
                        raw_records.c.record_id.in_([row["record_id"] for row in rows]),
                    )
                ).all()
            )
            changed = [r for r in rows if known.get(r["record_id"]) != r["payload_hash"]]
            self._upsert(conn, raw_records, changed, ["payload", "payload_hash", "fetched_at", "run_id"])
        return changed

    def _quarantine_unstorable(self, source: str, stream: str, row: Mapping[str, Any], run_id: str | None) -> None:
        """A raw row the database refuses even alone: quarantined under its raw stream, without
        its payload (the one thing known not to fit), so it is counted, not lost silently."""
        with self.engine.begin() as conn:
            self._upsert(conn, quarantine, [{
                "source": source, "stream": stream, "record_id": row["record_id"], "reason": UNSTORABLE,
                "detail": f"the raw payload could not be stored (hash {row['payload_hash'][:16]})",
                "payload": None, "quarantined_at": utcnow(), "run_id": run_id,
            }], ["reason", "detail", "payload", "quarantined_at", "run_id"])

    def raw_payloads(self, source: str, stream: str, record_ids: Sequence[str]) -> dict[str, Any]:
        """The kept payloads of these ids (those the store has), by id."""
        if not record_ids:
            return {}
        r = raw_records.c
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(r.record_id, r.payload).where(
                    r.source == source, r.stream == stream, r.record_id.in_(list(record_ids))
                )
            ).all()
        return {row.record_id: row.payload for row in rows}

    def iter_pending_raw(
        self, source: str, stream: str, version: int, *, batch: int = 2000
    ) -> Iterator[list[RawRow]]:
        """Raw rows whose payload or schema version changed since they were normalized."""
        r = raw_records.c
        pending = sa.or_(
            r.normalized_hash.is_(None),
            r.normalized_hash != r.payload_hash,
            r.normalized_version != version,
        )
        yield from self._keyset(
            sa.select(r.record_id, r.payload, r.payload_hash).where(
                r.source == source, r.stream == stream, pending
            ),
            r.record_id,
            batch,
            lambda row: RawRow(source, stream, row.record_id, row.payload, row.payload_hash),
        )

    def reset_normalization(self, source: str | None = None, streams: Sequence[str] | None = None) -> int:
        """Mark kept raw payloads for re-normalization (after a normalizer change)."""
        stmt = raw_records.update().values(normalized_hash=None)
        if source:
            stmt = stmt.where(raw_records.c.source == source)
        if streams is not None:
            stmt = stmt.where(raw_records.c.stream.in_(list(streams)))
        with self.engine.begin() as conn:
            return conn.execute(stmt).rowcount
