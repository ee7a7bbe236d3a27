"""CRM targets: upsert the persons whose mapped content changed.

One asset per target, built by one factory, so every target behaves the
same: skipped with a log line when its credentials are not set, a clear
failure on auth errors, progress kept when a quota stops it early.

A target that cannot be written (bad credentials, missing fields, an
outage past the retry budget) fails its own asset at once: unlike a
source, whose failure leaves the other sources' data to sync, a target
failing means that CRM is not in sync. The failure is recorded in the run
history first, so the run's summary (`make demo`, pipelines.summary) names
it too; `sync_report`, downstream of every target, is then not reached.
"""


from typing import Any

import dagster as dg

from connectors.errors import ConnectorError
from pipelines.assets.people import persons
from pipelines.partitions import daily_partitions
from pipelines.reporting import md_table, record
from pipelines.state import StateStore
from pipelines.steps.push import push_persons

# target -> the environment variables that turn it on (for the skip message)
TARGETS = {
    "hubspot": "HUBSPOT_ACCESS_TOKEN",
    "salesforce": "SALESFORCE_INSTANCE_URL + SALESFORCE_ACCESS_TOKEN (or SALESFORCE_USERNAME + SALESFORCE_PASSWORD)",
}


def sync_target(
    context: dg.AssetExecutionContext | dg.OpExecutionContext,
    store: StateStore,
    target: str,
    resource: Any,
    dry_run: bool,
    step: str,
) -> dict[str, Any]:
    """Push changed persons to one target; returns the metadata to show."""
    if not resource.enabled:
        message = f"{TARGETS[target]} not set: {target} is off, nothing sent."
        context.log.info(message)
        record(context, store, step, {"skipped": message})
        return {"skipped": message}
    try:
        stats = push_persons(store, resource.sink(dry_run=dry_run), dry_run=dry_run)
    except ConnectorError as exc:
        record(context, store, step, {"error": str(exc)}, status="failed")
        raise dg.Failure(description=str(exc), allow_retries=exc.retriable) from exc
    metadata = stats.as_metadata()
    record(context, store, step, metadata)
    if stats.stopped:
        context.log.warning(f"{target} sync stopped early, progress kept: {stats.stopped}")
    return metadata


def target_asset(target: str) -> dg.AssetsDefinition:
    @dg.asset(
        name=target_step(target),
        group_name="crm",
        partitions_def=daily_partitions,
        backfill_policy=dg.BackfillPolicy.single_run(),
        deps=[persons],
        kinds={target},
        required_resource_keys={"state", "settings", target},
        description=f"Persons upserted into {target}, only those changed since their last sync there.",
    )
    def _asset(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
        store = context.resources.state.store()
        resource = getattr(context.resources, target)
        metadata = sync_target(
            context, store, target, resource, context.resources.settings.dry_run, target_step(target)
        )
        errors = store.sync_errors(target, limit=10)
        return dg.MaterializeResult(
            metadata={**metadata, "failed records": md_table(errors, ["key", "error_code", "last_error", "attempts"])}
        )

    return _asset


def target_step(target: str) -> str:
    """The asset (and run-history step) that pushes to `target`."""
    return f"{target}_contacts"


hubspot_contacts = target_asset("hubspot")
salesforce_contacts = target_asset("salesforce")
target_assets = [hubspot_contacts, salesforce_contacts]
