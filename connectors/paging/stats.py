"""What one listing did, for the run summary, the checkpoint and the benchmark."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any


@dataclass
class PagerStats:
    """What one listing did; `complete` is True only when it reached the end cleanly."""

    pages_fetched: int = 0
    records_yielded: int = 0
    duplicates_dropped: int = 0  # repeats beyond the planned overlap
    shifts_detected: int = 0  # page boundaries where the overlap did not match
    recovery_passes: int = 0  # step-back re-scans after a possible skip
    unrecovered_gaps: int = 0  # possible skips left after the recovery budget
    records_without_id: int = 0  # yielded without a usable id (de-duplicated by content)
    loop_detected: bool = False
    offset_honoured: bool | None = None  # None: never needed a second page
    complete: bool = False
    truncated: str | None = None
    start_offset: int = 0  # where the first page was asked for
    resumed_from: int | None = None  # the checkpoint's offset, when resuming
    resume_restarted: bool = False  # the checkpoint's page was not found near it: read from offset 0
    estimated_total: int | None = None  # records in the listing, by `estimate_size` (estimate=True)
    probe_requests: int = 0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)
