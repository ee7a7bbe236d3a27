"""The SQLAlchemy state store: raw payloads, canonical records, persons,
per-target sync state, quarantine, checkpoints and run history.

Every write is an idempotent upsert keyed by natural ids, so a run that is
killed and started again (or two runs writing at once) converge on the same
state. Reads that may cover millions of rows go by keyset pages so memory
stays flat and no long transaction holds SQLite's writer lock.

`StateStore` is one handle composed of one mixin per table family, each in
its own module: raw.py (raw_records), records.py (records, quarantine),
identity.py (the matching rule in SQL), persons.py (persons, and the CRM
records that follow a re-keyed person), sync.py (sync_state), runs.py
(checkpoints, runs, run_days); base.py holds what they share. This module
keeps the engine, the schema upgrade and the names callers import from
here (the row dataclasses live in rows.py).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Mapping

import sqlalchemy as sa

from pipelines.state import migrations
from pipelines.state.base import refused_data, utcnow
from pipelines.state.files import create_private
from pipelines.state.identity import IdentityFamily
from pipelines.state.persons import PersonsFamily
from pipelines.state.raw import RawFamily
from pipelines.state.records import RecordsFamily
from pipelines.state.rows import (
    CONTACT_STREAM,
    CONVERSATION_STREAM,
    EventRow,
    Normalized,
    Quarantined,
    RawRow,
    Rekey,
    SyncRow,
)
from pipelines.state.runs import RunsFamily
from pipelines.state.sync import SyncFamily
from pipelines.state.tables import persons, quarantine, raw_records, records, run_days, runs, sync_state

__all__ = [
    "CONTACT_STREAM",
    "CONVERSATION_STREAM",
    "DEFAULT_FILE",
    "EventRow",
    "Normalized",
    "Quarantined",
    "RawRow",
    "Rekey",
    "StateStore",
    "SyncRow",
    "default_database_url",
    "redacted",
    "refused_data",
    "utcnow",
]

DEFAULT_FILE = "crm_sync.db"

_COUNTED = {t.name: t for t in (raw_records, records, quarantine, persons, sync_state, runs, run_days)}


def default_database_url(env: Mapping[str, str] = os.environ) -> str:
    """SYNC_DATABASE_URL, else a SQLite file under $DAGSTER_HOME or ./.crm_sync/."""
    if env.get("SYNC_DATABASE_URL"):
        return env["SYNC_DATABASE_URL"]
    folder = Path(env["DAGSTER_HOME"]) if env.get("DAGSTER_HOME") else Path(".crm_sync")
    return f"sqlite:///{(folder / DEFAULT_FILE).resolve()}"


def redacted(url: str) -> str:
    """The URL with any password masked, for logs and metadata."""
    return sa.make_url(url).render_as_string(hide_password=True)


def _make_engine(url: str) -> sa.Engine:
    if url.startswith("sqlite"):
        create_private(url)
        engine = sa.create_engine(url, connect_args={"timeout": 60})

        @sa.event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            # WAL lets readers run beside the one writer; the busy timeout
            # makes a second writer wait instead of failing.
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA busy_timeout=60000")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.close()

        return engine
    return sa.create_engine(url, pool_pre_ping=True)


class StateStore(RawFamily, RecordsFamily, IdentityFamily, PersonsFamily, SyncFamily, RunsFamily):
    """One handle on the store; cheap to create, safe to share across threads."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = _make_engine(url)
        migrations.upgrade(self.engine)

    def __repr__(self) -> str:
        return f"StateStore({redacted(self.url)!r})"

    def dispose(self) -> None:
        self.engine.dispose()

    def count(self, table_name: str, **where: Any) -> int:
        """Rows of one table (raw_records, records, quarantine, persons, sync_state, runs, run_days)
        whose columns equal `where`."""
        table = _COUNTED[table_name]
        query = sa.select(sa.func.count()).select_from(table)
        for column, value in where.items():
            query = query.where(table.c[column] == value)
        with self.engine.connect() as conn:
            return int(conn.execute(query).scalar_one())
