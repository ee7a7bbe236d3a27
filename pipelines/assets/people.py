"""One person per customer, merged across every source's contacts."""


import dagster as dg

from pipelines.partitions import daily_partitions
from pipelines.reporting import md_table, record
from pipelines.resources import StateStoreResource
from pipelines.steps.persons import rebuild_persons

# Every normalized contact asset that feeds the merge.
CONTACT_ASSETS = [dg.AssetKey("agentclara_contacts")]

PREVIEW_COLUMNS = ["person_key", "email", "phone", "first_name", "last_name", "sources"]


@dg.asset(
    group_name="people",
    partitions_def=daily_partitions,
    backfill_policy=dg.BackfillPolicy.single_run(),
    deps=CONTACT_ASSETS,
)
def persons(context: dg.AssetExecutionContext, state: StateStoreResource) -> dg.MaterializeResult:
    """Contacts matched by email, then by E.164 phone, merged field by field.

    Two different valid emails never merge; an email-less contact joins the
    one person who has its phone, or stands alone under that phone.
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
        metadata={**metadata, "preview": md_table(preview, PREVIEW_COLUMNS)}
    )
