"""The paging driver: fetch pages, ask `decide`, yield the new records, keep the checkpoint.

`OffsetPager` owns everything with effects around the pure decision
(`connectors.paging.decide`): the requests, up to `concurrency` in flight on
a thread pool (`connectors.paging.prefetch`: ramping up 1, 2, 4... so a
short list costs one request, consumed strictly in offset order; a listing
read whole, with its size estimate, keeps them going ahead of the consumer,
its first pages out while its size probe runs), the set of ids already yielded, the
stats, the checkpoint of a resumable listing, the size estimate, and what a
loop does (`on_loop`: raise `PaginationLoop`, or stop and mark the listing
truncated, for a server whose docs do not say whether `offset` is honoured).
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Generator, Hashable, Iterator, Literal

from connectors.errors import PaginationLoop, PayloadError, RequestError
from connectors.paging.decide import (
    DEFAULT_MAX_RECOVERIES,
    DEFAULT_MAX_STALE_PAGES,
    DEFAULT_OVERLAP,
    START_OVERLAP,
    Continue,
    Decision,
    Jump,
    PageRules,
    PageState,
    Stop,
    StopReason,
    decide,
    markers,
)
from connectors.paging.estimate import Fetch, estimate_size
from connectors.paging.prefetch import Prefetch
from connectors.paging.seen import SeenMarkers
from connectors.paging.resume import DEFAULT_MAX_RESUME_SEARCH, ListingCheckpoint, ResumePoint, locate
from connectors.paging.stats import PagerStats

# Pages fetched and not yet consumed, per unit of concurrency: enough for a
# burst to go out while the consumer writes, little memory (4 x 8 pages of 100).
PREFETCH_AHEAD = 4


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
        self.rules = _rules(self.limit, overlap, id_key, max_recoveries, max_stale_pages)
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
        self._state = PageState(self.rules)
        self._saved: tuple[int, tuple[Hashable, ...]] | None = None  # the position saved last
        self._records_before = 0  # yielded by earlier runs of this listing
        self._resumed_anchor: frozenset[Hashable] = frozenset()  # the checkpoint's page
        # Every marker yielded so far, at ~16 bytes each (connectors/paging/seen.py).
        self._seen = SeenMarkers()

    @property
    def overlap(self) -> int:
        """Records shared by consecutive pages now (grown after a recovery pass when not given)."""
        return self._state.rules.overlap

    @property
    def stride(self) -> int:
        return self._state.rules.stride

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
        pool = (
            ThreadPoolExecutor(max_workers=self.concurrency, thread_name_prefix=f"pager-{self.service}")
            if self.concurrency > 1
            else None
        )
        early: Prefetch | None = None
        try:
            first = self._resume()
            if pool is not None and self.estimate and not self.stats.resumed_from:
                # A fresh listing: its first pages go out while the size probe runs, so the
                # probe does not hold the read back (both share the source's limiter).
                early = self._prefetch(pool, first)
            start, prefetched = self._prepare(first)
            next_start: int | None = start
            while next_start is not None:
                next_start = yield from self._read_from(pool, next_start, prefetched, early)
                prefetched, early = None, None
        finally:
            if early is not None:
                early.close()
            if pool is not None:
                pool.shutdown(wait=True, cancel_futures=True)

    def _prepare(self, first: int) -> tuple[int, list | None]:
        """Estimate and locate before the first page (`first`: where `_resume` says to start):
        where to start, and the page there when the resume search already fetched it."""
        if self.estimate:
            self._estimate(first)
        located = self._locate(first) if self.stats.resumed_from else None
        if located is not None:
            first = self.stats.start_offset = located[0]
        elif self.stats.resumed_from:
            first = self._restart()
        if self.checkpoint is not None:
            self.checkpoint.begin(self.stats)
        return first, (located[1] if located is not None else None)

    def _read_from(
        self, pool: ThreadPoolExecutor | None, start: int, prefetched: list | None, early: Prefetch | None = None
    ) -> Generator[list[dict], None, int | None]:
        """Pages from `start` on, each through `decide`; returns the offset to jump to, or None when done."""
        run = self._run(pool, start, prefetched, early)
        try:
            for offset, page in run:
                decision = self._decide(offset, page)
                if decision.records:
                    self.stats.records_yielded += len(decision.records)
                    yield decision.records
                # The consumer asked for more, so it has kept the records.
                self._save()
                step = decision.step
                if isinstance(step, Continue):
                    continue
                if isinstance(step, Stop):
                    self.stats.complete = self.stats.truncated is None
                    return None
                assert isinstance(step, Jump)
                return step.offset
            self._truncate(f"stopped after max_pages={self.max_pages} requests")
            return None
        finally:
            run.close()

    def _run(
        self, pool: ThreadPoolExecutor | None, start: int, prefetched: list | None = None,
        early: Prefetch | None = None,
    ) -> Iterator[tuple[int, list]]:
        """Pages at start, start+stride, ... in order: on `pool`, kept in flight ahead of the
        consumer (`Prefetch`; `early` when already started at `start`); without one, each
        fetched when asked for. The page at `start` is given when it was `prefetched`."""
        stride = self.stride  # fixed within a run: the overlap grows only at a jump, which ends it
        if prefetched is not None:
            yield start, prefetched
            start += stride
        if pool is None:
            while self._may_submit():
                yield start, self._fetch_one(start)
                start += stride
            return
        ahead = early if early is not None else self._prefetch(pool, start)
        try:
            while (item := ahead.next()) is not None:
                yield item
        finally:
            ahead.close()  # speculative requests past a stop or a jump

    def _prefetch(self, pool: ThreadPoolExecutor, start: int) -> Prefetch:
        return Prefetch(pool, self._fetch_one, start=start, stride=self.stride, limit=self.limit,
                        concurrency=self.concurrency, ahead=PREFETCH_AHEAD * self.concurrency,
                        may_submit=self._may_submit, eager=self.estimate)

    def _may_submit(self) -> bool:
        """One more page request, unless `max_pages` are spent (counted here, from any thread)."""
        with self._count_lock:
            if self.max_pages is not None and self._submitted >= self.max_pages:
                return False
            self._submitted += 1
            return True

    def _fetch_one(self, offset: int) -> list:
        page = self._fetch(offset, self.limit)
        with self._count_lock:
            self.stats.pages_fetched += 1
        return page

    # -- the decision, and what it means for the stats ----------------------

    def _decide(self, offset: int, page: Any) -> Decision:
        """`decide` on this page; the stats and the seen set brought up to date, a loop raised
        (on_loop="raise") or turned into a truncated stop."""
        self._check(offset, page)
        decision = decide(self._state, offset, page, seen=self._seen)
        self._state = decision.state
        self._seen.update(decision.markers)
        self._count(offset, decision)
        step = decision.step
        if isinstance(step, Stop) and step.reason.is_loop:
            self._loop(offset, step.reason)
        return decision

    def _count(self, offset: int, decision: Decision) -> None:
        events, stats = decision.events, self.stats
        stats.duplicates_dropped += events.duplicates
        stats.records_without_id += events.without_id
        stats.shifts_detected += events.shift
        stats.recovery_passes += events.recovery
        if events.offset_honoured:
            stats.offset_honoured = True
        if events.unrecovered_gap:
            stats.unrecovered_gaps += 1
            self._truncate(
                f"records may have been skipped near offset {offset}: "
                f"the list kept shifting after {self.max_recoveries} recovery passes"
            )

    def _loop(self, offset: int, reason: StopReason) -> None:
        """Raise PaginationLoop, or (on_loop="stop") mark the listing truncated."""
        self.stats.loop_detected = True
        if reason is StopReason.OFFSET_IGNORED:
            self.stats.offset_honoured = False
            message = (
                f"{self.stream}: the page at offset {offset} repeats a page already read; "
                f"the server appears to ignore `offset` (after {self.stats.records_yielded} records)"
            )
        else:
            message = (
                f"{self.stream}: {self._state.stale} pages in a row up to offset {offset} brought no new "
                f"records; the listing is not advancing (after {self.stats.records_yielded} records)"
            )
        if self.on_loop == "raise":
            raise PaginationLoop(self.service, message)
        self._truncate(message + "; more records may exist")

    def _check(self, offset: int, page: Any) -> None:
        if not isinstance(page, list):
            raise PayloadError(self.service, f"{self.stream}: page at offset {offset} is {type(page).__name__}, not a list")

    def _truncate(self, reason: str) -> None:
        if self.stats.truncated is None:
            self.stats.truncated = reason
        self.stats.complete = False

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
        # The list has had time to change since the checkpoint: resume with the grown overlap.
        self._state = PageState.resumed(self.rules.grown(), point.offset, anchor)
        self._saved = self._state.position
        self.stats.start_offset = max(0, point.offset - self.overlap)
        return self.stats.start_offset

    def _locate(self, start: int) -> tuple[int, list] | None:
        """The checkpoint's page near `start` (`resume.locate`), or None."""
        return locate(self._fetch_one, self._holds_anchor, start, stride=self.stride, limit=self.limit,
                      max_search=self.max_resume_search)

    def _holds_anchor(self, offset: int, page: Any) -> bool:
        self._check(offset, page)
        return not self._resumed_anchor.isdisjoint(markers(page, self.id_key))

    def _restart(self) -> int:
        """The checkpoint's page is nowhere near it: page the listing from offset 0, as if new."""
        self.stats.resume_restarted = True
        self.stats.start_offset = 0
        self._records_before = 0
        self._seen.clear()
        self._state = PageState(self.rules.grown())
        self._saved = None
        return 0

    def _estimate(self, start: int) -> None:
        try:
            estimate = estimate_size(self._fetch, start=start, id_key=self.id_key)
        except (PayloadError, RequestError):
            return  # no estimate; the listing itself reports what is wrong
        self.stats.estimated_total = estimate.total
        self.stats.probe_requests = estimate.requests

    def _save(self) -> None:
        position = self._state.position
        if self.checkpoint is None or position is None or position == self._saved:
            return
        offset, ids = position
        self.checkpoint.save(ResumePoint(offset, ids, self._records_before + self.stats.records_yielded))
        self._saved = position


def _rules(limit: int, overlap: int | None, id_key: str, max_recoveries: int, max_stale_pages: int) -> PageRules:
    """A fixed `overlap` when given; else START_OVERLAP, grown to DEFAULT_OVERLAP (at most a quarter
    of a page) by the first recovery pass. A page of one record cannot overlap."""
    if overlap is not None:
        return PageRules(limit, overlap, id_key, max_recoveries, max_stale_pages)
    if limit == 1:
        return PageRules(limit, 0, id_key, max_recoveries, max_stale_pages)
    grown = max(START_OVERLAP, min(DEFAULT_OVERLAP, limit // 4))
    return PageRules(limit, START_OVERLAP, id_key, max_recoveries, max_stale_pages, grow_to=grown)
