"""Client-side pacing, so that a 429 is a rare event, not the brake.

Every attempt of every request to one service goes through one RateLimiter,
shared by all the threads that call it. It keeps to each window at once
(say 1,000 per 60 s *and* 100 per 10 s; each integration's spec lists the
documented ones, unpadded) with a sliding log of grant times, so a fresh
limiter spends a window's whole budget at once (the burst) and then paces
at the sustained rate. It holds every thread back when a server says
"wait" (`pause_until`), lets servers that publish their budget
(`X-RateLimit-Remaining` / `-Reset`) tighten the pace (`observe`), and
takes a window a server publishes (a maximum per interval, read from its
headers by the CRM's transport) as the pace, under the configured windows, which
are then caps (`learn`).

The one safety margin is here, `WINDOW_MARGIN_S`, and applies to every
window of every service; specs list the documented limits as documented.

The clock and sleep are injected so unit tests are exact and instant.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from typing import Callable, Sequence

from connectors.retry import seconds_until_reset

# The one safety margin, for every window of every service: a window is kept
# as if it were this much longer. Why: a grant is logged when a request leaves
# this process, and the server counts it when it arrives, after network and
# thread jitter (GIL hand-offs, connection reuse). A request granted exactly
# one period after the oldest grant can reach the server before that oldest
# one has left the server's window, and draw a 429 (bench/RESULTS.md saw 9 in
# 435 with no margin). Jitter is a time, not a share, so the margin is a time:
# 0.1 s costs 1 % of a 10 s window, 0.2 % of a minute, 9 % of a 1 s window.
WINDOW_MARGIN_S = 0.1

# A server's reset time further out than this is distrusted (clock skew, a
# misread header) rather than obeyed: we then wait this long at most.
MAX_OBSERVED_PAUSE_S = 120.0

# Waits shorter than this are rounding noise (now + wait may equal now).
_EPSILON_S = 1e-9


class RateLimiter:
    """At most `limit` grants in any `period` (+ margin) seconds, for each (limit, period) window."""

    def __init__(
        self,
        windows: Sequence[tuple[int, float]],
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        wall_clock: Callable[[], float] = time.time,
        margin_s: float = WINDOW_MARGIN_S,
    ) -> None:
        """`windows`: the documented (or configured) limits; `margin_s`: see WINDOW_MARGIN_S (tests pass 0)."""
        for limit, period in windows:
            if int(limit) < 1 or float(period) <= 0:
                raise ValueError(f"bad rate window ({limit}, {period}): need limit >= 1, period > 0")
        if margin_s < 0:
            raise ValueError("margin_s must be >= 0")
        self.windows: tuple[tuple[int, float], ...] = tuple((int(l), float(p)) for l, p in windows)
        self.margin_s = float(margin_s)
        self.clock = clock
        self._sleep = sleep
        self._wall_clock = wall_clock
        self._lock = threading.Lock()
        # Per kept window: [configured cap or None, limit in force, period, log of grant times].
        self._kept: list[list] = [[l, l, p, deque()] for l, p in self.windows]
        self._paused_until = -math.inf
        # What the server last told us: (requests left, monotonic time the window resets).
        self._budget: tuple[int, float] | None = None
        self.server_limit: int | None = None
        self.granted = 0
        self.waited_s = 0.0

    def __repr__(self) -> str:
        return f"RateLimiter(windows={list(self.windows)!r}, margin_s={self.margin_s})"

    @property
    def pace(self) -> tuple[tuple[int, float], ...]:
        """The (limit, period) windows in force now: configured, or learned under their caps."""
        with self._lock:
            return tuple((limit, period) for _cap, limit, period, _log in self._kept)

    def acquire(self) -> float:
        """Block until a request may go out; record it. Returns the seconds waited."""
        waited = 0.0
        while True:
            with self._lock:
                now = self.clock()
                wait = self._wait_needed(now)
                if wait <= _EPSILON_S:
                    self._grant(now)
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

    def learn(self, limit: int, period: float, remaining: int | None = None) -> int:
        """A rolling window the server publishes (its maximum per interval, and what is left of it).

        The server's window is the pace, under the configured window of the
        same period, which is then an upper cap (room left for other apps);
        a period with no configured window is kept as a new window. When
        `remaining` says the window holds more requests than ours, other
        apps share it: their share is left to them. Returns the limit now in force.
        """
        if int(limit) < 1 or float(period) <= 0:
            return 0
        self.server_limit = int(limit)
        with self._lock:
            window = self._window_of(float(period))
            ours = self._count(window, self.clock())
            others = 0 if remaining is None else max(0, int(limit) - max(0, int(remaining)) - ours)
            cap = window[0] if window[0] is not None else int(limit)
            window[1] = max(1, min(cap, int(limit) - others))
            return window[1]

    # -- inside the lock ------------------------------------------------------

    def _grant(self, now: float) -> None:
        for window in self._kept:
            log = window[3]
            log.append(now)
            # A capped log never needs more than its cap; a learned one is trimmed by time only.
            while window[0] is not None and len(log) > window[0]:
                log.popleft()
        if self._budget is not None:
            self._budget = (self._budget[0] - 1, self._budget[1])
        self.granted += 1

    def _window_of(self, period: float) -> list:
        """The kept window of `period`; a new one (uncapped, its log seeded from the longest) if none."""
        for window in self._kept:
            if abs(window[2] - period) < 1e-6:
                return window
        longest = max((w[3] for w in self._kept), key=len, default=deque())
        window = [None, 1, period, deque(longest)]
        self._kept.append(window)
        return window

    def _count(self, window: list, now: float) -> int:
        """Grants inside `window` (with the margin) as of `now`."""
        horizon = window[2] + self.margin_s
        return sum(1 for t in window[3] if now - t < horizon)

    def _wait_needed(self, now: float) -> float:
        """Seconds until every window (and any server pause or budget) allows one more."""
        wait = self._paused_until - now
        for _cap, limit, period, log in self._kept:
            horizon = period + self.margin_s
            while log and now - log[0] >= horizon:
                log.popleft()
            if len(log) >= limit:
                wait = max(wait, log[len(log) - limit] + horizon - now)
        if self._budget is not None:
            remaining, until = self._budget
            if now >= until:
                self._budget = None
            elif remaining <= 0:
                wait = max(wait, until - now)
        return wait
