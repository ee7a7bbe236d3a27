"""daily_sync end to end through Dagster: sandbox AgentClara -> state store ->
HubSpot sandbox, over real HTTP with the real httpx and hubspot-api-client.

Covers the first load, a no-op rerun, a 1% change, a run killed halfway,
injected faults, wrong keys, dry run, and a partition range in one run.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any, Iterator

import pytest
import sqlalchemy as sa

from pipelines.state import StateStore
from sandbox.agentclara import AgentClaraApp
from sandbox.http import Request, Response, ServerThread
from sandbox.hubspot import DEFAULT_TOKEN, HubSpotApp
from tests.pipeline_runs import failure_messages, run_daily, step_metadata

PARTITION = "2026-11-22"
CONTACTS = 300


class Sandbox:
    def __init__(self, tmp_path: Path, hubspot: HubSpotApp | None = None) -> None:
        # Few conversations (1.7 a day): these tests are about contacts; tests/test_conversations.py covers them.
        self.agentclara = AgentClaraApp(contacts=CONTACTS, conversations=CONTACTS // 2)
        self.hubspot = hubspot or HubSpotApp()
        self.servers = [ServerThread(self.agentclara).start(), ServerThread(self.hubspot).start()]
        tmp_path.mkdir(parents=True, exist_ok=True)
        self.db = f"sqlite:///{tmp_path / 'state.db'}"
        self.env = {
            "SYNC_DATABASE_URL": self.db,
            "AGENTCLARA_API_KEY": "ac_sandbox_key",
            "AGENTCLARA_BASE_URL": self.servers[0].url,
            "HUBSPOT_ACCESS_TOKEN": DEFAULT_TOKEN,
            "HUBSPOT_BASE_URL": self.servers[1].url,
        }

    @property
    def store(self) -> StateStore:
        return StateStore(self.db)

    def upsert_keys(self) -> dict[str, str]:
        """person_key -> the key HubSpot upserts it by (email, else the person key)."""
        return {key: person.get("email") or key for chunk in self.store.iter_persons() for key, person in chunk}

    def stop(self) -> None:
        for server in self.servers:
            server.stop()


@pytest.fixture
def sandbox(tmp_path: Path) -> Iterator[Sandbox]:
    box = Sandbox(tmp_path)
    yield box
    box.stop()


def test_first_run_creates_every_person_and_a_rerun_sends_nothing(sandbox: Sandbox) -> None:
    first = run_daily(sandbox.env, PARTITION)
    assert first.success, failure_messages(first)
    persons = sandbox.store.count("persons")
    assert 0 < persons <= CONTACTS
    pushed = step_metadata(first, "hubspot_contacts")
    assert pushed["created"] == persons and pushed["failed"] == 0
    assert len(sandbox.hubspot.contacts()) == persons
    quarantined = step_metadata(first, "agentclara_contacts")["quarantined"]
    assert quarantined == sandbox.store.count("quarantine") > 0  # the seed is messy on purpose
    assert set(sandbox.hubspot.upserted.values()) == {1}

    requests_before = len(sandbox.hubspot.upsert_requests)
    second = run_daily(sandbox.env, PARTITION)
    assert second.success, failure_messages(second)
    assert len(sandbox.hubspot.upsert_requests) == requests_before
    again = step_metadata(second, "hubspot_contacts")
    assert (again["created"], again["updated"], again["unchanged"]) == (0, 0, persons)


def test_a_one_percent_change_sends_exactly_the_changed_persons(sandbox: Sandbox) -> None:
    assert run_daily(sandbox.env, PARTITION).success
    with sandbox.store.engine.connect() as conn:
        ids = [row[0] for row in conn.execute(sa.text(
            "SELECT record_id FROM records WHERE stream = 'contacts' ORDER BY record_id LIMIT :n"),
            {"n": CONTACTS // 100})]
    changed = sandbox.agentclara.update_contacts(ids, field="tags")
    assert sorted(changed) == sorted(ids)
    with sandbox.store.engine.connect() as conn:
        keys = {row[0] for row in conn.execute(
            sa.text("SELECT person_key FROM records WHERE stream = 'contacts' AND record_id IN :ids").bindparams(
                sa.bindparam("ids", expanding=True)), {"ids": ids})}
    before = dict(sandbox.hubspot.upserted)

    result = run_daily(sandbox.env, PARTITION)
    assert result.success, failure_messages(result)
    sent = {k for k, n in sandbox.hubspot.upserted.items() if n != before.get(k, 0)}
    upsert_keys = sandbox.upsert_keys()
    assert sent == {upsert_keys[k].lower() for k in keys}
    assert step_metadata(result, "hubspot_contacts")["updated"] == len(keys)


class GatedHubSpot(HubSpotApp):
    """Lets `allowed` upsert requests through, then holds the next one until released."""

    def __init__(self, allowed: int) -> None:
        super().__init__()
        self.allowed = allowed
        self.seen = 0
        self.holding = threading.Event()
        self.release = threading.Event()

    def dispatch(self, request: Request) -> Response:
        if request.path.endswith("/contacts/batch/upsert") and self.allowed is not None:
            self.seen += 1
            if self.seen > self.allowed:
                self.holding.set()
                self.release.wait(timeout=60)
                return self.error_response(503, "released after the client was killed")
        return super().dispatch(request)


def test_a_run_killed_halfway_completes_on_restart_without_resending(tmp_path: Path) -> None:
    hubspot = GatedHubSpot(allowed=2)
    box = Sandbox(tmp_path, hubspot)
    try:
        env = {**os.environ, **box.env, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
        child = subprocess.Popen(
            [sys.executable, "-m", "tests.pipeline_runs", json.dumps(box.env), PARTITION],
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        try:
            assert hubspot.holding.wait(timeout=120), "the child never reached its third upsert"
        finally:
            child.kill()
            child.wait()
        assert len(hubspot.upsert_requests) == 2  # two batches of 100 applied before the kill
        recorded = box.store.count("sync_state", target="hubspot")
        assert recorded == 200  # both were recorded as they were answered

        hubspot.allowed = None  # the CRM behaves again
        hubspot.release.set()
        result = run_daily(box.env, PARTITION)
        assert result.success, failure_messages(result)
        persons = box.store.count("persons")
        assert len(hubspot.contacts()) == persons
        assert set(hubspot.upserted.values()) == {1}  # nothing that had succeeded went twice
    finally:
        hubspot.release.set()
        box.stop()


def test_injected_faults_change_nothing_in_the_end_state(tmp_path: Path) -> None:
    clean = Sandbox(tmp_path / "clean")
    faulty = Sandbox(tmp_path / "faulty")
    try:
        assert run_daily(clean.env, PARTITION).success
        # Consecutive faults land on the same request: keep them within the retry budget.
        faulty.agentclara.faults.fail_next = 1
        faulty.agentclara.faults.drop_next = 1
        faulty.agentclara.faults.throttle_next = 2
        faulty.hubspot.faults.fail_next = 1
        faulty.hubspot.faults.drop_next = 1
        faulty.hubspot.faults.throttle_next = 1
        result = run_daily(faulty.env, PARTITION)
        assert result.success, failure_messages(result)
        assert faulty.agentclara.status_counts.get(500) and faulty.hubspot.status_counts.get(429)

        def snapshot(app: HubSpotApp) -> list[dict[str, Any]]:
            keep = ("email", "firstname", "lastname", "phone", "agent_sync_person_key", "agent_sync_sources")
            return sorted(({k: c["properties"].get(k) for k in keep} for c in app.contacts()),
                          key=lambda p: json.dumps(p, sort_keys=True))

        assert snapshot(faulty.hubspot) == snapshot(clean.hubspot)
        assert set(faulty.hubspot.upserted.values()) == {1}
    finally:
        clean.stop()
        faulty.stop()


@pytest.mark.parametrize("variable, service, status", [
    ("AGENTCLARA_API_KEY", "agentclara", "401"),
    ("HUBSPOT_ACCESS_TOKEN", "HubSpot", "401"),
])
def test_a_wrong_key_fails_fast_and_clearly(sandbox: Sandbox, variable: str, service: str, status: str) -> None:
    wrong = "wrong-key-0123456789"
    env = {**sandbox.env, variable: wrong}
    result = run_daily(env, PARTITION)
    assert not result.success
    (message,) = failure_messages(result)
    assert service.lower() in message.lower() and status in message
    assert wrong not in message
    app = sandbox.agentclara if variable.startswith("AGENTCLARA") else sandbox.hubspot
    assert app.status_counts.get(401) == 1  # no retry storm


def test_dry_run_reports_and_writes_nothing(sandbox: Sandbox) -> None:
    result = run_daily({**sandbox.env, "SYNC_DRY_RUN": "1"}, PARTITION)
    assert result.success, failure_messages(result)
    pushed = step_metadata(result, "hubspot_contacts")
    assert pushed["dry run"] is True
    assert pushed["would be created"] == sandbox.store.count("persons") > 0
    assert sandbox.hubspot.requests("POST") == [] and sandbox.hubspot.contacts() == []
    assert sandbox.store.count("sync_state") == 0


def test_a_range_of_partitions_runs_as_one_run(sandbox: Sandbox) -> None:
    result = run_daily(sandbox.env, PARTITION, tags={
        "dagster/asset_partition_range_start": "2026-11-16",
        "dagster/asset_partition_range_end": PARTITION,
    })
    assert result.success, failure_messages(result)
    (row,) = [r for r in sandbox.store.run_history(result.run_id) if r["step"] == "persons"]
    assert row["partition"] == f"2026-11-16...{PARTITION}"
    assert len(sandbox.hubspot.contacts()) == sandbox.store.count("persons")
