"""daily_sync on a Dagster instance kept in PostgreSQL, steps in separate processes.

Builds a DAGSTER_HOME from deploy/dagster.yaml as shipped (its settings come
from DAGSTER_PG_* variables) pointed at a fresh database on the local server,
and runs daily_sync for one partition through Dagster's multiprocess executor
against the sandbox: AgentClara (and every other source emulator, for the
sources the pipeline reads) and HubSpot, all on loopback. Every step process
rebuilds the job from os.environ (tests/reconstructable_jobs.py).

Then reads Dagster's own tables directly: the run, its events and its
materializations are rows in PostgreSQL; every step ran in a process of its
own, and the source reads were in flight at the same time.
"""

from __future__ import annotations

import json
import os
import shutil
import threading
import time
import uuid
from pathlib import Path
from typing import Any, Iterator

import pytest
import sqlalchemy as sa

import dagster as dg
from pipelines.definitions import build_definitions
from sandbox.agentclara import DEFAULT_KEY as AGENTCLARA_KEY
from sandbox.agentclara import AgentClaraApp
from sandbox.agentpro import DEFAULT_KEY as AGENTPRO_KEY
from sandbox.agentpro import AgentProApp
from sandbox.chatloom import DEFAULT_KEY as CHATLOOM_KEY
from sandbox.chatloom import ChatloomApp
from sandbox.clairo import DEFAULT_KEY as CLAIRO_KEY
from sandbox.clairo import ClairoApp
from sandbox.http import App, Request, Response, ServerThread
from sandbox.hubspot import DEFAULT_TOKEN as HUBSPOT_TOKEN
from sandbox.hubspot import HubSpotApp
from tests import reconstructable_jobs
from tests.conftest import _PG_SKIP, PG_URL

DEPLOY_YAML = Path(__file__).resolve().parents[1] / "deploy" / "dagster.yaml"
PARTITION = "2026-11-22"
STATE_SCHEMA = "sync"  # the sync's state store: same database, a schema of its own
GATE_TIMEOUT_S = 20.0
# Steps fork from a server that has imported the project once (a spawned
# process would import dagster and the project again for every step: about
# 40 s instead of 12 s for this run on 2 cores). The fork server starts during
# this test, so it and every step see the environment set below.
MULTIPROCESS = {"execution": {"config": {"multiprocess": {
    "max_concurrent": 4,
    "start_method": {"forkserver": {"preload_modules": ["tests.reconstructable_jobs"]}},
}}}}


@pytest.fixture
def fresh_database() -> Iterator[sa.URL]:
    """A new database `dagster_test_<random>` on the local server, dropped afterwards."""
    if _PG_SKIP:
        pytest.skip(_PG_SKIP)
    import psycopg

    server = sa.make_url(PG_URL)
    name = f"dagster_test_{uuid.uuid4().hex[:10]}"
    admin = dict(host=server.host, port=server.port or 5432, user=server.username,
                 password=server.password or None, dbname=server.database, autocommit=True)
    with psycopg.connect(**admin) as conn:
        try:
            conn.execute(f'CREATE DATABASE "{name}"')
        except psycopg.errors.InsufficientPrivilege:
            pytest.skip(f"{server.username} may not create databases on {server.host}")
    try:
        yield server.set(database=name)
    finally:
        with psycopg.connect(**admin) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


class FirstRequestGate:
    """Holds each emulator's first request until `expected` emulators have one in flight.

    Two source steps that run one after the other can never both be waiting
    here, so `met` proves they were in flight at the same time. A step that
    waits in vain is let go after GATE_TIMEOUT_S, and `met` stays False.
    """

    def __init__(self, expected: int) -> None:
        self.expected = expected
        self.arrived: set[str] = set()
        self.met = expected <= 1
        self._cond = threading.Condition()

    def wrap(self, name: str, app: App) -> App:
        dispatch = app.dispatch

        def gated(request: Request) -> Response:
            with self._cond:
                if name not in self.arrived:
                    self.arrived.add(name)
                    self._cond.notify_all()
                    self._cond.wait_for(lambda: len(self.arrived) >= self.expected, timeout=GATE_TIMEOUT_S)
                    if len(self.arrived) >= self.expected:
                        self.met = True
            return dispatch(request)

        app.dispatch = gated  # type: ignore[method-assign]  # the server calls app.dispatch
        return app


def source_steps(env: dict[str, str]) -> list[str]:
    """The steps that read a source: the roots of the asset graph."""
    graph = build_definitions(env).resolve_asset_graph()
    return sorted(key.to_python_identifier() for key in dg.AssetSelection.all().roots().resolve(graph))


