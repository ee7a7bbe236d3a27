"""AgentClara contacts: raw pages, then canonical contact records."""


import dagster as dg

from connectors.errors import ConnectorError
from pipelines.partitions import daily_partitions
from pipelines.reporting import Progress, md_table, record
from pipelines.resources import AgentClaraResource, StateStoreResource, SyncSettings
from pipelines.steps.ingest import ingest
from pipelines.steps.normalize import normalize_pending

SOURCE = "agentclara"
SKIP = "AGENTCLARA_API_KEY is not set: AgentClara is off, nothing read."


@dg.asset(
    group_name=SOURCE,
    partitions_def=daily_partitions,
    backfill_policy=dg.BackfillPolicy.single_run(),
    kinds={"api"},
)
def agentclara_contacts_raw(
    context: dg.AssetExecutionContext, state: StateStoreResource, agentclara: AgentClaraResource
) -> dg.MaterializeResult:
    """Every AgentClara contact as the API returns it, kept by id.

    Contacts have no history in the API, so any partition reads them as they
    are now; only new or changed payloads are written.
    """
    store = state.store()
    if not agentclara.enabled:
        context.log.info(SKIP)
        record(context, store, context.asset_key.to_user_string(), {"skipped": SKIP})
        return dg.MaterializeResult(metadata={"skipped": SKIP})
    client = agentclara.client()
    try:
        stats = ingest(
            store, SOURCE, "contacts", client.iter_contact_pages(), run_id=context.run_id,
            on_page=Progress(context.log, "AgentClara contacts"),
        )
    except ConnectorError as exc:
        raise dg.Failure(description=str(exc), allow_retries=exc.retriable) from exc
    finally:
        client.close()
    stats.source_stats = client.stats.as_dict()
    metadata = stats.as_metadata()
    record(context, store, context.asset_key.to_user_string(), metadata)
    return dg.MaterializeResult(metadata=metadata)


@dg.asset(
    group_name=SOURCE,
    partitions_def=daily_partitions,
    backfill_policy=dg.BackfillPolicy.single_run(),
    deps=[agentclara_contacts_raw],
)
def agentclara_contacts(
    context: dg.AssetExecutionContext, state: StateStoreResource, settings: SyncSettings
) -> dg.MaterializeResult:
    """AgentClara contacts normalized to the canonical `contact` schema.

    A payload that cannot be normalized goes to quarantine with its reason;
    it never fails the run.
    """
    store = state.store()
    stats = normalize_pending(store, SOURCE, "contacts", region=settings.default_region, run_id=context.run_id)
    metadata = stats.as_metadata()
    record(context, store, context.asset_key.to_user_string(), metadata)
    return dg.MaterializeResult(
        metadata={
            **metadata,
            "quarantine total": store.count("quarantine", source=SOURCE),
            "quarantine sample": md_table(
                store.quarantine_sample(10, source=SOURCE), ["record_id", "reason", "detail"]
            ),
        }
    )
