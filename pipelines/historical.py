"""`historical_load`: the first import of everything a platform has seen.

Not partitioned: it reads each source whole, then runs the same normalize,
merge and push stages as the daily job. Each source is its own op, so under
Dagster's multiprocess executor the sources load in parallel as separate
steps. Every write is an idempotent upsert, so a load that is killed and
started again sends nothing twice that had succeeded.
"""


import dagster as dg

from connectors.errors import ConnectorError
from pipelines.reporting import Progress, record
from pipelines.assets.crm import sync_target
from pipelines.resources import AgentClaraResource, StateStoreResource, SyncSettings
from pipelines.steps.ingest import ingest
from pipelines.steps.normalize import normalize_pending
from pipelines.steps.persons import rebuild_persons


@dg.op(out=dg.Out(dg.Nothing))
def load_agentclara(
    context: dg.OpExecutionContext,
    state: StateStoreResource,
    settings: SyncSettings,
    agentclara: AgentClaraResource,
) -> None:
    """Read every AgentClara contact and normalize it."""
    store = state.store()
    if not agentclara.enabled:
        context.log.info("AGENTCLARA_API_KEY is not set: AgentClara is off, nothing read.")
        return
    client = agentclara.client()
    try:
        fetched = ingest(
            store, "agentclara", "contacts", client.iter_contact_pages(), run_id=context.run_id,
            on_page=Progress(context.log, "AgentClara contacts"),
        )
    except ConnectorError as exc:
        raise dg.Failure(description=str(exc)) from exc
    finally:
        client.close()
    normalized = normalize_pending(
        store, "agentclara", "contacts", region=settings.default_region, run_id=context.run_id
    )
    record(context, store, "load_agentclara", {**fetched.as_metadata(), **normalized.as_metadata()})


@dg.op(ins={"sources_loaded": dg.In(dg.Nothing)}, out=dg.Out(dg.Nothing))
def merge_persons(context: dg.OpExecutionContext, state: StateStoreResource) -> None:
    store = state.store()
    stats = rebuild_persons(store)
    record(context, store, "merge_persons", stats.as_metadata())


def push_op(target: str) -> dg.OpDefinition:
    @dg.op(
        name=f"push_{target}",
        ins={"persons_ready": dg.In(dg.Nothing)},
        required_resource_keys={"state", "settings", target},
    )
    def _push(context: dg.OpExecutionContext) -> None:
        sync_target(
            context, context.resources.state.store(), target,
            getattr(context.resources, target), context.resources.settings.dry_run, f"push_{target}",
        )

    return _push


push_hubspot = push_op("hubspot")
push_salesforce = push_op("salesforce")


@dg.job(name="historical_load", description=__doc__)
def historical_load() -> None:
    ready = merge_persons(sources_loaded=[load_agentclara()])
    push_hubspot(persons_ready=ready)
    push_salesforce(persons_ready=ready)
