"""Historical loads: resumable listings, and progress with an estimate of what remains.

A historical load gives its `Landing` a `HistoricalCheckpoints`; the Landing
hands it every listing it lands (`attach`), and each offset listing
(`connectors.paging.OffsetPager`) is then tracked:

- **Checkpoint** `historical:<source>:<listing>` in the store's `checkpoints`
  table, `<listing>` being the pager's key: the stream, plus the sub-listing
  when a stream is listed in parts (`conversations?channel=sms`). Its value
  is the pager's `ResumePoint`: the offset up to which every page has been
  landed, the ids of the page that ends there, the records landed so far.
  The pager saves it once the page before is in the store, so a run killed
  at any moment resumes from the last page it kept ("resuming AgentClara
  contacts from offset N" in the log). A finished historical load clears
  every `historical:` checkpoint (`clear_checkpoints`); a daily run never
  reads or clears them.
- **Estimate** of the listing's size before paging (`estimate_size`: `limit=1`
  probes, about 2*log2(N) requests through the same limiter), and a log line
  every `every_s` seconds: records landed, rate, estimated total and the time
  remaining. The figures go to the op's metadata (`metadata()`).

Listings that are not offset listings (an unpaged list, a source whose
client hands out plain generators) are landed as before, in full.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Callable, Iterable

import sqlalchemy as sa

from connectors.paging import OffsetPager, PagerStats, ResumePoint
from pipelines.state import StateStore
from pipelines.state.tables import checkpoints as checkpoints_table

PREFIX = "historical"
PROGRESS_EVERY_S = 10.0


def checkpoint_name(source: str, listing: str) -> str:
    return f"{PREFIX}:{source}:{listing}"


def clear_checkpoints(store: StateStore, source: str | None = None) -> int:
    """Forget every historical-load checkpoint (of one source, if given); returns how many."""
    prefix = f"{PREFIX}:{source}:" if source else f"{PREFIX}:"
    name = checkpoints_table.c.name
    with store.engine.begin() as conn:
        return conn.execute(checkpoints_table.delete().where(name.startswith(prefix, autoescape=True))).rowcount


def saved_checkpoints(store: StateStore, source: str | None = None) -> dict[str, Any]:
    """The historical-load checkpoints kept now, by name (tests, and a person wondering where a load stands)."""
    prefix = f"{PREFIX}:{source}:" if source else f"{PREFIX}:"
    c = checkpoints_table.c
    with store.engine.connect() as conn:
        rows = conn.execute(sa.select(c.name, c.value).where(c.name.startswith(prefix, autoescape=True))).all()
    return {row.name: row.value for row in rows}


@dataclass
class Progress:
    """Where one listing stands in this run, and what remains by the estimate."""

    label: str
    started: float
    start_offset: int = 0
    offset: int = 0  # every record before it is landed
    landed: int = 0  # records landed by this run
    estimated_total: int | None = None
    saved_at: float | None = None  # when the last page was landed

    def rate(self, now: float) -> float:
        elapsed = now - self.started
        return self.landed / elapsed if elapsed > 0 else 0.0

    def remaining(self) -> int | None:
        if self.estimated_total is None:
            return None
        return max(0, self.estimated_total - self.offset)

    def line(self, now: float) -> str:
        rate = self.rate(now)
        if self.estimated_total is None:
            where = f"offset {self.offset:,}; total unknown"
            eta = ""
        else:
            total = max(self.estimated_total, self.offset)
            share = 100.0 * self.offset / total if total else 100.0
            where = f"offset {self.offset:,} of ~{total:,} estimated, {share:.0f}%"
            remaining = self.remaining() or 0
            eta = f", about {_duration(remaining / rate)} remaining" if rate > 0 else ""
        return f"{self.label}: {self.landed:,} records landed this run ({where}), {rate:,.0f} records/s{eta}"


def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {seconds:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


class _NullLog:
    def info(self, message: str) -> None:
        pass

    warning = info


class StoredListing:
    """One listing's checkpoint in the state store (a `connectors.paging.ListingCheckpoint`)."""

    def __init__(self, owner: "HistoricalCheckpoints", pager: OffsetPager) -> None:
        self.owner, self.pager = owner, pager
        self.name = checkpoint_name(owner.source, pager.key)
        self.label = f"{owner.label} {pager.key}"
        self.progress = Progress(self.label, owner.clock())
        self._last_log = self.progress.started

    def load(self) -> ResumePoint | None:
        point = ResumePoint.from_json(self.owner.store.get_checkpoint(self.name))
        if point is not None:
            self.owner.log.info(
                f"resuming {self.label} from offset {point.offset} "
                f"({point.records} records landed by an earlier run of this historical load)"
            )
        return point

    def begin(self, stats: PagerStats) -> None:
        now = self.owner.clock()
        self.progress.started = self._last_log = now
        self.progress.start_offset = self.progress.offset = stats.resumed_from or 0
        self.progress.estimated_total = stats.estimated_total
        if stats.resume_restarted:
            self.owner.log.warning(
                f"{self.label}: the checkpoint's page is no longer near offset {stats.resumed_from} (records were "
                "inserted or deleted before it since the last run); reading the listing again from offset 0"
            )
            self.progress.offset = 0
        elif stats.resumed_from and stats.start_offset != max(0, stats.resumed_from - self.pager.overlap):
            self.owner.log.info(
                f"{self.label}: the listing moved since the last run; its checkpoint's page is now at offset "
                f"{stats.start_offset}, paging on from there"
            )
        if stats.estimated_total is not None:
            self.owner.log.info(
                f"{self.label}: about {stats.estimated_total:,} records in the listing "
                f"(estimated with {stats.probe_requests} probe request{'' if stats.probe_requests == 1 else 's'})"
                + (f"; {max(0, stats.estimated_total - self.progress.offset):,} left after the checkpoint"
                   if stats.resumed_from and not stats.resume_restarted else "")
            )
        elif self.pager.estimate:
            self.owner.log.info(f"{self.label}: the listing's size could not be estimated")

    def save(self, point: ResumePoint) -> None:
        value = {**point.as_json(), "run_id": self.owner.run_id}
        self.owner.store.set_checkpoint(self.name, value)
        self.progress.offset = point.offset
        self.progress.landed = self.pager.stats.records_yielded
        now = self.progress.saved_at = self.owner.clock()
        if now - self._last_log >= self.owner.every_s:
            self._last_log = now
            self.owner.log.info(self.progress.line(now))

    def metadata(self) -> dict[str, Any]:
        stats = self.pager.stats
        key = self.pager.key
        figures: dict[str, Any] = {
            f"{key} estimated total": stats.estimated_total,
            f"{key} probe requests": stats.probe_requests,
            f"{key} resumed from offset": stats.resumed_from,
            f"{key} records landed this run": stats.records_yielded,
            f"{key} checkpoint offset": self.progress.offset,
        }
        if stats.resume_restarted:
            figures[f"{key} resume restarted at offset 0"] = True
        return {name: value for name, value in figures.items() if value is not None}


