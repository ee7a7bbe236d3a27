"""Turn a stage's stats into what a person reads: UI metadata and run history."""

from __future__ import annotations

import time
from typing import Any, Mapping

import dagster as dg

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
    stats: Mapping[str, Any],
    *,
    job: str | None = None,
) -> None:
    """Keep a stage's figures in the store's run history (read by the demo summary)."""
    store.record_run(
        context.run_id,
        job or context.job_name,
        step,
        partition_label(context),
        "skipped" if stats.get("skipped") else "success",
        stats,
    )


def md_table(rows: list[Mapping[str, Any]], columns: list[str]) -> dg.MetadataValue:
    """A small markdown preview table for the Dagster UI."""
    if not rows:
        return dg.MetadataValue.md("_none_")
    head = "| " + " | ".join(columns) + " |\n|" + "---|" * len(columns) + "\n"
    body = "".join(
        "| " + " | ".join(_cell(row.get(c)) for c in columns) + " |\n" for row in rows
    )
    return dg.MetadataValue.md(head + body)


def _cell(value: Any) -> str:
    text = "" if value is None else str(value)
    return text.replace("|", "\\|").replace("\n", " ")[:80]


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
