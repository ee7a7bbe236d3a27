"""Stream a source's pages into the raw table, one page at a time."""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

from pipelines.state import StateStore
from pipelines.state.rows import RawRow
from schemas.raw import raw_key


@dataclass
class IngestStats:
    source: str
    stream: str
    pages: int = 0
    records: int = 0
    new_or_changed: int = 0
    details: int = 0  # detail reads (GET /things/{id}) for listed records that changed
    gone: int = 0  # listed, then 404 on the detail read: deleted meanwhile, skipped
    # What the store changed to keep payloads it could not hold as they came (schemas.raw), per change.
    sanitized: Counter[str] = field(default_factory=Counter)
    seconds: float = 0.0
    source_stats: dict[str, Any] = field(default_factory=dict)

    def as_metadata(self) -> dict[str, Any]:
        return {
            "pages fetched": self.pages,
            "records read": self.records,
            "new or changed": self.new_or_changed,
            **({"payloads sanitized to be stored": dict(self.sanitized)} if self.sanitized else {}),
            "seconds": round(self.seconds, 2),
            **self.source_stats,
        }


def ingest(
    store: StateStore,
    source: str,
    stream: str,
    pages: Iterable[list[dict[str, Any]]],
    *,
    run_id: str | None = None,
    id_key: str = "id",
    on_page: Callable[[IngestStats], None] | None = None,
    stats: IngestStats | None = None,
    on_landed: Callable[[str, list[RawRow]], None] | None = None,
) -> IngestStats:
    """Write every page to the store as it arrives; memory holds one page.

    Pass `stats` to add to the counts of an earlier call (one stream read in
    several listings, e.g. AgentPro's conversations per chatbot).
    `on_landed(stream, rows)` gets each page's new or changed rows as stored.
    """
    stats = stats or IngestStats(source, stream)
    started = time.monotonic()
    try:
        for page in pages:
            stats.pages += 1
            stats.records += len(page)
            landed: list[RawRow] | None = [] if on_landed else None
            stats.new_or_changed += store.save_raw(
                source, stream, ((record_key(item, id_key), item) for item in page), run_id=run_id,
                changes=stats.sanitized, landed=landed,
            )
            if on_landed and landed:
                on_landed(stream, landed)
            if on_page:
                on_page(stats)
    finally:
        stats.seconds += time.monotonic() - started
    return stats


def record_key(item: Any, id_key: str = "id") -> str:
    """The record's id; an item without a usable id (or not an object) is still kept,
    under its content hash, so that normalization can quarantine it with a reason
    (schemas.raw.raw_key)."""
    return raw_key(item, id_key)
