"""The markers one listing has yielded, at about 16 bytes each instead of about 100.

Why: a listing read whole keeps every id it yielded, so that a record a
shift brings back is not yielded twice. As Python strings in a set that is
about 93 MiB for a million ids, the one part of a load's memory that grew
with its size (issue 12: a load's peak RSS must stay flat from 200,000 to
1,000,000 records). Here the newest markers stay in a plain set; past
`recent` of them they are folded into sorted runs of 128-bit digests
(BLAKE2b), two `array('Q')` halves a run, merged pairwise as runs of equal
size pile up, so a lookup bisects a handful of runs. Two different ids
share a digest with probability about n^2 / 2^129 (10^-27 for a million):
nothing a listing will meet.
"""

from __future__ import annotations

import hashlib
import heapq
from array import array
from bisect import bisect_left
from typing import Hashable, Iterable, Iterator

RECENT = 16_384  # exact markers kept before a fold


def _digest(marker: Hashable) -> tuple[int, int]:
    text = marker if isinstance(marker, str) else repr(marker)
    raw = hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16).digest()
    return int.from_bytes(raw[:8], "big"), int.from_bytes(raw[8:], "big")


class _Run:
    """Sorted digests: `hi[i], lo[i]` is one marker's."""

    def __init__(self, pairs: Iterable[tuple[int, int]]) -> None:
        self.hi, self.lo = array("Q"), array("Q")
        for hi, lo in pairs:
            self.hi.append(hi)
            self.lo.append(lo)

    def __len__(self) -> int:
        return len(self.hi)

    def __contains__(self, pair: tuple[int, int]) -> bool:
        hi, lo = pair
        i = bisect_left(self.hi, hi)
        while i < len(self.hi) and self.hi[i] == hi:
            if self.lo[i] == lo:
                return True
            i += 1
        return False

    def __iter__(self) -> Iterator[tuple[int, int]]:
        return zip(self.hi, self.lo)


class SeenMarkers:
    """A set of markers that only grows (and can be cleared): `in` and `update`, no iteration."""

    def __init__(self, recent: int = RECENT) -> None:
        self._limit = recent
        self._recent: set[Hashable] = set()
        self._runs: list[_Run] = []  # sizes strictly decreasing once merged

    def __contains__(self, marker: object) -> bool:
        if marker in self._recent:
            return True
        if not self._runs:
            return False
        pair = _digest(marker)  # type: ignore[arg-type]
        return any(pair in run for run in self._runs)

    def update(self, markers: Iterable[Hashable]) -> None:
        """Add markers (the paginator adds only those it found new; one added again costs 16 bytes)."""
        self._recent.update(markers)
        if len(self._recent) >= self._limit:
            self._fold()

    def clear(self) -> None:
        self._recent.clear()
        self._runs.clear()

    def _fold(self) -> None:
        """The recent markers become a run; runs no bigger than the one after them are merged into it."""
        run = _Run(sorted(_digest(marker) for marker in self._recent))
        self._recent.clear()
        while self._runs and len(self._runs[-1]) <= len(run):
            run = _Run(heapq.merge(self._runs.pop(), run))
        self._runs.append(run)
