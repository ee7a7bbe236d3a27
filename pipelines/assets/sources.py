"""Every source's assets, built from the registry (pipelines/sources.py) by two factories.

Per source, in its own group: `<read asset>` lands every stream raw (with
the `<source>_read_complete` check) and, for sources with people,
`<source>_contacts` normalizes them into canonical contacts. A source whose
key is not set is skipped with a log line. A source that fails to read
(outage, bad key, plan without API access) does not fail its asset: the
asset logs the error, records it in the run history as failed, says so in
its metadata and fails its check, so the persons and CRM assets still run
with what the other sources gave; `sync_report` then fails the run naming it.
"""


import dagster as dg

from pipelines.checks import quarantine_check_result, quarantine_check_spec, read_check_result, read_check_spec
from pipelines.partitions import daily_partitions
from pipelines.reporting import md_table, record
from pipelines.sources import SOURCES, Source
from pipelines.state.store import CONTACT_STREAM
from pipelines.steps.normalize import normalize_pending
from pipelines.steps.read import read_source


def read_asset(source: Source) -> dg.AssetsDefinition:
    @dg.asset(
        name=source.read_asset,
        group_name=source.name,
        partitions_def=daily_partitions,
        backfill_policy=dg.BackfillPolicy.single_run(),
        kinds={"api"},
        required_resource_keys={"state", source.name},
        check_specs=[read_check_spec(source)],
        description=f"Every {source.label} record ({', '.join(source.streams)}) as the API returns it, kept by id. "
        "The API has no history, so any partition reads it as it is now; only new or changed payloads are written.",
    )
    def _read(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
        store = context.resources.state.store()
        outcome = read_source(
            source, getattr(context.resources, source.name), store, run_id=context.run_id, log=context.log
        )
        metadata = outcome.as_metadata()
        record(context, store, source.read_asset, metadata, status=outcome.status)
        if source.preview and not outcome.skipped:
            stream, columns = source.preview
            metadata[f"{stream} preview"] = md_table(outcome.preview, list(columns))
        return dg.MaterializeResult(metadata=metadata, check_results=[read_check_result(source, outcome)])

    return _read


def contacts_asset(source: Source) -> dg.AssetsDefinition:
    @dg.asset(
        name=source.contacts_asset,
        group_name=source.name,
        partitions_def=daily_partitions,
        backfill_policy=dg.BackfillPolicy.single_run(),
        deps=[source.read_asset],
        required_resource_keys={"state", "settings"},
        check_specs=[quarantine_check_spec(source)],
        description=f"{source.label} people ({source.contact_stream}) normalized to the canonical `contact` "
        "schema. A payload that cannot be normalized goes to quarantine with its reason; it never fails the run.",
    )
    def _contacts(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
        store = context.resources.state.store()
        stats = normalize_pending(
            store, source.name, source.contact_stream, region=context.resources.settings.default_region,
            run_id=context.run_id,
        )
        metadata = stats.as_metadata()
        record(context, store, source.contacts_asset, metadata)
        return dg.MaterializeResult(
            metadata={
                **metadata,
                "quarantine total": store.count("quarantine", source=source.name, stream=CONTACT_STREAM),
                "quarantine sample": md_table(
                    store.quarantine_sample(10, source=source.name), ["record_id", "reason", "detail"]
                ),
            },
            check_results=[quarantine_check_result(store, source)],
        )

    return _contacts


source_assets: list[dg.AssetsDefinition] = [
    *(read_asset(source) for source in SOURCES),
    *(contacts_asset(source) for source in SOURCES if source.contact_stream),
]
