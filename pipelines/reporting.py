"""Turn a stage's stats into what a person reads: UI metadata and run history.

The run history keeps a stage's typed figures, never its labels
(pipelines/figures.py): `record` takes a stats object, its `as_metadata()`
display, or a plain dict, and stores the figures.
"""

from __future__ import annotations

import time
from typing import Any, Mapping, Union

import dagster as dg

from pipelines.figures import HasFigures, figures_of
from pipelines.state import StateStore


def partition_label(context: dg.AssetExecutionContext | dg.OpExecutionContext) -> str | None:
    if not context.has_partition_key_range and not getattr(context, "has_partition_key", False):
        return None
    keys = context.partition_key_range
    return keys.start if keys.start == keys.end else f"{keys.start}...{keys.end}"


def record(
    context: dg.AssetExecutionContext | dg.OpExecutionContext,
    store: StateStore,
    step: str,
    stats: Union[Mapping[str, Any], HasFigures],
    *,
    job: str | None = None,
    status: str | None = None,
) -> None:
    """Keep a stage's figures in the store's run history (read by pipelines.summary), never its labels.

    The status is "skipped" when the stats say so, "failed" when they carry
    an "error", else "success", unless given.
    """
    stats = figures_of(stats)
    if status is None:
        status = "skipped" if stats.get("skipped") else "failed" if stats.get("error") else "success"
    store.record_run(context.run.run_id, job or context.job_name, step, partition_label(context), status, stats)


def record_days(
    context: dg.AssetExecutionContext | dg.OpExecutionContext,
    store: StateStore,
    step: str,
    days: Mapping[str, Mapping[str, Any]],
) -> None:
    """Keep a step's figures per day of its partition range: in the store (`run_days`)
    and, for an asset, as one observation per day partition in the Dagster UI."""
    store.record_days(context.run.run_id, step, days)
    if not isinstance(context, dg.AssetExecutionContext):
        return
    partitions = set(context.partition_keys) if context.has_partition_key_range or context.has_partition_key else set()
    for day, stats in days.items():
        if day in partitions:
            context.log_event(dg.AssetObservation(asset_key=context.asset_key, partition=day, metadata=dict(stats)))


def md_table(rows: list[Mapping[str, Any]], columns: list[str], *, width: int = 80) -> dg.MetadataValue:
    """A small markdown preview table for the Dagster UI (cells cut at `width`)."""
    if not rows:
        return dg.MetadataValue.md("_none_")
    head = "| " + " | ".join(columns) + " |\n|" + "---|" * len(columns) + "\n"
    body = "".join(
        "| " + " | ".join(_cell(row.get(c), width) for c in columns) + " |\n" for row in rows
    )
    return dg.MetadataValue.md(head + body)


def _cell(value: Any, width: int) -> str:
    if isinstance(value, (list, tuple)):
        value = ", ".join(map(str, value))
    text = "" if value is None else str(value)
    return text.replace("|", "\\|").replace("\n", " ")[:width]


class Progress:
    """Logs counts while a long stage runs, at most every `every_s` seconds."""

    def __init__(self, log: Any, label: str, every_s: float = 10.0) -> None:
        self.log, self.label, self.every_s = log, label, every_s
        self._last = time.monotonic()

    def __call__(self, stats: Any) -> None:
        now = time.monotonic()
        if now - self._last >= self.every_s:
            self._last = now
            self.log.info(f"{self.label}: {stats.pages} pages, {stats.records} records so far")
