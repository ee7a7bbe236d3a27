"""Resumable listings: where a listing stands between runs, and finding that place again.

Given a `ListingCheckpoint`, the pager saves a `ResumePoint` each time the
consumer comes back for the next page (so the page before is kept): the
offset up to which every record has been yielded, and the markers of the
page that ends there. A new pager on the same checkpoint starts at that
offset minus the overlap, with those markers as its frontier page: the first
page must share ids with it, the same shift check as between two pages of
one run. When it shares none, records were inserted or deleted before the
checkpoint between the runs, and `locate` looks for that page a stride
further forward, then back, and so on (up to `max_search` pages): a page
holding one of its ids pins the position, and paging goes on from there;
nothing after the checkpoint's page can lie before it. Not found (the list
moved further, or those records were deleted): the listing is read again
from offset 0, slower, never short.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Hashable, Mapping, Protocol

from connectors.paging.stats import PagerStats

# Pages a resumed pager reads looking for its checkpoint's page before it
# reads the listing from the start: finds shifts of up to ~20 strides either way.
DEFAULT_MAX_RESUME_SEARCH = 41


@dataclass(frozen=True)
class ResumePoint:
    """Where a listing stands: every record before `offset` has been yielded and kept.

    `anchor`: the ids of the page that ends at `offset`, the frontier page a
    resumed pager checks its first page against. `records`: records yielded
    since the listing first started, over every run.
    """

    offset: int
    anchor: tuple[Hashable, ...]
    records: int = 0

    def as_json(self) -> dict[str, Any]:
        return {"offset": self.offset, "anchor": list(self.anchor), "records": self.records}

    @classmethod
    def from_json(cls, value: Any) -> "ResumePoint | None":
        """The point kept by `as_json`; None for anything else (an unreadable checkpoint starts over)."""
        if not isinstance(value, Mapping):
            return None
        offset, anchor, records = value.get("offset"), value.get("anchor"), value.get("records", 0)
        if not isinstance(offset, int) or offset < 0 or not isinstance(anchor, list) or not isinstance(records, int):
            return None
        return cls(offset, tuple(a if isinstance(a, Hashable) else repr(a) for a in anchor), records)


class ListingCheckpoint(Protocol):
    """Where a pager keeps its position between runs (pipelines.steps.checkpoint: the state store)."""

    def load(self) -> ResumePoint | None:
        """The point to resume from, or None to start at offset 0."""

    def begin(self, stats: PagerStats) -> None:
        """Paging starts: `stats.start_offset`, `resumed_from` and `estimated_total` are known."""

    def save(self, point: ResumePoint) -> None:
        """Every record before `point.offset` has been kept by the consumer."""


def locate(
    fetch_page: Callable[[int], list],
    holds_anchor: Callable[[int, Any], bool],
    start: int,
    *,
    stride: int,
    limit: int,
    max_search: int = DEFAULT_MAX_RESUME_SEARCH,
) -> tuple[int, list] | None:
    """The page at `start`, or the nearest a stride further forward or back (alternately)
    that `holds_anchor`; None when none does within `max_search` pages.

    Forward stops at a short page (the end of the list), back at offset 0."""
    forward = back = start
    page = fetch_page(start)
    if holds_anchor(start, page):
        return start, page
    searched, ahead, behind = 1, len(page) >= limit, start > 0
    while (ahead or behind) and searched < max_search:
        if ahead:
            forward += stride
            page = fetch_page(forward)
            searched += 1
            if holds_anchor(forward, page):
                return forward, page
            ahead = len(page) >= limit  # a short page ends the list
        if behind and searched < max_search:
            back = max(0, back - stride)
            page = fetch_page(back)
            searched += 1
            if holds_anchor(back, page):
                return back, page
            behind = back > 0
    return None
