"""What every table family of the state store shares: the engine, the upsert, keyset pages.

The store is one class (`pipelines.state.store.StateStore`) composed of one
mixin per table family (raw.py, records.py, identity.py, persons.py,
sync.py, runs.py), so every caller keeps writing `store.save_raw(...)`.
Each family reaches the database only through what this base gives it,
which is why a family module can be read without the others.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any, Callable, Iterator, Mapping, Sequence

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def refused_data(exc: sa.exc.StatementError) -> bool:
    """Did the database (or the driver, binding parameters) refuse a row's data, rather than fail?

    Data errors (a value too long, a character the encoding cannot hold,
    invalid JSON) are about one row, so the writes retry row by row; a lost
    connection, a lock timeout or a missing table is not, and is raised.
    """
    if isinstance(exc, (sa.exc.DataError, sa.exc.IntegrityError)):
        return True
    return not isinstance(exc, sa.exc.DBAPIError)  # raised while binding: encoding, JSON serialization


class StoreBase:
    """The engine and the two write/read helpers every family uses."""

    engine: sa.Engine

    def _upsert(
        self,
        conn: sa.Connection,
        table: sa.Table,
        rows: Sequence[Mapping[str, Any]],
        update: Sequence[str],
        extra: Mapping[str, Any] | None = None,
    ) -> None:
        """Insert `rows`, or update the columns `update` (and `extra`) of those whose primary key exists."""
        if not rows:
            return
        dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
        stmt = dialect.insert(table)
        keys = [c.name for c in table.primary_key.columns]
        stmt = stmt.on_conflict_do_update(
            index_elements=keys,
            set_={**{name: stmt.excluded[name] for name in update}, **(extra or {})},
        )
        conn.execute(stmt, list(rows))

    def _keyset(
        self, query: sa.Select, key: sa.ColumnElement, batch: int, make: Callable[[Any], Any]
    ) -> Iterator[list]:
        """`query` in pages of `batch` by `key` (one short read each), each row made by `make`."""
        last = None
        while True:
            page_query = query.order_by(key).limit(batch)
            if last is not None:
                page_query = page_query.where(key > last)
            with self.engine.connect() as conn:
                rows = conn.execute(page_query).all()
            if not rows:
                return
            last = getattr(rows[-1], key.key)
            yield [make(row) for row in rows]
