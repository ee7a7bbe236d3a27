"""The SQLAlchemy state store (SQLite by default, PostgreSQL at scale).

`StateStore` (store.py) is composed of one module per table family: raw.py,
records.py, identity.py, persons.py, sync.py, runs.py; rows.py holds the
row types, locks.py the run locks, tables.py and migrations.py the schema.
"""

from pipelines.state.locks import (
    LockSettings,
    LockTimeout,
    push_lock_name,
    rebuild_lock_names,
    store_lock,
    store_locks,
)
from pipelines.state.store import StateStore, default_database_url, redacted

__all__ = [
    "LockSettings",
    "LockTimeout",
    "StateStore",
    "default_database_url",
    "push_lock_name",
    "rebuild_lock_names",
    "redacted",
    "store_lock",
    "store_locks",
]
