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
from pipelines.webhooks.job import webhook_sync
from pipelines.webhooks.sensor import agentclara_webhook_sensor


def build_definitions(env: Mapping[str, str] = os.environ) -> dg.Definitions:
    """Everything Dagster loads, with resources for the given environment.

    Loading decides nothing about which sources are on: each source's
    resource looks its key up when its step runs (pipelines/resources.py)."""
    return dg.Definitions(
        assets=[*source_assets, persons, *target_assets, sync_report],
        jobs=[daily_sync, historical_load, renormalize, webhook_sync],
        schedules=[daily_sync_schedule],
        sensors=[agentclara_webhook_sensor],
        resources=build_resources(env),
    )


defs = build_definitions()
