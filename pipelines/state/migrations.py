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


def _locks_v4(conn: sa.Connection) -> None:
    """v3 -> v4: the `locks` table, so two runs at once never push (or rebuild persons) together."""
    tables.locks.create(conn, checkfirst=True)


def _webhook_inbox_v5(conn: sa.Connection) -> None:
    """v4 -> v5: the `webhook_inbox` table, where received webhook events wait for `webhook_sync`."""
    tables.webhook_inbox.create(conn, checkfirst=True)


STEPS: dict[int, Step] = {0: _create_v1, 1: _conversations_v2, 2: _sync_state_moved_from_v3, 3: _locks_v4,
                          4: _webhook_inbox_v5}
LATEST = max(STEPS) + 1


# SQLite plans by the statistics that only ANALYZE writes (sqlite_stat1).
# Without them its choice between two usable indexes depends on the order
# the indexes were created in, which SQLAlchemy varies from process to
# process: one order made resolve_phone_identities read every contact for
# each email-less one (100,000 contacts: over 270 s instead of 1 s). So
# every open pins representative statistics for `records`, SQLite's
# documented way to fix its plans ("Manual Control Of Query Plans Using
# SQLITE_STAT Tables", sqlite.org/optoverview.html). Each line: rows in a
# large store, then rows per distinct value of each prefix of the index.
# `stream` has two values; a phone, an email or a person key, a handful of rows.
SQLITE_RECORDS_STATISTICS: dict[str | None, str] = {
    None: "1000000",
    "sqlite_autoindex_records_1": "1000000 250000 500000 1",  # (source, stream, record_id)
    "ix_records_stream_day": "1000000 500000 1000",
    "ix_records_stream_person": "1000000 500000 2",
    "ix_records_phone_email": "1000000 3 1",
    "ix_records_person_key": "1000000 2",
    "ix_records_link": "1000000 500000 250000 2 2",
}


def pin_sqlite_statistics(conn: sa.Connection) -> None:
    """Write SQLITE_RECORDS_STATISTICS and load them into this connection (new ones load them on open).

    Nothing is written when the store already has them, as on every open but the first.
    """
    if sa.inspect(conn).has_table("sqlite_stat1"):
        pinned = dict(conn.exec_driver_sql("SELECT idx, stat FROM sqlite_stat1 WHERE tbl = 'records'").all())
        if pinned == SQLITE_RECORDS_STATISTICS:
            return
    conn.exec_driver_sql("ANALYZE store_meta")  # creates sqlite_stat1 without reading the large tables
    conn.exec_driver_sql("DELETE FROM sqlite_stat1 WHERE tbl = 'records'")
    for index, stat in SQLITE_RECORDS_STATISTICS.items():
        conn.exec_driver_sql("INSERT INTO sqlite_stat1 (tbl, idx, stat) VALUES ('records', ?, ?)", (index, stat))
    conn.exec_driver_sql("ANALYZE sqlite_master")  # reloads the statistics


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
        if engine.dialect.name == "sqlite":
            pin_sqlite_statistics(conn)
        conn.commit()
    return found


def _set_version(conn: sa.Connection, version: int) -> None:
    meta = tables.store_meta
    updated = conn.execute(
        meta.update().where(meta.c.key == "schema_version").values(value=str(version))
    ).rowcount
    if not updated:
        conn.execute(meta.insert().values(key="schema_version", value=str(version)))
