"""The code location: one explicit composition root (`-m pipelines`)."""

import os
from typing import Mapping

import dagster as dg

from pipelines.assets.crm import target_assets
from pipelines.assets.people import persons
from pipelines.assets.report import sync_report
from pipelines.assets.sources import source_assets
from pipelines.historical import historical_load
from pipelines.jobs import daily_sync, daily_sync_schedule
from pipelines.renormalize import renormalize
from pipelines.resources import build_resources


def build_definitions(env: Mapping[str, str] = os.environ) -> dg.Definitions:
    """Everything Dagster loads, with resources for the given environment."""
    return dg.Definitions(
        assets=[*source_assets, persons, *target_assets, sync_report],
        jobs=[daily_sync, historical_load, renormalize],
        schedules=[daily_sync_schedule],
        resources=build_resources(env),
    )


defs = build_definitions()
