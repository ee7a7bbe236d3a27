"""A throwaway PostgreSQL schema for a store that tests or benchmarks make and drop.

Connections through the URL it yields land in the new schema (search_path), so
a store created there never meets another run's tables in the same database.
"""

from __future__ import annotations

import uuid
from contextlib import contextmanager
from typing import Iterator

import sqlalchemy as sa


@contextmanager
def scratch_schema(url: str, prefix: str) -> Iterator[str]:
    """`url` with its connections in a new schema `<prefix>_<random>`, dropped (with its tables) on exit."""
    schema = f"{prefix}_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(url)
    with admin.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield f"{url}?options=-csearch_path%3D{schema}"
    finally:
        with admin.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()
