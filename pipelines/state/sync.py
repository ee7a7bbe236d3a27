"""The `sync_state` family: per target and object type, what each CRM last accepted.

One row per (target, object type, key): the CRM id, the content hash last
accepted (a push sends only what differs), and the last failure (a
permanent one waits for a data change). Keys are person keys for
contacts and activity keys for activities and appointments
(schemas.keys). It is separate because it is the pushes' family: they
read and write nothing else, and a second CRM turned on later starts from
an empty set of rows of its own.
"""

from __future__ import annotations

from typing import Any, Sequence

import sqlalchemy as sa

from pipelines.state.base import StoreBase, utcnow
from pipelines.state.rows import SyncRow
from pipelines.state.tables import sync_state

_OK_UPDATES = ["crm_id", "last_hash", "synced_at", "failed_hash", "last_error", "error_code",
               "error_permanent", "attempts", "last_attempt_at", "moved_from"]
_FAILED_UPDATES = ["failed_hash", "last_error", "error_code", "error_permanent", "last_attempt_at"]


class SyncFamily(StoreBase):
    """Read a target's sync rows, record its outcomes, list its errors."""

    def sync_rows(self, target: str, object_type: str, keys: Sequence[str]) -> dict[str, SyncRow]:
        """The sync rows of these keys (those the target has), by key."""
        s = sync_state.c
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(s.key, s.last_hash, s.failed_hash, s.error_permanent, s.crm_id, s.moved_from).where(
                    s.target == target, s.object_type == object_type, s.key.in_(list(keys))
                )
            ).all()
        return {
            row.key: SyncRow(row.key, row.last_hash, row.failed_hash, bool(row.error_permanent), row.crm_id,
                             row.moved_from)
            for row in rows
        }

    def record_sync(
        self,
        target: str,
        object_type: str,
        results: Sequence[tuple[str, str, bool, str | None, str | None, str | None, bool]],
    ) -> None:
        """Record outcomes: (key, hash, ok, crm_id, error, error_code, permanent) each."""
        now = utcnow()
        ok_rows = [
            {"target": target, "object_type": object_type, "key": key, "crm_id": crm_id,
             "last_hash": h, "synced_at": now, "failed_hash": None, "last_error": None,
             "error_code": None, "error_permanent": False, "attempts": 0, "last_attempt_at": now,
             "moved_from": None}
            for key, h, ok, crm_id, _e, _c, _p in results if ok
        ]
        failed_rows = [
            {"target": target, "object_type": object_type, "key": key, "failed_hash": h,
             "last_error": error, "error_code": code, "error_permanent": permanent,
             "attempts": 1, "last_attempt_at": now}
            for key, h, ok, _crm_id, error, code, permanent in results if not ok
        ]
        with self.engine.begin() as conn:
            self._upsert(conn, sync_state, ok_rows, _OK_UPDATES)
            self._upsert(conn, sync_state, failed_rows, _FAILED_UPDATES,
                         extra={"attempts": sync_state.c.attempts + 1})

    def sync_errors(self, target: str, *, limit: int = 20) -> list[dict[str, Any]]:
        """The target's rows whose last attempt failed (key, error_code, last_error, attempts), by key."""
        s = sync_state.c
        query = (
            sa.select(s.key, s.error_code, s.last_error, s.attempts)
            .where(s.target == target, s.last_error.is_not(None))
            .order_by(s.key)
            .limit(limit)
        )
        with self.engine.connect() as conn:
            return [dict(row._mapping) for row in conn.execute(query).all()]
