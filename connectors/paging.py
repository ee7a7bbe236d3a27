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
"""

from __future__ import annotations

import threading
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from typing import Any, Callable, Hashable, Iterator, Literal, Mapping

from connectors.errors import PaginationLoop, PayloadError

Fetch = Callable[[int, int], list]

DEFAULT_OVERLAP = 5  # 5% extra requests at limit=100; detects any shift
DEFAULT_MAX_RECOVERIES = 10
# Pages in a row that bring nothing new before we call it a loop. Only a
# broken server or a burst of thousands of inserts mid-listing gets here.
DEFAULT_MAX_STALE_PAGES = 100


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

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


_CONTINUE = object()  # fetch the next offset in order
_STOP = object()  # the listing is done


class _Deferred:
    """A future for concurrency=1: fetches on .result(), in the consumer's thread."""

    def __init__(self, fn: Callable[[int], list], offset: int) -> None:
        self._fn, self._offset = fn, offset

    def result(self) -> list:
        return self._fn(self._offset)

    def cancel(self) -> bool:
        return True


class OffsetPager:
    """Yields de-duplicated pages of one listing, streaming, in offset order."""

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
        on_loop: Literal["raise", "stop"] = "raise",
        service: str = "source",
        stream: str = "records",
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
        self.on_loop = on_loop
        self.service = service
        self.stream = stream
        self.stats = PagerStats()
        self._fetch = fetch
        self._count_lock = threading.Lock()
        self._started = False
        self._submitted = 0
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
        try:
            start: int | None = 0
            while start is not None:
                run = self._run(pool, start)
                start = None
                try:
                    for offset, page in run:
                        fresh, decision = self._decide(offset, page)
                        if fresh:
                            self.stats.records_yielded += len(fresh)
                            yield fresh
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

    def _run(self, pool: ThreadPoolExecutor | None, start: int) -> Iterator[tuple[int, list]]:
        """Pages at start, start+stride, ... in order, up to `concurrency` in flight."""
        pending: deque[tuple[int, Any]] = deque()
        next_offset = start
        window = 1
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
