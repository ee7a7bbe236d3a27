"""CRM targets: upsert the persons whose mapped content changed, then their activities.

Two assets per target, built by two factories, so every target behaves the
same: `<target>_contacts` (the persons), then `<target>_activities` (one
engagement or Task per conversation of the run's days, on the person's
contact). Each is skipped with a log line when the target's credentials are
not set, fails clearly on auth errors, and keeps its progress when a quota
stops it early.

A target that cannot be written (bad credentials, missing fields, an
outage past the retry budget) fails its own asset at once: unlike a
source, whose failure leaves the other sources' data to sync, a target
failing means that CRM is not in sync. The failure is recorded in the run
history first, so the run's summary (`make demo`, pipelines.summary) names
it too; `sync_report`, downstream of every target, is then not reached.

Each push holds the state-store lock `push:<target>` (pipelines/state/locks.py),
so two runs never push to one target at once, nor under a persons rebuild,
whatever Dagster instance (and pools) they run on.
"""


from typing import Any, Callable, Sequence

import dagster as dg

from connectors.errors import ConnectorError
from pipelines.partitions import daily_partitions, read_window
from pipelines.reporting import md_table, record, record_days
from pipelines.state import LockTimeout, StateStore, push_lock_name, store_lock
from pipelines.steps.activities import DAY_COUNTS, push_activities
from pipelines.steps.appointments import push_appointments
from pipelines.mapping.plan import load_for
from pipelines.steps.push import PREVIEW_ROWS, push_persons

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
    sink: Callable[[], Any] | None = None,
) -> dict[str, Any]:
    """Push changed persons to one target; returns the metadata to show.

    The mapping file (SYNC_MAPPING_FILE, `settings.mapping_file`) is read and
    checked against the CRM inside the push, before its first write: a bad
    one fails this step with every problem in one message. `sink` builds the
    sink to push with (default: the resource's contact sink); the webhook
    job passes the one its appointment push then uses, so a Salesforce org
    without the Event key field fails at prepare(), before any Lead is written.
    """
    path = getattr(context.resources.settings, "mapping_file", None)
    build = sink or (lambda: resource.sink())
    stats = _pushed_and_told(context, store, target, resource, step, "sync", lambda: push_persons(
        store, build(), dry_run=dry_run, mapping=load_for(path, target, list(TARGETS))))
    if stats is None:
        return {"skipped": _off(target)}
    metadata = stats.as_metadata()
    if stats.mapped and dry_run:
        metadata["changes (preview)"] = md_table(
            [{"person": c.key, "property": c.name, "old": c.old, "new": c.new,
              "note": "held back (if_empty)" if c.held else ""} for c in stats.preview[:PREVIEW_ROWS]],
            ["person", "property", "old", "new", "note"])
    return metadata


def _off(target: str) -> str:
    return f"{TARGETS[target]} not set: {target} is off, nothing sent."


def _pushed_and_told(
    context: dg.AssetExecutionContext | dg.OpExecutionContext,
    store: StateStore,
    target: str,
    resource: Any,
    step: str,
    what: str,
    push: Callable[[], Any],
) -> Any:
    """`_pushed`, then a warning in the run's log when a quota stopped `what` early."""
    stats = _pushed(context, store, target, resource, step, push)
    if stats is not None and stats.stopped:
        context.log.warning(f"{target} {what} stopped early, progress kept: {stats.stopped}")
    return stats


def _pushed(
    context: dg.AssetExecutionContext | dg.OpExecutionContext,
    store: StateStore,
    target: str,
    resource: Any,
    step: str,
    push: Callable[[], Any],
) -> Any:
    """Run `push` under the target's push lock and record its outcome: None (logged) when the target is off.

    The lock (pipelines/state/locks.py) keeps a second run from pushing to
    the same target, or rebuilding the persons, while this one pushes:
    without it both would diff against the same sync state and create every
    new engagement twice. A run that waits for it in vain, or a connector
    error (auth, missing fields, outage past the retry budget), is recorded
    as the step's failure, then fails the step with its message.
    """
    if not resource.enabled:
        context.log.info(_off(target))
        record(context, store, step, {"skipped": _off(target)})
        return None
    try:
        with store_lock(store, push_lock_name(target), owner=context.run.run_id, log=context.log.info):
            stats = push()
    except LockTimeout as exc:
        record(context, store, step, {"error": str(exc)}, status="failed")
        raise dg.Failure(description=str(exc)) from exc
    except ConnectorError as exc:
        record(context, store, step, {"error": str(exc)}, status="failed")
        raise dg.Failure(description=str(exc), allow_retries=exc.retriable) from exc
    record(context, store, step, stats)  # its typed figures; labels are for the metadata only
    return stats


