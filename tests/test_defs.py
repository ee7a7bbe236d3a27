"""The Dagster code location and its fixed contract: names, schedule, partitions."""

from __future__ import annotations

from datetime import datetime, timezone

import dagster as dg

from pipelines import defs
from pipelines.definitions import build_definitions
from pipelines.resources import build_resources


def test_the_contract_loads() -> None:
    assert defs.resolve_job_def("daily_sync").partitions_def is not None
    assert defs.resolve_job_def("historical_load").partitions_def is None
    assert defs.resolve_schedule_def("daily_sync_schedule").cron_schedule == "0 2 * * *"


def test_the_0200_tick_runs_the_day_that_just_ended() -> None:
    schedule = defs.resolve_schedule_def("daily_sync_schedule")
    tick = datetime(2026, 11, 23, 2, 0, tzinfo=timezone.utc)
    # The context is closed before its instance: an unclosed one leaves Dagster
    # pointing at a dead instance for whichever test comes next.
    with dg.instance_for_test() as instance, \
            dg.build_schedule_context(instance=instance, scheduled_execution_time=tick) as context:
        (request,) = schedule.evaluate_tick(context).run_requests
    assert request.partition_key == "2026-11-22"


def test_partitioned_assets_run_a_range_as_one_run() -> None:
    for spec in defs.resolve_asset_graph().get_all_asset_keys():
        node = defs.resolve_asset_graph().get(spec)
        if node.is_partitioned:
            assert node.backfill_policy == dg.BackfillPolicy.single_run(), spec


def test_every_step_that_calls_a_platform_or_a_crm_holds_its_pool() -> None:
    """Two runs at once (the daily run and a backfill) then share each API's rate limit (deploy/dagster.yaml)."""
    from pipelines.assets.crm import TARGETS
    from pipelines.sources import SOURCES

    pools = {key.to_user_string(): defs.resolve_assets_def(key).op.pool
             for key in defs.resolve_asset_graph().get_all_asset_keys()}
    expected = {source.read_asset: source.name for source in SOURCES}
    expected |= {f"{target}_{what}": target for target in TARGETS for what in ("contacts", "activities")}
    assert {name: pool for name, pool in pools.items() if pool} == expected
    historical = {node.name: node.definition.pool for node in defs.resolve_job_def("historical_load").graph.nodes}
    assert {name: pool for name, pool in historical.items() if pool} == {
        **{f"load_{source.name}": source.name for source in SOURCES}, **{f"push_{t}": t for t in TARGETS}}


def test_secrets_are_bound_as_env_vars_and_sources_off_without_keys() -> None:
    resources = build_resources({"AGENTCLARA_API_KEY": "ac_x", "HUBSPOT_ACCESS_TOKEN": "pat-x"})
    assert isinstance(resources["agentclara"].api_key, dg.EnvVar)
    assert isinstance(resources["hubspot"].access_token, dg.EnvVar)
    off = build_resources({})
    assert off["agentclara"].enabled is False and off["hubspot"].enabled is False
    assert off["salesforce"].enabled is False
    assert build_resources({"SYNC_DRY_RUN": "1"})["settings"].dry_run is True


def test_without_any_key_every_step_skips_with_a_reason(tmp_path, monkeypatch) -> None:
    env = {"SYNC_DATABASE_URL": f"sqlite:///{tmp_path / 'state.db'}"}
    monkeypatch.setenv("SYNC_DATABASE_URL", env["SYNC_DATABASE_URL"])
    job = build_definitions(env).resolve_job_def("daily_sync")
    result = job.execute_in_process(partition_key="2026-11-22", instance=dg.DagsterInstance.ephemeral())
    assert result.success
    skipped = [m for m in result.get_asset_materialization_events()
               if "skipped" in m.materialization.metadata]
    assert {m.asset_key.to_user_string() for m in skipped} >= {"agentclara_contacts_raw", "hubspot_contacts"}
