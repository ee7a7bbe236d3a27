"""The rate-limit floor: the least wall time a number of requests can take under documented windows.

Why a simulation and not `requests / rate`: a sliding window admits a burst
at once and then one window's worth per period, so the floor is a step
function of the request count. Under AgentClara's 100 per 10 s, requests 1 to
100 may all go at t=0 and request 101 not before t=10 s: 200 requests need
10 s, 201 need 20 s. The floor is the time the last request may be sent
(every request as early as every window allows, starting at t=0) plus one
response latency.
"""

from __future__ import annotations

from collections import deque
from typing import Sequence

# Documented limits of the benchmark's emulators (DESIGN.md; api-facts.md section 5).
AGENTCLARA_WINDOWS: tuple[tuple[int, float], ...] = ((100, 10.0), (1000, 60.0))
HUBSPOT_WINDOWS: tuple[tuple[int, float], ...] = ((190, 10.0),)


def last_grant_s(requests: int, windows: Sequence[tuple[int, float]]) -> float:
    """When the last of `requests` may be sent at the earliest, every window kept (0 for none)."""
    logs = [deque() for _ in windows]
    now = 0.0
    for _ in range(requests):
        for (limit, period), log in zip(windows, logs):
            if len(log) >= limit:
                now = max(now, log[len(log) - limit] + period)
        for (limit, _period), log in zip(windows, logs):
            log.append(now)
            if len(log) > limit:
                log.popleft()
    return now


def floor_s(requests: int, windows: Sequence[tuple[int, float]], latency_s: float = 0.0) -> float:
    """The least wall time `requests` can take: the last one's earliest send time plus its latency."""
    return last_grant_s(requests, windows) + latency_s if requests > 0 else 0.0


def min_reads(contacts: int, page: int = 100) -> int:
    """The fewest list requests that read `contacts` and know they are done (a full last page needs an empty one)."""
    return contacts // page + 1


def min_upserts(contacts: int, batch: int = 100) -> int:
    """The fewest batch upserts that write `contacts` (every contact, batches of `batch`)."""
    return -(-contacts // batch)
