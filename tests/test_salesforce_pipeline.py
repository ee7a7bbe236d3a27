"""daily_sync with Salesforce as a target, through Dagster: sandbox AgentClara
-> state store -> the Salesforce emulator over TLS (real simple-salesforce,
CA trusted through REQUESTS_CA_BUNDLE), beside or instead of HubSpot.

Covers both targets at once, a target turned on later, the set-up check that
stops before anything is written, and an expired session.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

import pytest

from pipelines.state import StateStore
from sandbox import tls
from sandbox.agentclara import AgentClaraApp
from sandbox.http import ServerThread
from sandbox.hubspot import DEFAULT_TOKEN, HubSpotApp
from sandbox.salesforce import SalesforceApp, serve
from tests.pipeline_runs import failure_messages, run_daily, step_metadata

PARTITION = "2026-11-22"


class Targets:
    def __init__(self, tmp_path: Path) -> None:
        self.agentclara = AgentClaraApp(contacts=150, conversations=60)
        self.hubspot, self.salesforce = HubSpotApp(), SalesforceApp()
        self.servers = [ServerThread(self.agentclara).start(), ServerThread(self.hubspot).start(),
                        serve(self.salesforce)]
        self.db = f"sqlite:///{tmp_path / 'state.db'}"
        self.source_env = {
            "SYNC_DATABASE_URL": self.db,
            "AGENTCLARA_API_KEY": "ac_sandbox_key",
            "AGENTCLARA_BASE_URL": self.servers[0].url,
        }
        self.hubspot_env = {"HUBSPOT_ACCESS_TOKEN": DEFAULT_TOKEN, "HUBSPOT_BASE_URL": self.servers[1].url}
        self.salesforce_env = {
            "SALESFORCE_INSTANCE_URL": self.servers[2].url,
            "SALESFORCE_ACCESS_TOKEN": self.salesforce.access_token,
            "SALESFORCE_OBJECT": "Lead",
        }

    def persons(self) -> int:
        return StateStore(self.db).count("persons")

    def stop(self) -> None:
        for server in self.servers:
            server.stop()


@pytest.fixture
def targets(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Targets]:
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", tls.ca_path())
    box = Targets(tmp_path)
    yield box
    box.stop()


def test_both_targets_receive_every_person(targets: Targets) -> None:
    result = run_daily({**targets.source_env, **targets.hubspot_env, **targets.salesforce_env}, PARTITION)
    assert result.success, failure_messages(result)
    persons = targets.persons()
    assert len(targets.hubspot.contacts()) == persons
    leads = targets.salesforce.records("Lead")
    assert len(leads) == persons
    assert all(lead["LastName"] and lead["Company"] for lead in leads)  # placeholders fill the gaps
    assert step_metadata(result, "salesforce_contacts")["created"] == persons


def test_a_target_turned_on_later_gets_everything_and_the_other_nothing_new(targets: Targets) -> None:
    assert run_daily({**targets.source_env, **targets.hubspot_env}, PARTITION).success
    assert targets.salesforce.records("Lead") == []
    hubspot_requests = len(targets.hubspot.upsert_requests)

    result = run_daily({**targets.source_env, **targets.hubspot_env, **targets.salesforce_env}, PARTITION)
    assert result.success, failure_messages(result)
    assert len(targets.salesforce.records("Lead")) == targets.persons()
    assert len(targets.hubspot.upsert_requests) == hubspot_requests
    assert step_metadata(result, "hubspot_contacts")["unchanged"] == targets.persons()


def test_missing_fields_stop_salesforce_before_anything_is_written(targets: Targets) -> None:
    targets.salesforce.drop_field("Lead", "Agent_Contact_Id__c")
    result = run_daily({**targets.source_env, **targets.hubspot_env, **targets.salesforce_env}, PARTITION)
    assert not result.success
    (message,) = failure_messages(result)
    assert "Agent_Contact_Id__c" in message and "Setup" in message
    assert targets.salesforce.records("Lead") == []
    assert len(targets.hubspot.contacts()) == targets.persons()  # the other target is not held back


def test_an_expired_session_fails_at_once(targets: Targets) -> None:
    targets.salesforce.expire_sessions()
    result = run_daily({**targets.source_env, **targets.salesforce_env}, PARTITION)
    assert not result.success
    (message,) = failure_messages(result)
    assert "salesforce" in message.lower() and "401" in message
    assert targets.salesforce.access_token not in message
    assert targets.salesforce.status_counts.get(401) == 1
