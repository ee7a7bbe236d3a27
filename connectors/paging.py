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

A server that ignores `offset` answers every page with the first one. After
two such repeats in a row (one alone may be an insert of exactly one
stride) the pager raises `PaginationLoop` or, with `on_loop="stop"`, stops
and marks the listing truncated (Clairo, whose docs do not say whether
`offset` is honoured).

The decision (`_decide`) is the paginator in the Meltano/dlt sense: given a
page, the next offset or stop. The driver (`pages`) fetches up to
`concurrency` pages ahead on a thread pool, ramping up 1, 2, 4... so a short
list costs one request, and consumes them strictly in offset order.

Resumable listings (historical loads). Given a `ListingCheckpoint`, the
pager saves a `ResumePoint` each time the consumer comes back for the next
page (so the page before is kept): the offset up to which every record has
been yielded, and the ids of the page that ends there. A new pager on the
same checkpoint starts at that offset minus the overlap, with those ids as
its frontier page: the first page must share ids with it, the same shift
check as between two pages of one run. When it shares none, records were
inserted or deleted before the checkpoint between the runs, and the pager
looks for that page a stride further forward, then back, and so on (up to
`max_resume_search` pages): a page holding one of its ids pins the
position, and paging goes on from there; nothing after the checkpoint's
page can lie before it. Not found (the list moved further, or those records
were deleted): the listing is read again from offset 0, slower, never short.

`estimate_size` probes a listing's length with `limit=1` requests (the APIs
give no totals); `estimate=True` runs it before the first page.
"""

from __future__ import annotations

import threading
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from typing import Any, Callable, Hashable, Iterator, Literal, Mapping, Protocol

from connectors.errors import PaginationLoop, PayloadError, RequestError

Fetch = Callable[[int, int], list]

DEFAULT_OVERLAP = 5  # 5% extra requests at limit=100; detects any shift
DEFAULT_MAX_RECOVERIES = 10
# Pages in a row that bring nothing new before we call it a loop. Only a
# broken server or a burst of thousands of inserts mid-listing gets here.
DEFAULT_MAX_STALE_PAGES = 100
# Pages a resumed pager reads looking for its checkpoint's page before it
# reads the listing from the start: finds shifts of up to ~20 strides either way.
DEFAULT_MAX_RESUME_SEARCH = 41
# Size probes: stop bisecting when the bracket is within this share of the size.
DEFAULT_PROBE_PRECISION = 0.01
MAX_PROBE_REQUESTS = 80  # 2*log2 of 2**40 records; a server that never ends a list gets no estimate


@dataclass
class PagerStats:
    """What one listing did; `complete` is True only when it reached the end cleanly."""

    pages_fetched: int = 0
    records_yielded: int = 0
    duplicates_dropped: int = 0  # repeats beyond the planned overlap
    shifts_detected: int = 0  # page boundaries where the overlap did not match
    recovery_passes: int = 0  # step-back re-scans after a possible skip
    unrecovered_gaps: int = 0  # possible skips left after the recovery budget
    records_without_id: int = 0  # yielded, but cannot be de-duplicated
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


@dataclass(frozen=True)
class SizeEstimate:
    total: int | None  # None: unknown (the server seems to ignore `offset`, or never ends the list)
    requests: int
    low: int  # the listing holds at least `low` and at most `high` records (`high` None: unbounded)
    high: int | None


class _OffsetIgnored(Exception):
    pass


def estimate_size(
    fetch: Fetch,
    *,
    start: int = 0,
    precision: float = DEFAULT_PROBE_PRECISION,
    id_key: str = "id",
    max_requests: int = MAX_PROBE_REQUESTS,
) -> SizeEstimate:
    """How many records an offset listing holds, probed with `limit=1` requests.

    Asks offsets start, start+1, start+2, start+4, ... until one is empty,
    then bisects between the last offset that held a record and the first
    that did not, until that bracket is within `precision` of the size:
    about 2*log2(N) requests with precision 0 (exact), fewer at 1 %. `start`
    is where the listing is known to reach (a resume offset); an empty
    `start` bisects below it. The same id at two offsets means the server
    ignores `offset`: no estimate. The list may change while probing: the
    answer is an estimate.
    """
    requests = 0
    offsets_of: dict[Hashable, int] = {}

    def holds(offset: int) -> bool:
        nonlocal requests
        requests += 1
        page = fetch(offset, 1)
        if not isinstance(page, list):
            raise PayloadError("source", f"size probe at offset {offset}: {type(page).__name__}, not a list")
        if not page:
            return False
        rid = page[0].get(id_key) if isinstance(page[0], Mapping) else None
        if rid is not None and isinstance(rid, Hashable) and offsets_of.setdefault(rid, offset) != offset:
            raise _OffsetIgnored
        return True

    low, high = -1, None  # low: an offset known to hold a record; high: one known empty
    try:
        start = max(0, start)
        if holds(start):
            low = start
        else:
            high = start
        step = 1
        while high is None:
            if requests >= max_requests:
                return SizeEstimate(None, requests, low + 1, None)
            if holds(low + step):
                low += step
                step *= 2
            else:
                high = low + step
        while high - low > 1 and high - low > precision * high and requests < max_requests:
            middle = (low + high) // 2
            if holds(middle):
                low = middle
            else:
                high = middle
    except _OffsetIgnored:
        return SizeEstimate(None, requests, 0, None)
    # At least low+1 records, at most high: the middle of the bracket.
    return SizeEstimate((low + 1 + high) // 2, requests, low + 1, high)


_CONTINUE = object()  # fetch the next offset in order
_STOP = object()  # the listing is done


class _Ready:
    """A future already done: a page fetched before paging began (the resume search)."""

    def __init__(self, page: list) -> None:
        self._page = page

    def result(self) -> list:
        return self._page

    def cancel(self) -> bool:
        return True


class _Deferred:
    """A future for concurrency=1: fetches on .result(), in the consumer's thread."""

    def __init__(self, fn: Callable[[int], list], offset: int) -> None:
        self._fn, self._offset = fn, offset

    def result(self) -> list:
        return self._fn(self._offset)

    def cancel(self) -> bool:
        return True


