"""Which version of each canonical schema is current, and how old records catch up.

Every canonical record carries `schema` and `version`. Records are stored as
written; `migrate` brings one to the current version (or to `to_version`)
step by step through `migrations.MIGRATIONS`, and raises `MigrationError`
when there is no path (unknown schema, unknown or future version, a missing
step). Downgrades are not supported.
"""

from __future__ import annotations

from typing import Any, Mapping

from schemas.errors import MigrationError
from schemas.migrations import MIGRATIONS

# The version the normalizers write today. contact v2 added preferred_channel,
# last_seen_at, conversation_count; contact v3 (current) keeps v2's shape and
# only lets a real phone number through (schemas.fields, the phone rule).
# Stored older contacts load through the steps in schemas.migrations, and
# their raw payloads are re-normalized by the next run (or `renormalize`).
CURRENT_VERSIONS: dict[str, int] = {"contact": 3, "conversation": 1, "appointment": 1}

# Every version a stored record of each schema may legitimately carry.
KNOWN_VERSIONS: dict[str, frozenset[int]] = {
    "contact": frozenset({1, 2, 3}),
    "conversation": frozenset({1}),
    "appointment": frozenset({1}),  # schemas/appointment.py
}


def current_version(schema: str) -> int:
    """The version normalizers produce for `schema`; MigrationError if unknown."""
    try:
        return CURRENT_VERSIONS[schema]
    except KeyError:
        raise MigrationError(f"unknown schema {schema!r}") from None


def is_current(record: Mapping[str, Any]) -> bool:
    """True when the record is already at its schema's current version."""
    schema, version = _identify(record)
    return version == current_version(schema)


def migrate(record: Mapping[str, Any], *, to_version: int | None = None) -> dict[str, Any]:
    """A copy of `record` upgraded to `to_version` (default: current)."""
    schema, version = _identify(record)
    target = current_version(schema) if to_version is None else to_version
    if version not in KNOWN_VERSIONS[schema]:
        raise MigrationError(f"{schema} has no version {version}")
    if target not in KNOWN_VERSIONS[schema]:
        raise MigrationError(f"{schema} has no version {target}")
    if version > target:
        raise MigrationError(f"cannot downgrade {schema} from v{version} to v{target}")
    upgraded = dict(record)
    while version < target:
        step = MIGRATIONS.get((schema, version))
        if step is None:
            raise MigrationError(f"no migration for {schema} v{version} -> v{version + 1}")
        upgraded = step(upgraded)
        if upgraded.get("version") != version + 1:
            raise MigrationError(f"{schema} step from v{version} did not produce v{version + 1}")
        version += 1
    return upgraded


def _identify(record: Mapping[str, Any]) -> tuple[str, int]:
    if not isinstance(record, Mapping):
        raise MigrationError(f"not a record: {type(record).__name__}")
    schema = record.get("schema")
    version = record.get("version")
    if not isinstance(schema, str) or schema not in KNOWN_VERSIONS:
        raise MigrationError(f"unknown schema {schema!r}")
    if isinstance(version, bool) or not isinstance(version, int):
        raise MigrationError(f"{schema} record has no integer version: {version!r}")
    return schema, version