class HistoricalCheckpoints:
    """One source's listings in a historical load: resumable, estimated, reported.

    `estimate=False` skips the size probe (and so the estimate of what remains).
    """

    def __init__(
        self,
        store: StateStore,
        source: str,
        *,
        label: str | None = None,
        log: Any = None,
        run_id: str | None = None,
        estimate: bool = True,
        every_s: float = PROGRESS_EVERY_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.store, self.source, self.run_id = store, source, run_id
        self.label = label or source
        self.log = log if log is not None else _NullLog()
        self.estimate, self.every_s, self.clock = estimate, every_s, clock
        self.listings: list[StoredListing] = []
        self._untracked: set[str] = set()

    def attach(self, stream: str, pages: Iterable[list[dict[str, Any]]]) -> Iterable[list[dict[str, Any]]]:
        """`pages`, tracked when it is an offset listing not started yet (called by the Landing)."""
        if not isinstance(pages, OffsetPager):
            if not isinstance(pages, (list, tuple)) and stream not in self._untracked:  # unpaged lists need none
                self._untracked.add(stream)
                self.log.info(f"{self.label} {stream}: not an offset listing; read in full, without a checkpoint")
            return pages
        listing = StoredListing(self, pages)
        pages.track(listing, estimate=self.estimate)
        self.listings.append(listing)
        return pages

    def metadata(self) -> dict[str, Any]:
        """Estimate, resume point and counts per listing, for the op's metadata and the run history."""
        figures: dict[str, Any] = {}
        for listing in self.listings:
            figures.update(listing.metadata())
        return figures

    def log_done(self) -> None:
        """A last progress line per listing, whatever the interval, its rate up to its last page."""
        now = self.clock()
        for listing in self.listings:
            self.log.info(listing.progress.line(listing.progress.saved_at or now))
