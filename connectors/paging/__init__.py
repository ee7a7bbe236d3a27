"""Offset/limit paging that stays correct while the list changes under it.

The sources page with `limit` + `offset` over live lists: a contact created
while we page pushes every later record one place down (the next page
repeats one we have), a deletion pulls them up (the next page silently skips
one). So consecutive pages overlap by `overlap` records:

    page at offset a covers [a, a+L); the next asks for offset a + L - overlap

and the overlap is the shift detector. A page that shares any id with what we
have read is at or behind our frontier: nothing was skipped, the repeats are
dropped by id. A page that shares none (empty included, since a normal last
page still holds the overlap) is past the frontier, so records may have been
skipped: it is set aside, and we step back (doubling the step) until a page
overlaps what we had, then read forward again from there. That re-scan is a
*recovery pass*; their number is bounded, and when the budget is spent the
listing is marked `truncated` (never silently short).

Unless told otherwise, a listing starts with an overlap of one record: any
shift still shows, and a list that holds still costs 1 % more requests at
limit=100 rather than 5 %. The first recovery pass shows the list is
changing, and from there the overlap is 5 (a quarter page at most), which
absorbs up to four deletions per page boundary without another pass; a
resumed listing starts with it.

A server that ignores `offset` answers every page with the first one. After
two such repeats in a row (one alone may be an insert of exactly one
stride) the pager raises `PaginationLoop` or, with `on_loop="stop"`, stops
and marks the listing truncated.

The package, one job per module:

- `decide`: the paginator in the Meltano/dlt sense, a pure function from
  (state, offset, page) to the new records and the next step: `Continue`,
  `Stop(reason)` or `Jump(offset)`. Every rule above lives there.
- `driver`: `OffsetPager`, which fetches (up to `concurrency` pages ahead),
  calls `decide`, keeps the ids seen and the stats, and saves checkpoints.
- `resume`: `ResumePoint`, the `ListingCheckpoint` protocol, and the search
  for a checkpoint's page when the list moved between runs.
- `estimate`: `estimate_size`, a listing's length probed with `limit=1`.
- `stats`: `PagerStats`, what one listing did.
"""

from connectors.paging.decide import (
    DEFAULT_MAX_RECOVERIES,
    DEFAULT_MAX_STALE_PAGES,
    DEFAULT_OVERLAP,
    NO_ID_MARKER,
    START_OVERLAP,
    Continue,
    Decision,
    Jump,
    PageEvents,
    PageRules,
    PageState,
    Step,
    Stop,
    StopReason,
    decide,
    marker,
    markers,
    record_id,
)
from connectors.paging.driver import OffsetPager
from connectors.paging.estimate import (
    DEFAULT_PROBE_PRECISION,
    MAX_PROBE_REQUESTS,
    Fetch,
    SizeEstimate,
    estimate_size,
)
from connectors.paging.resume import DEFAULT_MAX_RESUME_SEARCH, ListingCheckpoint, ResumePoint, locate
from connectors.paging.stats import PagerStats

__all__ = [
    "DEFAULT_MAX_RECOVERIES",
    "DEFAULT_MAX_RESUME_SEARCH",
    "DEFAULT_MAX_STALE_PAGES",
    "DEFAULT_OVERLAP",
    "DEFAULT_PROBE_PRECISION",
    "MAX_PROBE_REQUESTS",
    "NO_ID_MARKER",
    "START_OVERLAP",
    "Continue",
    "Decision",
    "Fetch",
    "Jump",
    "ListingCheckpoint",
    "OffsetPager",
    "PageEvents",
    "PageRules",
    "PageState",
    "PagerStats",
    "ResumePoint",
    "SizeEstimate",
    "Step",
    "Stop",
    "StopReason",
    "decide",
    "estimate_size",
    "locate",
    "marker",
    "markers",
    "record_id",
]
