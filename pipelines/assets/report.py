"""`sync_report`: the run's summary, and the one place a failed source fails the run."""

from typing import Iterator

import dagster as dg

from pipelines.assets.crm import target_assets
from pipelines.partitions import daily_partitions
from pipelines.resources import StateStoreResource
from pipelines.sources import SOURCES
from pipelines.summary import summarize


@dg.asset(
    group_name="crm",
    partitions_def=daily_partitions,
    backfill_policy=dg.BackfillPolicy.single_run(),
    # Every CRM asset, and every source's read (Chatloom feeds no CRM asset,
    # yet its outcome belongs in the report).
    deps=[*target_assets, *(dg.AssetKey(source.read_asset) for source in SOURCES)],
)
def sync_report(context: dg.AssetExecutionContext, state: StateStoreResource) -> Iterator[dg.MaterializeResult | dg.AssetMaterialization]:
    """Per-source and per-target figures of this run, from the store's run history.

    Materialized every time; when a source (or a target that recorded its
    failure) failed in this run, the report is still materialized and then
    the step fails naming each one with its message, so the run ends failed
    and clear while everything else was synced.
    """
    summary = summarize(state.store(), context.run.run_id)
    metadata = summary.as_metadata()
    for line in summary.incomplete:
        context.log.warning(f"{line.name}: listings may be incomplete: {dict(line.incomplete)}")
    if not summary.failures:
        yield dg.MaterializeResult(metadata=metadata)
        return
    # A MaterializeResult cannot precede a failure: record the report per
    # partition as events (kept when the step then fails), then fail.
    for key in context.partition_keys:
        yield dg.AssetMaterialization(asset_key=context.asset_key, partition=key, metadata=metadata)
    raise dg.Failure(description=summary.failure_message(), metadata={"failed": metadata["failed"]})
