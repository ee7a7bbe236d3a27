"""Creates and upgrades the state store's own schema, step by step.

Each step takes the store from version N to N+1 and runs in one
transaction, under a lock, so two processes starting at once cannot both
apply it. Add a step here, never hand-run SQL.
"""

from __future__ import annotations

from typing import Callable

import sqlalchemy as sa

from pipelines.state import tables

Step = Callable[[sa.Connection], None]


def _create_v1(conn: sa.Connection) -> None:
    tables.metadata.create_all(conn, checkfirst=True)


def _conversations_v2(conn: sa.Connection) -> None:
    """v1 -> v2: conversation columns on `records` (+ their indexes) and the `run_days` table.

    On a new store, step 0 already created both from today's table
    definitions, so every part here checks first and the step is a no-op.
    """
    present = {column["name"] for column in sa.inspect(conn).get_columns("records")}
    for name in tables.RECORDS_V2_COLUMNS:
        if name not in present:
            kind = tables.records.c[name].type.compile(dialect=conn.dialect)
            conn.execute(sa.text(f"ALTER TABLE records ADD COLUMN {name} {kind}"))
    for index in tables.records.indexes:
        if index.name in tables.RECORDS_V2_INDEXES:
            index.create(conn, checkfirst=True)
    tables.run_days.create(conn, checkfirst=True)


def _sync_state_moved_from_v3(conn: sa.Connection) -> None:
    """v2 -> v3: `sync_state.moved_from`, so a re-keyed person keeps its CRM record."""
    if "moved_from" not in {column["name"] for column in sa.inspect(conn).get_columns("sync_state")}:
        kind = tables.sync_state.c.moved_from.type.compile(dialect=conn.dialect)
        conn.execute(sa.text(f"ALTER TABLE sync_state ADD COLUMN moved_from {kind}"))


STEPS: dict[int, Step] = {0: _create_v1, 1: _conversations_v2, 2: _sync_state_moved_from_v3}
LATEST = max(STEPS) + 1


class StoreVersionError(RuntimeError):
    """The database was written by a newer version of this project."""


def _lock(conn: sa.Connection) -> None:
    if conn.dialect.name == "postgresql":
        # A transaction-scoped advisory lock: concurrent upgraders queue here.
        conn.execute(sa.text("SELECT pg_advisory_xact_lock(727274)"))
    elif conn.dialect.name == "sqlite":
        conn.exec_driver_sql("BEGIN IMMEDIATE")


def current_version(conn: sa.Connection) -> int:
    if not sa.inspect(conn).has_table("store_meta"):
        return 0
    value = conn.execute(
        sa.select(tables.store_meta.c.value).where(tables.store_meta.c.key == "schema_version")
    ).scalar()
    return int(value) if value is not None else 0


def upgrade(engine: sa.Engine) -> int:
    """Bring the store to LATEST; returns the version found before upgrading."""
    with engine.connect() as conn:
        if engine.dialect.name == "sqlite":
            conn.commit()  # BEGIN IMMEDIATE below needs no transaction open
        _lock(conn)
        found = version = current_version(conn)
        if version > LATEST:
            raise StoreVersionError(
                f"state store is at schema version {version}, newer than this "
                f"project's {LATEST}: upgrade the project or use another SYNC_DATABASE_URL"
            )
        while version < LATEST:
            STEPS[version](conn)
            version += 1
            _set_version(conn, version)
        conn.commit()
    return found


def _set_version(conn: sa.Connection, version: int) -> None:
    meta = tables.store_meta
    updated = conn.execute(
        meta.update().where(meta.c.key == "schema_version").values(value=str(version))
    ).rowcount
    if not updated:
        conn.execute(meta.insert().values(key="schema_version", value=str(version)))
