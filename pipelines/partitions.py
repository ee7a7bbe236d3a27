"""Daily partitions in UTC, shared by every partitioned asset, and what a partition means.

Partition D holds the conversations whose last activity (last message,
else start: schemas.conversation.activity_day) falls on day D, UTC. A run of
a range of days (a backfill with the single-run policy) is one run with one
`ReadWindow`: the sources are read once for the whole range, and each
day's results are written per day (`runs` + `run_days` in the store).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

import dagster as dg

# The first day a backfill can pick; older data comes in through historical_load.
START_DATE = "2024-01-01"

daily_partitions = dg.DailyPartitionsDefinition(start_date=START_DATE, timezone="UTC")

# SYNC_CONVERSATION_LOOKBACK_DAYS: how far before a run's first day a
# listing without a date filter is read, for conversations that started
# earlier and got new messages inside the window.
DEFAULT_LOOKBACK_DAYS = 7


@dataclass
class ReadWindow:
    """The days a run covers [start, end), and how far back a listing is read.

    A conversation listing without a date filter, newest first by start
    time, is read from the top down to `cutoff` (start minus the lookback)
    and no further; conversations that started at or after `end` belong to
    later days and are passed over. The counters say what the listing did.
    """

    start: datetime
    end: datetime
    lookback: timedelta = timedelta(days=DEFAULT_LOOKBACK_DAYS)
    newer_skipped: int = 0  # listed, started at or after `end`
    kept: int = 0  # listed inside [cutoff, end)
    stopped_early: bool = False  # the listing went past `cutoff` and was not read further

    @classmethod
    def for_days(cls, first: str, last: str, lookback_days: int = DEFAULT_LOOKBACK_DAYS) -> ReadWindow:
        start = datetime.fromisoformat(first).replace(tzinfo=timezone.utc)
        end = datetime.fromisoformat(last).replace(tzinfo=timezone.utc) + timedelta(days=1)
        return cls(start, end, timedelta(days=lookback_days))

    @property
    def cutoff(self) -> datetime:
        return self.start - self.lookback

    @property
    def days(self) -> tuple[str, str]:
        """(first day, last day), inclusive, as YYYY-MM-DD."""
        return self.start.date().isoformat(), (self.end - timedelta(days=1)).date().isoformat()

    def day_list(self) -> list[str]:
        count = (self.end - self.start).days
        return [(self.start + timedelta(days=k)).date().isoformat() for k in range(count)]

    def as_metadata(self) -> dict[str, Any]:
        first, last = self.days
        return {
            "window": first if first == last else f"{first}...{last}",
            "conversations read back to": self.cutoff.date().isoformat(),
            "conversations listed in the window": self.kept,
            "conversations listed after the window (left for their day)": self.newer_skipped,
            "listing stopped early": self.stopped_early,
        }


def read_window(context: dg.AssetExecutionContext, lookback_days: int) -> ReadWindow | None:
    """The run's window (its partition, or its range of partitions), or None when unpartitioned."""
    if not context.has_partition_key_range and not context.has_partition_key:
        return None
    start, end = context.partition_time_window
    return ReadWindow(start.astimezone(timezone.utc), end.astimezone(timezone.utc), timedelta(days=lookback_days))
