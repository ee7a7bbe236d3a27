"""How long an offset listing is, when the API gives no totals: probes with `limit=1`.

Used before a historical load's first page (`OffsetPager(estimate=True)`)
so its progress can be shown as a share; a wrong estimate costs nothing but
a wrong percentage.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Hashable, Mapping

from connectors.errors import PayloadError

Fetch = Callable[[int, int], list]

# Size probes: stop bisecting when the bracket is within this share of the size.
DEFAULT_PROBE_PRECISION = 0.01
MAX_PROBE_REQUESTS = 80  # 2*log2 of 2**40 records; a server that never ends a list gets no estimate


@dataclass(frozen=True)
class SizeEstimate:
    total: int | None  # None: unknown (the server seems to ignore `offset`, or never ends the list)
    requests: int
    low: int  # the listing holds at least `low` and at most `high` records (`high` None: unbounded)
    high: int | None


class _OffsetIgnored(Exception):
    pass


class _Probe:
    """One-record requests, counted; the same id at two offsets means `offset` is ignored."""

    def __init__(self, fetch: Fetch, id_key: str) -> None:
        self.fetch, self.id_key = fetch, id_key
        self.requests = 0
        self._offsets_of: dict[Hashable, int] = {}

    def holds(self, offset: int) -> bool:
        """Is there a record at `offset`?"""
        self.requests += 1
        page = self.fetch(offset, 1)
        if not isinstance(page, list):
            raise PayloadError("source", f"size probe at offset {offset}: {type(page).__name__}, not a list")
        if not page:
            return False
        rid = page[0].get(self.id_key) if isinstance(page[0], Mapping) else None
        if rid is not None and isinstance(rid, Hashable) and self._offsets_of.setdefault(rid, offset) != offset:
            raise _OffsetIgnored
        return True


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
    probe = _Probe(fetch, id_key)
    low, high = -1, None  # low: an offset known to hold a record; high: one known empty
    try:
        start = max(0, start)
        if probe.holds(start):
            low = start
        else:
            high = start
        step = 1
        while high is None:
            if probe.requests >= max_requests:
                return SizeEstimate(None, probe.requests, low + 1, None)
            if probe.holds(low + step):
                low += step
                step *= 2
            else:
                high = low + step
        while high - low > 1 and high - low > precision * high and probe.requests < max_requests:
            middle = (low + high) // 2
            if probe.holds(middle):
                low = middle
            else:
                high = middle
    except _OffsetIgnored:
        return SizeEstimate(None, probe.requests, 0, None)
    # At least low+1 records, at most high: the middle of the bracket.
    return SizeEstimate((low + 1 + high) // 2, probe.requests, low + 1, high)