def target_asset(target: str) -> dg.AssetsDefinition:
    @dg.asset(
        name=target_step(target),
        group_name="crm",
        partitions_def=daily_partitions,
        backfill_policy=dg.BackfillPolicy.single_run(),
        deps=["persons"],  # by key: pipelines/assets/people.py imports this module (its lock covers every target)
        kinds={target},
        pool=target,  # runs at once share the CRM's rate limit
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


def sync_activities(
    context: dg.AssetExecutionContext | dg.OpExecutionContext,
    store: StateStore,
    target: str,
    resource: Any,
    dry_run: bool,
    step: str,
    days: tuple[str, str] | None,
) -> dict[str, Any]:
    """Push the changed activities of `days` (all when None) to one target; returns the metadata to show."""
    stats = _pushed_and_told(context, store, target, resource, step, "activities", lambda: push_activities(
        store, resource.sink(activities=True), days=days, dry_run=dry_run))
    if stats is None:
        return {"skipped": _off(target)}
    if days is not None:
        record_days(context, store, step, stats.day_stats())
    return {**stats.as_metadata(), "per day": md_table(
        [{"day": day, **counts} for day, counts in stats.day_stats().items()], ["day", *DAY_COUNTS])}


def sync_appointments(
    context: dg.AssetExecutionContext | dg.OpExecutionContext,
    store: StateStore,
    target: str,
    resource: Any,
    dry_run: bool,
    step: str,
    ids: Sequence[str] | None,
    sink: Callable[[], Any] | None = None,
) -> dict[str, Any]:
    """Push the changed appointments (of `ids` when given) to one target; returns the metadata to show.

    Through `_pushed`, like the contacts and activities: under the target's
    push lock, the step recorded in the run history (a set-up or auth error
    as its failure). Run after the contact push, whose `sink` it should
    reuse (see `sync_target`); without one, the resource's appointment sink.
    """
    build = sink or (lambda: resource.sink(appointments=True))
    stats = _pushed_and_told(context, store, target, resource, step, "appointments",
                             lambda: push_appointments(store, build(), dry_run=dry_run, ids=ids))
    return {"skipped": _off(target)} if stats is None else stats.as_metadata()


def appointment_step(target: str) -> str:
    """The run-history step that pushes appointments to `target` (the webhook job's; no asset)."""
    return f"{target}_appointments"


def activities_asset(target: str) -> dg.AssetsDefinition:
    @dg.asset(
        name=activity_step(target),
        group_name="crm",
        partitions_def=daily_partitions,
        backfill_policy=dg.BackfillPolicy.single_run(),
        deps=[target_step(target)],
        kinds={target},
        pool=target,  # runs at once share the CRM's rate limit
        required_resource_keys={"state", "settings", target},
        description=f"One {target} activity per conversation of the run's days (HubSpot: a communication for "
        "SMS/WhatsApp, a note otherwise; Salesforce: a Task), on the person's contact; created once, updated "
        "when the conversation changes.",
    )
    def _asset(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
        store = context.resources.state.store()
        window = read_window(context, context.resources.settings.conversation_lookback_days)
        metadata = sync_activities(
            context, store, target, getattr(context.resources, target), context.resources.settings.dry_run,
            activity_step(target), window.days if window else None,
        )
        return dg.MaterializeResult(metadata=metadata)

    return _asset


def activity_step(target: str) -> str:
    """The asset (and run-history step) that pushes conversations to `target`."""
    return f"{target}_activities"


hubspot_contacts = target_asset("hubspot")
salesforce_contacts = target_asset("salesforce")
hubspot_activities = activities_asset("hubspot")
salesforce_activities = activities_asset("salesforce")
target_assets = [hubspot_contacts, salesforce_contacts, hubspot_activities, salesforce_activities]
