"""`historical_load`: the first import of everything a platform has seen.

Not partitioned: it reads each source whole (every conversation, not a
window of days), then runs the same normalize, merge and push stages as the
daily job. Each source is its own op (`load_<source>`: read, normalizing
each page's contacts and conversations as it lands, on every core unless
SYNC_NORMALIZE_CORES says otherwise; then whatever an earlier load left
pending), so under Dagster's multiprocess executor
the sources load in parallel as separate steps; then `merge_persons` (which
links conversations to persons and rolls them up), then one `push_<target>`
per CRM (contacts, then one activity per conversation), then `load_report`. A source that fails is recorded and reported
(the others still load, merge and push); `load_report` then fails the run
naming it. Every write is an idempotent upsert, so a load that is killed and
started again sends nothing twice that had succeeded.

Resumable: each offset listing keeps a checkpoint (`historical:<source>:<listing>`
in the store) as its pages are landed, and a load started after a kill
continues each listing from there instead of from offset 0. Before paging, a
listing's size is estimated with a few `limit=1` probes; progress (records
landed, rate, estimated total, time remaining) is logged every 10 s and the
estimate is in each load op's metadata. When the whole load succeeds its
checkpoints are cleared, so the next `historical_load` starts over
(pipelines/steps/checkpoint.py).
"""


import dagster as dg

from pipelines.assets.crm import TARGETS, activity_step, sync_activities, sync_target, target_step
from pipelines.assets.people import locked_rebuild
from pipelines.reporting import record
from pipelines.resources import StateStoreResource
from pipelines.sources import SOURCES, Source, normalize_source
from pipelines.steps.normalize import StreamNormalizer
from pipelines.steps.checkpoint import HistoricalCheckpoints, clear_checkpoints
from pipelines.steps.read import read_source
from pipelines.summary import summarize


def load_op(source: Source) -> dg.OpDefinition:
    @dg.op(
        name=f"load_{source.name}",
        out=dg.Out(dg.Nothing),
        pool=source.name,
        required_resource_keys={"state", "settings", source.name},
        description=f"Read every {source.label} record ({', '.join(source.streams)}) and normalize its people "
        "and conversations.",
    )
    def _load(context: dg.OpExecutionContext) -> None:
        store, settings = context.resources.state.store(), context.resources.settings
        checkpoints = HistoricalCheckpoints(
            store, source.name, label=source.label, log=context.log, run_id=context.run.run_id
        )
        with StreamNormalizer(store, source.name, region=settings.default_region, run_id=context.run.run_id,
                              cores=settings.cores()) as normalizer:
            outcome = read_source(
                source, getattr(context.resources, source.name), store, run_id=context.run.run_id, log=context.log,
                checkpoints=checkpoints, normalizer=normalizer,
            )
            landed = normalizer.finish()
        checkpoints.log_done()
        read = {**outcome.as_metadata(), **checkpoints.metadata()}
        record(context, store, source.read_asset, read, status=outcome.status)
        context.add_output_metadata(read)
        normalize_source(context, store, source, settings.default_region, cores=settings.cores(), landed=landed)

    return _load


@dg.op(ins={"sources_loaded": dg.In(dg.Nothing)}, out=dg.Out(dg.Nothing))
def merge_persons(context: dg.OpExecutionContext, state: StateStoreResource) -> None:
    store = state.store()
    stats = locked_rebuild(context, store)
    record(context, store, "persons", stats)


def push_op(target: str) -> dg.OpDefinition:
    @dg.op(
        name=f"push_{target}",
        ins={"persons_ready": dg.In(dg.Nothing)},
        out=dg.Out(dg.Nothing),
        pool=target,
        required_resource_keys={"state", "settings", target},
    )
    def _push(context: dg.OpExecutionContext) -> None:
        store, resource = context.resources.state.store(), getattr(context.resources, target)
        dry_run = context.resources.settings.dry_run
        contacts = sync_target(context, store, target, resource, dry_run, target_step(target))
        if not resource.enabled:
            return
        activities = sync_activities(context, store, target, resource, dry_run, activity_step(target), days=None)
        context.add_output_metadata({
            **{f"contacts: {k}": v for k, v in contacts.items()},
            **{f"activities: {k}": v for k, v in activities.items() if k != "per day"},
        })

    return _push


@dg.op(ins={"pushed": dg.In(dg.Nothing)})
def load_report(context: dg.OpExecutionContext, state: StateStoreResource) -> None:
    """Log the load's summary; fail naming every source that failed, else clear the load's checkpoints."""
    store = state.store()
    summary = summarize(store, context.run.run_id)
    context.log.info("historical_load summary:\n" + "\n".join(summary.text()))
    if summary.failures:
        context.log.info("checkpoints kept: the next historical_load resumes each listing where this one stopped")
        raise dg.Failure(description=summary.failure_message())
    cleared = clear_checkpoints(store)
    context.log.info(f"historical_load complete: {cleared} checkpoint(s) cleared; the next one starts over")


load_ops = [load_op(source) for source in SOURCES]
push_ops = [push_op(target) for target in TARGETS]


@dg.job(name="historical_load", description=__doc__)
def historical_load() -> None:
    ready = merge_persons(sources_loaded=[load() for load in load_ops])
    load_report(pushed=[push(persons_ready=ready) for push in push_ops])