class OffsetPager:
    """Yields de-duplicated pages of one listing, streaming, in offset order.

    Iterate it (it is its own iterator) or call `pages()`, once. `key` names
    the listing for checkpoints: the stream, plus the sub-listing when a
    stream is listed in parts (`conversations?channel=sms`).
    """

    def __init__(
        self,
        fetch: Fetch,
        *,
        page_size: int,
        max_page_size: int,
        concurrency: int = 1,
        overlap: int | None = None,
        id_key: str = "id",
        max_recoveries: int = DEFAULT_MAX_RECOVERIES,
        max_stale_pages: int = DEFAULT_MAX_STALE_PAGES,
        max_pages: int | None = None,
        max_resume_search: int = DEFAULT_MAX_RESUME_SEARCH,
        on_loop: Literal["raise", "stop"] = "raise",
        service: str = "source",
        stream: str = "records",
        key: str | None = None,
        checkpoint: ListingCheckpoint | None = None,
        estimate: bool = False,
    ) -> None:
        if page_size < 1 or max_page_size < 1:
            raise ValueError("page_size and max_page_size must be >= 1")
        if concurrency < 1:
            raise ValueError("concurrency must be >= 1")
        if on_loop not in ("raise", "stop"):
            raise ValueError("on_loop is 'raise' or 'stop'")
        self.limit = min(page_size, max_page_size)  # never above the documented maximum
        if overlap is None:
            overlap = min(DEFAULT_OVERLAP, max(1, self.limit // 4)) if self.limit > 1 else 0
        if not 0 <= overlap < self.limit:
            raise ValueError(f"overlap must be in [0, {self.limit}) for limit {self.limit}")
        self.overlap = overlap
        self.stride = self.limit - overlap
        self.concurrency = concurrency
        self.id_key = id_key
        self.max_recoveries = max_recoveries
        self.max_stale_pages = max_stale_pages
        self.max_pages = max_pages
        self.max_resume_search = max_resume_search
        self.on_loop = on_loop
        self.service = service
        self.stream = stream
        self.key = key or stream
        self.checkpoint = checkpoint
        self.estimate = estimate
        self.stats = PagerStats()
        self._fetch = fetch
        self._count_lock = threading.Lock()
        self._started = False
        self._pages: Iterator[list[dict]] | None = None
        self._submitted = 0
        # Resuming: the last accepted page as (end offset, its ids), and the last one saved.
        self._position: tuple[int, tuple[Hashable, ...]] | None = None
        self._saved: tuple[int, tuple[Hashable, ...]] | None = None
        self._records_before = 0  # yielded by earlier runs of this listing
        self._resumed_anchor: frozenset[Hashable] = frozenset()  # the checkpoint's page
        # Every id yielded so far. A set of a few million short string ids is
        # a few hundred MB at most; fine for one listing at a time. Beyond
        # that, page by a narrower filter (date range, agent) instead.
        self._seen: set[Hashable] = set()
        self._anchor: frozenset[Hashable] | None = None  # ids of the frontier page
        self._anchor_tail: tuple[Hashable, ...] = ()  # its last `overlap` ids
        self._first: tuple[Hashable, ...] | None = None  # ids of the page at offset 0
        self._prev: tuple[int, tuple[Hashable, ...]] | None = None
        self._repeat_run = 0
        self._seeking = False
        self._seek_step = 0
        self._gap_offset = -1  # where the latest recovery began
        self._stale = 0

    def __repr__(self) -> str:
        return f"OffsetPager(service={self.service!r}, stream={self.stream!r}, limit={self.limit}, overlap={self.overlap})"

    def __iter__(self) -> "OffsetPager":
        return self

    def __next__(self) -> list[dict]:
        if self._pages is None:
            self._pages = self.pages()
        return next(self._pages)

    def close(self) -> None:
        """Stop early: cancels prefetched requests (as leaving a `for` loop over it does)."""
        if self._pages is not None:
            self._pages.close()  # type: ignore[attr-defined]

    def track(self, checkpoint: ListingCheckpoint | None, *, estimate: bool = False) -> "OffsetPager":
        """Resume from and save to `checkpoint`; `estimate`: probe the size first. Before paging only."""
        if self._started:
            raise RuntimeError("track() a pager before it starts paging")
        self.checkpoint, self.estimate = checkpoint, estimate
        return self

    # -- driver -------------------------------------------------------------

    def pages(self) -> Iterator[list[dict]]:
        """Yield each page's records not yielded before, as pages arrive."""
        if self._started:
            raise RuntimeError("an OffsetPager pages once; make a new one")
        self._started = True
        first = self._resume()
        if self.estimate:
            self._estimate(first)
        located = self._locate(first) if self.stats.resumed_from else None
        if located is not None:
            first = self.stats.start_offset = located[0]
        elif self.stats.resumed_from:
            first = self._restart()
        if self.checkpoint is not None:
            self.checkpoint.begin(self.stats)
        pool = (
            ThreadPoolExecutor(max_workers=self.concurrency, thread_name_prefix=f"pager-{self.service}")
            if self.concurrency > 1
            else None
        )
        try:
            start: int | None = first
            prefetched = located[1] if located is not None else None
            while start is not None:
                run = self._run(pool, start, prefetched)
                start, prefetched = None, None
                try:
                    for offset, page in run:
                        fresh, decision = self._decide(offset, page)
                        if fresh:
                            self.stats.records_yielded += len(fresh)
                            yield fresh
                        # The consumer asked for more, so it has kept `fresh`.
                        self._save()
                        if decision is _CONTINUE:
                            continue
                        if decision is _STOP:
                            self.stats.complete = self.stats.truncated is None
                            return
                        start = decision  # type: ignore[assignment]  # jump to an offset
                        break
                    else:
                        self._truncate(f"stopped after max_pages={self.max_pages} requests")
                        return
                finally:
                    run.close()
        finally:
            if pool is not None:
                pool.shutdown(wait=True, cancel_futures=True)

    def _run(
        self, pool: ThreadPoolExecutor | None, start: int, prefetched: list | None = None
    ) -> Iterator[tuple[int, list]]:
        """Pages at start, start+stride, ... in order, up to `concurrency` in flight
        (the page at `start` given when it was `prefetched`)."""
        pending: deque[tuple[int, Any]] = deque()
        next_offset = start
        window = 1
        if prefetched is not None:
            pending.append((start, _Ready(prefetched)))
            next_offset += self.stride
        try:
            while True:
                while len(pending) < window and (self.max_pages is None or self._submitted < self.max_pages):
                    self._submitted += 1
                    future = pool.submit(self._fetch_one, next_offset) if pool else _Deferred(self._fetch_one, next_offset)
                    pending.append((next_offset, future))
                    next_offset += self.stride
                if not pending:
                    return
                offset, future = pending.popleft()
                page = future.result()
                yield offset, page
                if isinstance(page, list) and len(page) >= self.limit:
                    window = min(window * 2, self.concurrency)
        finally:
            for _, future in pending:  # speculative requests past a stop or a jump
                future.cancel()

    def _fetch_one(self, offset: int) -> list:
        page = self._fetch(offset, self.limit)
        with self._count_lock:
            self.stats.pages_fetched += 1
        return page

    # -- resuming and estimating --------------------------------------------

    def _resume(self) -> int:
        """The first offset to ask for: 0, or the checkpoint's offset minus the overlap,
        with the checkpoint's page as the frontier the first page must overlap."""
        point = self.checkpoint.load() if self.checkpoint is not None else None
        if point is None or point.offset <= 0 or not point.anchor:
            return 0
        anchor = tuple(point.anchor)
        self.stats.resumed_from = point.offset
        self._records_before = point.records
        self._seen.update(anchor)
        self._resumed_anchor = frozenset(anchor)
        self._advance(anchor)
        self._position = self._saved = (point.offset, anchor)
        self.stats.start_offset = max(0, point.offset - self.overlap)
        return self.stats.start_offset

    def _locate(self, start: int) -> tuple[int, list] | None:
        """The page at `start`, or the nearest a stride further forward or back (alternately)
        that holds an id of the checkpoint's page; None when none does within the search."""
        forward = back = start
        page = self._fetch_one(start)
        if self._holds_anchor(start, page):
            return start, page
        searched, ahead, behind = 1, len(page) >= self.limit, start > 0
        while (ahead or behind) and searched < self.max_resume_search:
            if ahead:
                forward += self.stride
                page = self._fetch_one(forward)
                searched += 1
                if self._holds_anchor(forward, page):
                    return forward, page
                ahead = len(page) >= self.limit  # a short page ends the list
            if behind and searched < self.max_resume_search:
                back = max(0, back - self.stride)
                page = self._fetch_one(back)
                searched += 1
                if self._holds_anchor(back, page):
                    return back, page
                behind = back > 0
        return None

    def _holds_anchor(self, offset: int, page: Any) -> bool:
        return not self._resumed_anchor.isdisjoint(self._ids(offset, page))

    def _restart(self) -> int:
        """The checkpoint's page is nowhere near it: page the listing from offset 0, as if new."""
        self.stats.resume_restarted = True
        self.stats.start_offset = 0
        self._records_before = 0
        self._seen.clear()
        self._anchor, self._anchor_tail = None, ()
        self._position = self._saved = None
        return 0

    def _estimate(self, start: int) -> None:
        try:
            estimate = estimate_size(self._fetch, start=start, id_key=self.id_key)
        except (PayloadError, RequestError):
            return  # no estimate; the listing itself reports what is wrong
        self.stats.estimated_total = estimate.total
        self.stats.probe_requests = estimate.requests

    def _save(self) -> None:
        if self.checkpoint is None or self._position is None or self._position == self._saved:
            return
        offset, ids = self._position
        self.checkpoint.save(ResumePoint(offset, ids, self._records_before + self.stats.records_yielded))
        self._saved = self._position

    # -- decision -----------------------------------------------------------

    def _decide(self, offset: int, page: Any) -> tuple[list[dict], object]:
        """New records of this page, and what to do next: _CONTINUE, _STOP or an offset.

        Invariant: every id in `_seen` lies at or before the frontier. So a
        page sharing an id with `_seen` cannot have skipped anything, and a
        page past a possible gap is not yielded: the forward re-scan after
        recovery reads it again, in order.
        """
        ids = self._ids(offset, page)
        full = len(page) >= self.limit

        # Two pages in a row identical to pages from other offsets: `offset`
        # is ignored. (One alone can be an insert of exactly one stride.)
        repeat = offset > 0 and bool(ids) and self._repeats(offset, ids)
        self._repeat_run = self._repeat_run + 1 if repeat else 0
        self._prev = (offset, ids)
        if self._repeat_run >= 2:
            return [], self._loop(offset, ignores_offset=True)

        k = self.overlap
        # (an empty page is checked too: a normal last page still holds the overlap)
        anchored = self._anchor is not None and k > 0 and (bool(ids) or not page)
        has_seen = any(i in self._seen for i in ids)
        if anchored and not has_seen and offset > 0:
            # Nothing here was read before: this page lies past the frontier,
            # and records between may have been skipped.
            if self._seeking:
                self._seek_step *= 2
                return [], max(0, offset - self._seek_step)
            self.stats.shifts_detected += 1
            if self.stats.recovery_passes < self.max_recoveries:
                self.stats.recovery_passes += 1
                self._gap_offset = offset
                self._seeking = True
                self._seek_step = self.stride
                return [], max(0, offset - self._seek_step)
            self.stats.unrecovered_gaps += 1
            self._truncate(
                f"records may have been skipped near offset {offset}: "
                f"the list kept shifting after {self.max_recoveries} recovery passes"
            )
            # budget spent: take the page as it is and carry on

        planned = anchored and not self._seeking and len(ids) >= k and ids[:k] == self._anchor_tail
        if anchored and has_seen and not self._seeking and not planned:
            self.stats.shifts_detected += 1
        fresh = self._dedupe(page, skip_count=k if planned else 0)
        if not anchored or self._seeking or not has_seen or any(i in self._anchor for i in ids):  # type: ignore[operator]
            self._advance(ids)
        # else: inserts pushed this page behind the frontier; keep the anchor
        self._seeking = False
        if offset == 0 and self._first is None:
            self._first = ids
        if ids:
            self._position = (offset + len(page), ids)
        if offset > 0 and any(self._id(r) is not None for r in fresh):
            self.stats.offset_honoured = True
        # Pages that bring nothing new, outside the catch-up after a recovery.
        self._stale = 0 if fresh or offset <= self._gap_offset else self._stale + 1
        if self._stale > self.max_stale_pages:
            return fresh, self._loop(offset, ignores_offset=False)
        return fresh, _CONTINUE if full else _STOP

    def _ids(self, offset: int, page: Any) -> tuple[Hashable, ...]:
        if not isinstance(page, list):
            raise PayloadError(self.service, f"{self.stream}: page at offset {offset} is {type(page).__name__}, not a list")
        ids = []
        for record in page:
            if not isinstance(record, Mapping):
                raise PayloadError(
                    self.service, f"{self.stream}: page at offset {offset} holds a {type(record).__name__}, not an object"
                )
            rid = self._id(record)
            if rid is not None:
                ids.append(rid)
        return tuple(ids)

    def _id(self, record: Mapping[str, Any]) -> Hashable | None:
        rid = record.get(self.id_key)
        if rid is None or isinstance(rid, Hashable):
            return rid
        return repr(rid)

    def _dedupe(self, page: list[dict], *, skip_count: int) -> list[dict]:
        """Records not yielded before; the first `skip_count` (the planned overlap) are not counted as duplicates."""
        fresh = []
        for index, record in enumerate(page):
            rid = self._id(record)
            if rid is None:
                self.stats.records_without_id += 1
                fresh.append(record)
            elif rid in self._seen:
                if index >= skip_count:
                    self.stats.duplicates_dropped += 1
            else:
                self._seen.add(rid)
                fresh.append(record)
        return fresh

    def _repeats(self, offset: int, ids: tuple[Hashable, ...]) -> bool:
        """Is this exactly a page we already had from another offset?"""
        if self._first is not None and ids == self._first:
            return True
        return self._prev is not None and ids == self._prev[1] and offset != self._prev[0]

    def _advance(self, ids: tuple[Hashable, ...]) -> None:
        self._anchor = frozenset(ids)
        self._anchor_tail = ids[-self.overlap :] if self.overlap else ()

    def _loop(self, offset: int, *, ignores_offset: bool) -> object:
        self.stats.loop_detected = True
        if ignores_offset:
            self.stats.offset_honoured = False
            message = (
                f"{self.stream}: the page at offset {offset} repeats a page already read; "
                f"the server appears to ignore `offset` (after {self.stats.records_yielded} records)"
            )
        else:
            message = (
                f"{self.stream}: {self._stale} pages in a row up to offset {offset} brought no new "
                f"records; the listing is not advancing (after {self.stats.records_yielded} records)"
            )
        if self.on_loop == "raise":
            raise PaginationLoop(self.service, message)
        self._truncate(message + "; more records may exist")
        return _STOP

    def _truncate(self, reason: str) -> None:
        if self.stats.truncated is None:
            self.stats.truncated = reason
        self.stats.complete = False
