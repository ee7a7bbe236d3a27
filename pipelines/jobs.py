"""The daily job and its schedule."""

import dagster as dg

from pipelines.partitions import daily_partitions  # noqa: F401  (the selection's partitions)
from pipelines.sources import SOURCES

daily_sync = dg.define_asset_job(
    "daily_sync",
    selection=dg.AssetSelection.groups(*(source.name for source in SOURCES), "people", "crm"),
    description="Sync what changed in every source into every CRM, one UTC day per partition.",
)

# Without end_offset the 02:00 UTC tick runs the day that just ended.
daily_sync_schedule = dg.build_schedule_from_partitioned_job(
    daily_sync, hour_of_day=2, minute_of_hour=0, name="daily_sync_schedule"
)
