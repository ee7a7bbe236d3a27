"""Run the real Dagster jobs against a given environment (tests and the kill test's child)."""

from __future__ import annotations

import json
import os
import sys
from typing import Any, Mapping

import dagster as dg

from pipelines.definitions import build_definitions


def run_daily(env: Mapping[str, str], partition: str, instance: dg.DagsterInstance | None = None,
              tags: Mapping[str, str] | None = None) -> dg.ExecuteInProcessResult:
    """daily_sync for one partition (or a range through `tags`); secrets read from os.environ via EnvVar."""
    saved = dict(os.environ)
    os.environ.update(env)
    try:
        job = build_definitions(env).resolve_job_def("daily_sync")
        return job.execute_in_process(
            partition_key=None if tags else partition,
            tags=dict(tags or {}),
            instance=instance or dg.DagsterInstance.ephemeral(),
            raise_on_error=False,
        )
    finally:
        os.environ.clear()
        os.environ.update(saved)


def step_metadata(result: dg.ExecuteInProcessResult, asset: str) -> dict[str, Any]:
    """The metadata values of an asset's materialization in this run (a range run has one
    per partition, all with the same metadata)."""
    events = [m for m in result.get_asset_materialization_events() if m.asset_key.to_user_string() == asset]
    assert events and all(e.materialization.metadata == events[0].materialization.metadata for e in events), asset
    return {k: v.value for k, v in events[0].materialization.metadata.items()}


def failure_messages(result: dg.ExecuteInProcessResult) -> list[str]:
    return [e.event_specific_data.error.message for e in result.all_events if e.is_step_failure]


if __name__ == "__main__":  # the kill test's child process: env as JSON, then the partition
    outcome = run_daily(json.loads(sys.argv[1]), sys.argv[2])
    sys.exit(0 if outcome.success else 1)
