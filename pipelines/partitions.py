"""Daily partitions in UTC, shared by every partitioned asset."""

import dagster as dg

# The first day a backfill can pick; older data comes in through historical_load.
START_DATE = "2024-01-01"

daily_partitions = dg.DailyPartitionsDefinition(start_date=START_DATE, timezone="UTC")
