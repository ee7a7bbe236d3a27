"""Page requests kept in flight ahead of the consumer, for listings that are read whole.

Why: a pager that sends the next request only when its consumer asks for
the next page is paced by the consumer (store writes, a size probe running
in the consumer's thread), not by the rate limit: the burst a source
allows goes unspent and the read crawls at the consumer's speed (issue 12:
a 20,000-contact historical read at ~9 pages/s from the start, its
sequential size probe first). An *eager* Prefetch (a listing known to be
read whole: a historical load's) starts the next request as soon as one
finishes: up to `window` in flight, the window doubling 1, 2, 4, ... up to
`concurrency` as full pages come back, and at most `ahead` pages fetched
and not yet consumed (memory stays bounded when the consumer is slower).
Otherwise (a daily run may stop a newest-first listing after its first
page) nothing is asked for that the consumer has not shown it wants: at
most `window` pages pending, refilled and widened as it takes full pages,
so a listing stopped after one page costs one request. Pages are handed out
strictly in offset order; a short or failed page stops further requests
past it (the consumer decides what comes next).
"""
from __future__ import annotations

import threading
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Callable


class Prefetch:
    """Requests at start, start+stride, ... on `pool`, in flight ahead of `next()`."""

    def __init__(
        self,
        pool: ThreadPoolExecutor,
        fetch: Callable[[int], list],
        *,
        start: int,
        stride: int,
        limit: int,
        concurrency: int,
        ahead: int,
        may_submit: Callable[[], bool],
        eager: bool = False,
    ) -> None:
        """`fetch(offset)` reads one page; `may_submit()` says whether one more request may be made
        (and counts it): the pager's `max_pages`."""
        self._pool, self._fetch = pool, fetch
        self._next_offset, self._stride, self._limit = start, stride, limit
        self._concurrency, self._ahead = concurrency, max(ahead, concurrency)
        self._may_submit = may_submit
        self._eager = eager
        self._took_full = False  # not eager: the page last handed out was full
        self._lock = threading.RLock()  # a done callback may run inside submit(), in this thread
        self._pending: deque[tuple[int, Future]] = deque()
        self._in_flight = 0
        self._window = 1
        self._stopped = False  # a short or failed page came back: nothing past it is asked for
        self._closed = False
        if eager:
            self._fill()

    def next(self) -> tuple[int, list] | None:
        """The next page in offset order (waiting for it), or None when nothing more was asked for."""
        if not self._eager:
            with self._lock:  # asked again after a full page: the consumer kept it and wants more
                if self._took_full:
                    self._window = min(self._window * 2, self._concurrency)
                    self._took_full = False
            self._fill()
        with self._lock:
            if not self._pending:
                return None
            offset, future = self._pending.popleft()
        page = future.result()
        if self._eager:
            self._fill()  # one page consumed: room for one more ahead
        else:
            self._took_full = isinstance(page, list) and len(page) >= self._limit
        return offset, page

    def close(self) -> None:
        """Cancel what has not started; nothing new is submitted."""
        with self._lock:
            self._closed = True
            for _, future in self._pending:
                future.cancel()
            self._pending.clear()

    def _fill(self) -> None:
        with self._lock:
            while not self._closed and not self._stopped and self._room() and self._may_submit():
                offset = self._next_offset
                try:
                    future = self._pool.submit(self._fetch, offset)
                except RuntimeError:  # the pool is shutting down: the pager is done
                    self._closed = True
                    return
                self._next_offset += self._stride
                self._in_flight += 1
                self._pending.append((offset, future))
                future.add_done_callback(self._done)

    def _room(self) -> bool:
        """May one more request go out? Eager: `window` in flight, `ahead` unconsumed; else `window` pending."""
        if self._eager:
            return self._in_flight < self._window and len(self._pending) < self._ahead
        return len(self._pending) < self._window

    def _done(self, future: Future) -> None:
        with self._lock:
            self._in_flight -= 1
            page = None if future.cancelled() or future.exception() is not None else future.result()
            if not (isinstance(page, list) and len(page) >= self._limit):
                self._stopped = True
            elif self._eager:
                self._window = min(self._window * 2, self._concurrency)
        if self._eager:
            self._fill()
