"""Client-side pacing, so that a source's 429 is a rare event, not the brake.

Every attempt of every request to one source goes through one RateLimiter,
shared by all the threads that page that source. It keeps to each documented
window at once (AgentClara: 1,000 per 60 s *and* 100 per 10 s) with a sliding
log of grant times, holds every thread back when a server says "wait"
(`pause_until`), and lets servers that publish their budget
(`X-RateLimit-Remaining` / `-Reset`, Clairo) tighten the pace (`observe`).

The clock and sleep are injected so unit tests are exact and instant.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from typing import Callable, Sequence

from connectors.retry import seconds_until_reset

# A server's reset time further out than this is distrusted (clock skew, a
# misread header) rather than obeyed: we then wait this long at most.
MAX_OBSERVED_PAUSE_S = 120.0

# Waits shorter than this are rounding noise (now + wait may equal now).
_EPSILON_S = 1e-9


class RateLimiter:
    """At most `limit` grants in any `period` seconds, for each (limit, period) window."""

    def __init__(
        self,
        windows: Sequence[tuple[int, float]],
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        for limit, period in windows:
            if int(limit) < 1 or float(period) <= 0:
                raise ValueError(f"bad rate window ({limit}, {period}): need limit >= 1, period > 0")
        self.windows: tuple[tuple[int, float], ...] = tuple((int(l), float(p)) for l, p in windows)
        self.clock = clock
        self._sleep = sleep
        self._wall_clock = wall_clock
        self._lock = threading.Lock()
        # One log of grant times per window; never longer than that window's limit.
        self._grants: list[deque[float]] = [deque() for _ in self.windows]
        self._paused_until = -math.inf
        # What the server last told us: (requests left, monotonic time the window resets).
        self._budget: tuple[int, float] | None = None
        self.server_limit: int | None = None
        self.granted = 0
        self.waited_s = 0.0

    def __repr__(self) -> str:
        return f"RateLimiter(windows={list(self.windows)!r})"

    def acquire(self) -> float:
        """Block until a request may go out; record it. Returns the seconds waited."""
        waited = 0.0
        while True:
            with self._lock:
                now = self.clock()
                wait = self._wait_needed(now)
                if wait <= _EPSILON_S:
                    for grants in self._grants:
                        grants.append(now)
                    if self._budget is not None:
                        self._budget = (self._budget[0] - 1, self._budget[1])
                    self.granted += 1
                    self.waited_s += waited
                    return waited
            self._sleep(wait)
            waited += wait

    def pause_until(self, deadline: float) -> None:
        """Hold every thread back until `deadline` (on this limiter's clock)."""
        with self._lock:
            self._paused_until = max(self._paused_until, deadline)

    def pause_for(self, seconds: float) -> None:
        """Hold every thread back for `seconds` from now (a server's Retry-After)."""
        self.pause_until(self.clock() + max(0.0, seconds))

    def observe(self, limit: int | None, remaining: int | None, reset_epoch: float | None) -> None:
        """Take a server's X-RateLimit-* headers into account.

        `remaining` more requests may go out before `reset_epoch` (Unix time,
        or a small delta in seconds); once they are spent, acquire() waits for
        the reset. A newer report for the same window can only lower the
        budget, since replies to concurrent requests arrive out of order.
        """
        if limit is not None:
            self.server_limit = int(limit)
        if remaining is None or reset_epoch is None:
            return
        with self._lock:
            now = self.clock()
            delay = min(seconds_until_reset(float(reset_epoch), self._wall_clock()), MAX_OBSERVED_PAUSE_S)
            until = now + delay
            budget = self._budget
            if budget is not None and budget[1] > now and abs(budget[1] - until) < 1.0:
                self._budget = (min(budget[0], int(remaining)), budget[1])
            else:
                self._budget = (int(remaining), until)

    def _wait_needed(self, now: float) -> float:
        """Seconds until every window (and any server pause or budget) allows one more."""
        wait = self._paused_until - now
        for (limit, period), grants in zip(self.windows, self._grants):
            while grants and now - grants[0] >= period:
                grants.popleft()
            if len(grants) >= limit:
                wait = max(wait, grants[0] + period - now)
        if self._budget is not None:
            remaining, until = self._budget
            if now >= until:
                self._budget = None
            elif remaining <= 0:
                wait = max(wait, until - now)
        return wait
