"""`webhook_sync`: one batch of inbox events through the daily sync's own steps.

    webhook_land -> webhook_persons -> webhook_push_<target> (each CRM) -> webhook_done

- `webhook_land` reads the batch's pending events (run config: the inbox
  seq bounds the sensor chose), lands what they carry as raw AgentClara
  records (pipelines/webhooks/land.py, fetching a conversation the event
  only names; bookings through `land_appointments` and
  `normalize_appointments`), and normalizes AgentClara's kept contacts and
  conversations (`normalize_source`, as historical_load does).
- `webhook_persons` is the daily merge (`locked_rebuild`: rebuild_persons
  under the persons and push locks), skipped when nothing was landed.
- `webhook_push_<target>` is the daily push (`sync_target`, then
  `sync_activities` for the days of the batch's conversations), then
  `sync_appointments` for the batch's bookings, each under the same push
  lock, dry run and metadata: only what changed is sent, a conversation or
  an appointment already in the CRM is updated in place, and a booking's
  new customer is created before their meeting/Event.
- `webhook_done` marks the events only after every push has recorded its
  outcomes. A run that fails leaves them pending: the next batch takes
  them again (every step is idempotent), and the daily sync stays the
  safety net for any event that never arrived.

In-process executor: five short steps in one process, so a webhook reaches
the CRM seconds after the run starts instead of one process per step.
"""


import functools
from typing import Any, Callable

import dagster as dg

from pipelines.assets.crm import (
    TARGETS,
    activity_step,
    appointment_step,
    sync_activities,
    sync_appointments,
    sync_target,
    target_step,
)
from pipelines.assets.people import locked_rebuild
from pipelines.reporting import record
from pipelines.sources import BY_NAME, normalize_source
from pipelines.webhooks import inbox
from pipelines.webhooks.land import conversation_days, land_events

JOB = "webhook_sync"


class WebhookBatch(dg.Config):
    """The inbox seq range of the batch (inclusive); only its events still pending are handled."""

    first_seq: int
    last_seq: int


@dg.op(out=dg.Out(dict), required_resource_keys={"state", "settings", "agentclara"})
def webhook_land(context: dg.OpExecutionContext, config: WebhookBatch) -> dict[str, Any]:
    """Land and normalize what the batch's events carry; returns the batch for the next steps."""
    store = context.resources.state.store()
    batch = inbox.pending_events(store.engine, config.first_seq, config.last_seq)
    source = context.resources.agentclara
    fetch = source.client().get_conversation if source.enabled else None
    region = context.resources.settings.default_region
    landed = land_events(store, batch, fetch, region=region, run_id=context.run.run_id)
    if landed.conversations or landed.new_contacts:
        normalize_source(context, store, BY_NAME["agentclara"], region)
    days = conversation_days(store, list(landed.conversations))
    metadata = {**landed.as_metadata(), "inbox seq": f"{config.first_seq}...{config.last_seq}",
                "days": f"{days[0]}...{days[1]}" if days else "none",
                "source detail reads": "on" if fetch else "off (AGENTCLARA_API_KEY not set)"}
    record(context, store, "webhook_land", metadata)
    context.add_output_metadata(metadata)
    return {"outcomes": {str(seq): list(outcome) for seq, outcome in landed.outcomes.items()},
            "days": list(days) if days else None, "appointments": landed.appointments, "landed": landed.anything}


@dg.op(out=dg.Out(dict), required_resource_keys={"state"})
def webhook_persons(context: dg.OpExecutionContext, batch: dict[str, Any]) -> dict[str, Any]:
    """The daily merge into persons, under the same locks; nothing to do when nothing was landed."""
    if batch["landed"]:
        store = context.resources.state.store()
        stats = locked_rebuild(context, store)
        record(context, store, "persons", stats.as_metadata())
        context.add_output_metadata(stats.as_metadata())
    return batch


def push_op(target: str) -> dg.OpDefinition:
    @dg.op(name=f"webhook_push_{target}", out=dg.Out(dg.Nothing), pool=target,
           required_resource_keys={"state", "settings", target})
    def _push(context: dg.OpExecutionContext, batch: dict[str, Any]) -> None:
        """Changed persons, the batch days' changed conversations, then the batch's bookings, to one target."""
        if not batch["landed"]:
            context.log.info("nothing was landed from this batch: nothing to push")
            return
        store, resource = context.resources.state.store(), getattr(context.resources, target)
        dry_run = context.resources.settings.dry_run
        appointments = batch.get("appointments") or []
        sink = _appointment_sink(resource) if appointments else None
        contacts = sync_target(context, store, target, resource, dry_run, target_step(target), sink=sink)
        metadata = {f"contacts: {k}": v for k, v in contacts.items()}
        if resource.enabled and batch["days"]:
            activities = sync_activities(context, store, target, resource, dry_run, activity_step(target),
                                         tuple(batch["days"]))  # type: ignore[arg-type]
            metadata |= {f"activities: {k}": v for k, v in activities.items()}
        if resource.enabled and appointments:
            pushed = sync_appointments(context, store, target, resource, dry_run, appointment_step(target),
                                       appointments, sink=sink)
            metadata |= {f"appointments: {k}": v for k, v in pushed.items()}
        context.add_output_metadata(metadata)

    return _push


def _appointment_sink(resource: Any) -> Callable[[], Any]:
    """One sink for the contact push and the appointment push, built when first needed (inside the lock).

    The same object on purpose: built with `appointments=True`, a Salesforce
    sink checks the Event key field in the contact push's prepare(), so an
    org not set up for Events fails the step before any Lead is written,
    and the appointment push then finds the org already checked.
    """
    return functools.cache(lambda: resource.sink(appointments=True))


push_ops = [push_op(target) for target in TARGETS]


@dg.op(ins={"batch": dg.In(dict), "pushed": dg.In(dg.Nothing)}, required_resource_keys={"state", "settings"})
def webhook_done(context: dg.OpExecutionContext, batch: dict[str, Any]) -> None:
    """Mark each event with its outcome, now that every push has recorded its own (not in a dry run)."""
    store = context.resources.state.store()
    if context.resources.settings.dry_run:
        context.log.info("dry run: the events stay pending, for a run that writes")
        context.add_output_metadata({"events marked": 0, "dry run": True})
        return
    by_status: dict[tuple[str, str | None], list[int]] = {}
    for seq, (status, detail) in batch["outcomes"].items():
        by_status.setdefault((status, detail), []).append(int(seq))
    marked = {status: 0 for status, _ in by_status}
    for (status, detail), seqs in by_status.items():
        marked[status] += inbox.mark(store.engine, seqs, status, run_id=context.run.run_id, detail=detail)
    record(context, store, "webhook_done", {"events marked": marked})
    context.add_output_metadata({f"events marked {status}": n for status, n in marked.items()})


@dg.job(name=JOB, description=__doc__, executor_def=dg.in_process_executor)
def webhook_sync() -> None:
    batch = webhook_persons(webhook_land())
    webhook_done(batch=batch, pushed=[push(batch) for push in push_ops])
