"""One person per customer, merged across every source's contacts."""


import dagster as dg

from pipelines.assets.crm import TARGETS
from pipelines.checks import PERSONS_NO_DUPLICATES, persons_no_duplicates_result
from pipelines.partitions import daily_partitions
from pipelines.reporting import md_table, record
from pipelines.resources import StateStoreResource
from pipelines.sources import CONTACT_SOURCES, CONVERSATION_SOURCES
from pipelines.state import LockTimeout, StateStore, rebuild_lock_names, store_locks
from pipelines.steps.persons import PersonStats, rebuild_persons

# Every normalized contact asset that feeds the merge: one per source with people.
CONTACT_ASSETS = [dg.AssetKey(source.contacts_asset) for source in CONTACT_SOURCES]
# Every normalized conversation asset: linked to persons here, and rolled up into them.
CONVERSATION_ASSETS = [dg.AssetKey(source.conversations_asset) for source in CONVERSATION_SOURCES]


def locked_rebuild(context: dg.AssetExecutionContext | dg.OpExecutionContext, store: StateStore) -> PersonStats:
    """rebuild_persons under the `persons` lock and every target's push lock (pipelines/state/locks.py).

    A rebuild re-keys persons; one running under another run's push made
    that push create a second CRM contact for a re-keyed person. Holding
    every push lock makes a rebuild wait for pushes in progress (and them
    for it), while pushes to different targets still run at once. A wait in
    vain is recorded as the step's failure and fails it naming the holder.
    """
    try:
        with store_locks(store, rebuild_lock_names(TARGETS), owner=context.run.run_id, log=context.log.info):
            return rebuild_persons(store)
    except LockTimeout as exc:
        record(context, store, "persons", {"error": str(exc)}, status="failed")
        raise dg.Failure(description=str(exc)) from exc


PREVIEW_COLUMNS = ["person_key", "email", "phone", "first_name", "last_name", "sources", "conversation_count",
                   "last_seen_at", "channels"]


@dg.asset(
    group_name="people",
    partitions_def=daily_partitions,
    backfill_policy=dg.BackfillPolicy.single_run(),
    deps=[*CONTACT_ASSETS, *CONVERSATION_ASSETS],
    check_specs=[PERSONS_NO_DUPLICATES],
)
def persons(context: dg.AssetExecutionContext, state: StateStoreResource) -> dg.MaterializeResult:
    """Contacts of every source matched by email, then by E.164 phone, merged field by field.

    Two different valid emails never merge; an email-less contact joins the
    one person who has its phone, or stands alone under that phone
    (docs/identity.md). Then every stored conversation is linked to its
    person (the contact record it belongs to, else its email or phone by the
    same rule; unlinked ones wait for their person), and each person gets
    its conversation roll-ups: count, last conversation time, channels. A
    source that failed this run still counts with what the store kept from
    earlier runs.
    """
    store = state.store()
    stats = locked_rebuild(context, store)
    metadata = stats.as_metadata()
    record(context, store, "persons", stats)  # its typed figures; labels are for the metadata only
    preview = []
    for chunk in store.iter_persons(batch=10):
        preview = [
            {**person, "sources": ", ".join(f"{s}:{len(ids)}" for s, ids in person.get("source_ids", {}).items())}
            for _key, person in chunk
        ]
        break
    return dg.MaterializeResult(
        metadata={**metadata, "preview": md_table(preview, PREVIEW_COLUMNS)},
        check_results=[persons_no_duplicates_result(store)],
    )