def test_daily_sync_on_a_postgres_instance_runs_steps_in_parallel_processes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fresh_database: sa.URL
) -> None:
    started = time.monotonic()
    db = fresh_database
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(DEPLOY_YAML, home / "dagster.yaml")  # the documented file, unchanged
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    for var, value in {"HOST": db.host, "PORT": str(db.port or 5432), "USERNAME": db.username,
                       "PASSWORD": db.password or "", "DB": db.database}.items():
        monkeypatch.setenv(f"DAGSTER_PG_{var}", value)

    state_url = db.set(drivername="postgresql+psycopg",
                       query={"options": f"-csearch_path={STATE_SCHEMA}"}).render_as_string(hide_password=False)
    engine = sa.create_engine(db.set(drivername="postgresql+psycopg"))
    with engine.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{STATE_SCHEMA}"'))

    env: dict[str, str] = {"SYNC_DATABASE_URL": state_url}
    sources = source_steps({})
    gate = FirstRequestGate(expected=min(2, len(sources)))
    servers: list[ServerThread] = []

    def serve(name: str, app: App) -> str:
        servers.append(ServerThread(gate.wrap(name, app)).start())
        return servers[-1].url

    hubspot = HubSpotApp()
    try:
        env |= {
            "AGENTCLARA_API_KEY": AGENTCLARA_KEY,
            "AGENTCLARA_BASE_URL": serve("agentclara", AgentClaraApp(contacts=200)),
            "CLAIRO_API_KEY": CLAIRO_KEY,
            "CLAIRO_BASE_URL": serve("clairo", ClairoApp(briefs=20, conversations=20)) + ClairoApp.BASE_PATH,
            "AGENTPRO_API_KEY": AGENTPRO_KEY,
            "AGENTPRO_BASE_URL": serve("agentpro", AgentProApp(chatbots=2, conversations=20)),
            "CHATLOOM_API_KEY": CHATLOOM_KEY,
            "CHATLOOM_BASE_URL": serve("chatloom", ChatloomApp(agents=3)),
            "HUBSPOT_ACCESS_TOKEN": HUBSPOT_TOKEN,
        }
        servers.append(ServerThread(hubspot).start())  # a target: not gated
        env["HUBSPOT_BASE_URL"] = servers[-1].url
        for name in [n for n in os.environ if n.startswith(("SALESFORCE_", "SYNC_"))]:
            monkeypatch.delenv(name)
        for name, value in env.items():
            monkeypatch.setenv(name, value)  # the step processes inherit these

        with dg.DagsterInstance.from_config(str(home)) as instance:
            assert type(instance.run_storage).__name__ == "PostgresRunStorage"
            result = dg.execute_job(
                dg.reconstructable(reconstructable_jobs.daily_sync),
                instance=instance,
                tags={"dagster/partition": PARTITION},
                run_config=MULTIPROCESS,
            )
            failures = [e.event_specific_data.error.message for e in result.all_events if e.is_step_failure]
            assert result.success, failures
            run_id = result.run_id
    finally:
        for server in servers:
            server.stop()

    # Everything below is read from Dagster's tables in PostgreSQL, not from the result.
    with engine.connect() as conn:
        (status,) = conn.execute(sa.text("SELECT status FROM runs WHERE run_id = :r"), {"r": run_id}).one()
        rows = conn.execute(sa.text(
            "SELECT dagster_event_type, step_key, asset_key, partition, event FROM event_logs "
            "WHERE run_id = :r ORDER BY id"), {"r": run_id}).all()
        state_tables = set(conn.execute(sa.text(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = :s"), {"s": STATE_SCHEMA}).scalars())
    engine.dispose()
    assert status == "SUCCESS"
    assert {"records", "persons", "sync_state", "runs"} <= state_tables  # the sync's own `runs`, apart

    materialized = {dg.AssetKey.from_db_string(r.asset_key).to_user_string()
                    for r in rows if r.dagster_event_type == "ASSET_MATERIALIZATION"}
    assert {"agentclara_contacts_raw", "agentclara_contacts", "persons", "hubspot_contacts"} <= materialized
    assert {r.partition for r in rows if r.dagster_event_type == "ASSET_MATERIALIZATION"} == {PARTITION}
    assert len(hubspot.contacts()) > 0

    steps = step_processes(rows)
    assert steps, "no STEP_START events in event_logs"
    pids = {step: info["pid"] for step, info in steps.items()}
    assert os.getpid() not in pids.values(), "a step ran inside the test process"
    assert len(set(pids.values())) == len(pids), f"steps shared a process: {pids}"
    engine_messages = " ".join(json.loads(r.event).get("user_message", "") for r in rows
                               if r.dagster_event_type == "ENGINE_EVENT")
    assert "multiprocess executor" in engine_messages

    assert set(sources) <= set(steps), f"source steps {sources} missing from {sorted(steps)}"
    if len(sources) >= 2:
        assert gate.met, f"only {sorted(gate.arrived)} had a request in flight together"
        spans = sorted((steps[s]["start"], steps[s]["end"], s) for s in sources)
        assert any(later[0] < earlier[1] for earlier, later in zip(spans, spans[1:])), spans
        assert len({pids[s] for s in sources}) == len(sources)
    print(f"\n{len(steps)} steps in {len(set(pids.values()))} processes; sources {sources}; "
          f"{time.monotonic() - started:.1f} s")


def step_processes(rows: list[Any]) -> dict[str, dict[str, Any]]:
    """step key -> pid of its STEP_START event, start and end timestamps, from event_logs rows."""
    steps: dict[str, dict[str, Any]] = {}
    for row in rows:
        entry = json.loads(row.event)
        event = entry.get("dagster_event") or {}
        if row.dagster_event_type == "STEP_START":
            steps[row.step_key] = {"pid": event.get("pid"), "start": entry["timestamp"], "end": None}
        elif row.dagster_event_type == "STEP_SUCCESS" and row.step_key in steps:
            steps[row.step_key]["end"] = entry["timestamp"]
    return steps
