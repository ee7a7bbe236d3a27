"""Every source's assets, built from the registry (pipelines/registry.py) by three factories.

Everything here is derived from the sources' specs (connectors/<name>/spec.py,
listed in pipelines/registry.py): no source is named in this module.

Per source, in its own group: `<read asset>` lands every stream raw (with
the `<source>_read_complete` check) and, for sources with people,
`<source>_contacts` normalizes them into canonical contacts; for sources
with conversations, `<source>_conversations` normalizes those, each into
the day of its last activity, and writes per-day counts for the run's days
(the `run_days` table, and one observation per day partition). A source
whose key is not set when the step runs is skipped with a log line, and so
is the normalization of a flagged stream whose flag is off. A source that fails to read
(outage, bad key, plan without API access) does not fail its asset: the
asset logs the error, records it in the run history as failed, says so in
its metadata and fails its check, so the persons and CRM assets still run
with what the other sources gave; `sync_report` then fails the run naming it.
"""


import dagster as dg

from pipelines.checks import quarantine_check_result, quarantine_check_spec, read_check_result, read_check_spec
from pipelines.partitions import daily_partitions, read_window
from pipelines.reporting import md_table, record, record_days
from pipelines.sources import SOURCES, Source
from pipelines.state.store import CONTACT_STREAM, CONVERSATION_STREAM
from pipelines.steps.normalize import normalize_conversations, normalize_pending
from pipelines.steps.read import read_source


def read_asset(source: Source) -> dg.AssetsDefinition:
    @dg.asset(
        name=source.read_asset,
        group_name=source.name,
        partitions_def=daily_partitions,
        backfill_policy=dg.BackfillPolicy.single_run(),
        kinds={"api"},
        pool=source.name,  # runs at once (a daily run and a backfill) share the platform's rate limit
        required_resource_keys={"state", "settings", source.name},
        check_specs=[read_check_spec(source)],
        description=f"Every {source.label} record ({', '.join(source.streams)}) as the API returns it, kept by id. "
        "The API has no history, so any partition reads it as it is now; only new or changed payloads are written. "
        "A conversation listing without a date filter is read once per run, newest first, down to the first "
        "day of the run's partitions minus SYNC_CONVERSATION_LOOKBACK_DAYS.",
    )
    def _read(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
        store = context.resources.state.store()
        window = read_window(context, context.resources.settings.conversation_lookback_days)
        outcome = read_source(
            source, getattr(context.resources, source.name), store, run_id=context.run.run_id, log=context.log,
            window=window,
        )
        metadata = outcome.as_metadata()
        if window is not None and not outcome.skipped and source.windowed_conversations:
            metadata.update(window.as_metadata())
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
        off = source.off_reason(source.contact_stream)
        if off:  # a flagged stream (StreamSpec.enabled_by) not read in this run: nothing to normalize or report
            context.log.info(off)
            return dg.MaterializeResult(metadata={"skipped": off}, check_results=[quarantine_check_result(store, source)])
        stats = normalize_pending(
            store, source.name, source.contact_stream, region=context.resources.settings.default_region,
            run_id=context.run.run_id,
        )
        metadata = stats.as_metadata()
        record(context, store, source.contacts_asset, metadata)
        return dg.MaterializeResult(
            metadata={
                **metadata,
                "quarantine total": store.count("quarantine", source=source.name, stream=CONTACT_STREAM),
                "quarantine sample": md_table(
                    store.quarantine_sample(10, source=source.name, stream=CONTACT_STREAM),
                    ["record_id", "reason", "detail"],
                ),
            },
            check_results=[quarantine_check_result(store, source)],
        )

    return _contacts


def conversations_asset(source: Source) -> dg.AssetsDefinition:
    @dg.asset(
        name=source.conversations_asset,
        group_name=source.name,
        partitions_def=daily_partitions,
        backfill_policy=dg.BackfillPolicy.single_run(),
        deps=[source.read_asset],
        required_resource_keys={"state", "settings"},
        description=f"{source.label} conversations ({source.conversation_stream}, with their messages) normalized "
        "to the canonical `conversation` schema, each in the day of its last activity (last message, else start; "
        "UTC). Counts per day of the run's partitions are written to the run history. A payload that cannot be "
        "normalized goes to quarantine with its reason.",
    )
    def _conversations(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
        off = source.off_reason(source.conversation_stream)
        if off:  # a flagged stream (StreamSpec.enabled_by) not read in this run: nothing to normalize or report
            context.log.info(off)
            return dg.MaterializeResult(metadata={"skipped": off})
        store = context.resources.state.store()
        stats = normalize_conversations(
            store, source.name, source.conversation_stream, region=context.resources.settings.default_region,
            run_id=context.run.run_id,
        )
        metadata = stats.as_metadata()
        record(context, store, source.conversations_asset, metadata)
        per_day = {}
        window = read_window(context, context.resources.settings.conversation_lookback_days)
        if window is not None:
            stored = store.conversation_days(source.name, window.days)
            per_day = {day: {"conversations": stored.get(day, 0), "normalized this run": stats.days.get(day, 0)}
                       for day in window.day_list()}
            record_days(context, store, source.conversations_asset, per_day)
        return dg.MaterializeResult(
            metadata={
                **metadata,
                "normalized this run outside these days": sum(
                    n for day, n in stats.days.items() if day not in per_day),
                "per day": md_table([{"day": day, **counts} for day, counts in per_day.items()],
                                    ["day", "conversations", "normalized this run"]),
                "quarantine total": store.count("quarantine", source=source.name, stream=CONVERSATION_STREAM),
            },
        )

    return _conversations


source_assets: list[dg.AssetsDefinition] = [
    *(read_asset(source) for source in SOURCES),
    *(contacts_asset(source) for source in SOURCES if source.contact_stream),
    *(conversations_asset(source) for source in SOURCES if source.conversation_stream),
]
