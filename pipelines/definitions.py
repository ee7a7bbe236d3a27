"""The code location: one explicit composition root (`-m pipelines`)."""

import os
from typing import Mapping

import dagster as dg

from pipelines.assets import agentclara, crm, people
from pipelines.checks import checks
from pipelines.historical import historical_load
from pipelines.jobs import daily_sync, daily_sync_schedule
from pipelines.resources import build_resources


def build_definitions(env: Mapping[str, str] = os.environ) -> dg.Definitions:
    """Everything Dagster loads, with resources for the given environment."""
    return dg.Definitions(
        assets=dg.load_assets_from_modules([agentclara, people, crm]),
        asset_checks=checks,
        jobs=[daily_sync, historical_load],
        schedules=[daily_sync_schedule],
        resources=build_resources(env),
    )


defs = build_definitions()
