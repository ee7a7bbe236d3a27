"""The SQLAlchemy state store (SQLite by default, PostgreSQL at scale)."""

from pipelines.state.store import StateStore, default_database_url, redacted

__all__ = ["StateStore", "default_database_url", "redacted"]
