"""Shared fixtures: state stores on SQLite and on the local PostgreSQL."""

from __future__ import annotations

import os
from contextlib import contextmanager
from typing import Iterator

import pytest
import sqlalchemy as sa

from sandbox.postgres import scratch_schema

PG_URL = os.environ.get("TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


def _postgres_reason() -> str | None:
    """Why PostgreSQL tests cannot run here, or None when a server answers."""
    try:
        import psycopg  # noqa: F401
    except ImportError:
        return "psycopg is not installed (pip install -e '.[test]')"
    try:
        engine = sa.create_engine(PG_URL, connect_args={"connect_timeout": 3})
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
        engine.dispose()
    except Exception as exc:  # any failure to reach the server means: skip, saying why
        return f"no PostgreSQL server answers at {PG_URL}: {type(exc).__name__}"
    return None


_PG_SKIP = _postgres_reason()


@contextmanager
def private_schema() -> Iterator[str]:
    """A PostgreSQL URL whose connections land in a fresh schema of database `test`, dropped afterwards."""
    if _PG_SKIP:
        pytest.skip(_PG_SKIP)
    with scratch_schema(PG_URL, "t") as url:
        yield url


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A URL whose connections land in a fresh, private schema of database `test`."""
    with private_schema() as url:
        yield url


def older_store(url: str, *, without: str, version: int) -> None:
    """A store as schema `version` wrote it: every table but `without`, and one person in it."""
    from pipelines.state import tables

    engine = sa.create_engine(url)
    with engine.begin() as conn:
        for table in tables.metadata.sorted_tables:
            if table.name != without:
                table.create(conn)
        conn.execute(tables.store_meta.insert().values(key="schema_version", value=str(version)))
        conn.execute(sa.text("INSERT INTO persons (person_key, data, content_hash, updated_at) "
                             "VALUES ('email:a@x.io', '{}', 'h', CURRENT_TIMESTAMP)"))
    engine.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path) -> str:
    """Each state-store test runs on SQLite and on PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'state.db'}"
    return request.getfixturevalue("pg_url")
