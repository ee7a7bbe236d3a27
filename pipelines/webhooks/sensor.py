"""`agentclara_webhook_sensor`: pending inbox events -> one `webhook_sync` run per batch.

Each tick (every MINIMUM_INTERVAL_SECONDS under the daemon; off by default,
like the schedule) takes the oldest pending events, at most BATCH_LIMIT, as
one batch and requests a run for it with the batch's seq bounds as run
config and a run key naming the batch (its first and last seq and its
size), so Dagster never launches the same batch twice. While a
`webhook_sync` run is queued or running, the sensor waits: what arrives
meanwhile goes into the next batch, and no event is in two runs at once.

Events of a failed run stay pending. A new event makes a new batch (and
key) that takes them along; with nothing new, the same batch is tried
again under a numbered key after RETRY_AFTER_SECONDS times the attempts so
far, at most MAX_ATTEMPTS times (a code location that failed to load, a CRM
outage), then left to the next event or the daily sync, the safety net.
A dry run succeeds and leaves its events pending: never retried.

Each tick first puts back to pending the bookings an earlier version kept
as `waiting_for_appointment_support` (`inbox.requeue`: one read when none
is left), so they reach the CRM as meetings/Events like new ones.
"""

import time

import dagster as dg

from pipelines.resources import StateStoreResource
from pipelines.webhooks import inbox
from pipelines.webhooks.job import JOB, webhook_sync

MINIMUM_INTERVAL_SECONDS = 5  # the daemon's default is 30 s; 5 keeps POST -> CRM well under a minute
BATCH_LIMIT = 500
MAX_ATTEMPTS = 5
RETRY_AFTER_SECONDS = 30
BATCH_TAG = "webhook/batch"
IN_FLIGHT = [dg.DagsterRunStatus.QUEUED, dg.DagsterRunStatus.NOT_STARTED, dg.DagsterRunStatus.STARTING,
             dg.DagsterRunStatus.STARTED, dg.DagsterRunStatus.CANCELING]


@dg.sensor(
    name="agentclara_webhook_sensor",
    job=webhook_sync,
    minimum_interval_seconds=MINIMUM_INTERVAL_SECONDS,
    default_status=dg.DefaultSensorStatus.STOPPED,
    description=__doc__,
)
def agentclara_webhook_sensor(context: dg.SensorEvaluationContext, state: StateStoreResource) -> dg.SensorResult:
    """One run request for the pending batch, unless a webhook_sync run is still in flight."""
    engine = state.store().engine
    requeued = inbox.requeue(engine)  # bookings kept before appointments were pushed: synced now, once
    if requeued:
        context.log.info(f"{requeued} booking(s) kept waiting for appointment support are pending again")
    in_flight = context.instance.get_runs(dg.RunsFilter(job_name=JOB, statuses=IN_FLIGHT), limit=1)
    if in_flight:
        return dg.SensorResult(skip_reason=f"webhook_sync run {in_flight[0].run_id} is still in flight")
    batch = inbox.pending_batch(engine, limit=BATCH_LIMIT)
    if batch is None:
        return dg.SensorResult(skip_reason="no pending webhook events")
    run_key, waiting = _attempt_key(context.instance, batch)
    if run_key is None:
        return dg.SensorResult(skip_reason=waiting)
    config = {"ops": {"webhook_land": {"config": {"first_seq": batch.first, "last_seq": batch.last}}}}
    request = dg.RunRequest(run_key=run_key, run_config=config,
                            tags={BATCH_TAG: batch.run_key, "webhook/first_seq": str(batch.first),
                                  "webhook/last_seq": str(batch.last), "webhook/events": str(batch.count)})
    return dg.SensorResult(run_requests=[request], cursor=str(batch.last))


def _attempt_key(instance: dg.DagsterInstance, batch: inbox.Batch) -> tuple[str | None, str]:
    """The run key for this batch's next attempt, or (None, why it waits).

    First attempt: the batch's own key. After runs of it that failed: a
    numbered key, once the back-off has passed. After one that succeeded
    (a dry run leaves its events pending) or MAX_ATTEMPTS failures: none.
    """
    records = instance.get_run_records(dg.RunsFilter(job_name=JOB, tags={BATCH_TAG: batch.run_key}),
                                       limit=MAX_ATTEMPTS + 1)
    if not records:
        return batch.run_key, ""
    latest = records[0]  # newest first
    if latest.dagster_run.status == dg.DagsterRunStatus.SUCCESS:
        return None, f"batch {batch.run_key} already ran (a dry run leaves its events pending)"
    if len(records) >= MAX_ATTEMPTS:
        return None, (f"batch {batch.run_key} failed {len(records)} times: waiting for a new event, "
                      "or the daily sync")
    retry_at = (latest.end_time or time.time()) + RETRY_AFTER_SECONDS * len(records)
    if time.time() < retry_at:
        return None, f"batch {batch.run_key} failed; trying again in {retry_at - time.time():.0f} s"
    return f"{batch.run_key}:attempt{len(records) + 1}", ""
