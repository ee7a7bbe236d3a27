"""One person per customer, merged across every source's contacts."""


import dagster as dg

from pipelines.checks import PERSONS_NO_DUPLICATES, persons_no_duplicates_result
from pipelines.partitions import daily_partitions
from pipelines.reporting import md_table, record
from pipelines.resources import StateStoreResource
from pipelines.sources import CONTACT_SOURCES, CONVERSATION_SOURCES
from pipelines.steps.persons import rebuild_persons

# Every normalized contact asset that feeds the merge: one per source with people.
CONTACT_ASSETS = [dg.AssetKey(source.contacts_asset) for source in CONTACT_SOURCES]
# Every normalized conversation asset: linked to persons here, and rolled up into them.
CONVERSATION_ASSETS = [dg.AssetKey(source.conversations_asset) for source in CONVERSATION_SOURCES]

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
    stats = rebuild_persons(store)
    metadata = stats.as_metadata()
    record(context, store, "persons", metadata)
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
