"""A person whose key changes keeps its CRM record: HubSpot and Salesforce through daily_sync.

A customer first seen by phone only is synced as "phone:+1...", a contact
(HubSpot, keyed by agent_sync_person_key) and a Lead (Salesforce, external
id). When an email turns up for them, their key becomes "email:...": the
same CRM records must be updated, not a second pair created. When the new
key already had CRM records of its own, the leftovers are reported.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator

import pytest

from pipelines.state import StateStore
from sandbox import tls
from sandbox.agentclara import DEFAULT_KEY, AgentClaraApp
from sandbox.http import ServerThread
from sandbox.hubspot import DEFAULT_TOKEN, HubSpotApp
from sandbox.salesforce import SalesforceApp, serve
from tests.pipeline_runs import failure_messages, run_daily, step_metadata

DAYS = ("2026-11-20", "2026-11-21", "2026-11-22")
PHONE, E164 = "(415) 555-0142", "+14155550142"
OLD_KEY = f"phone:{E164}"


class Box:
    def __init__(self, tmp_path: Path) -> None:
        self.agentclara = AgentClaraApp(contacts=30, conversations=0, per_10s=None, per_minute=None)
        self.hubspot, self.salesforce = HubSpotApp(), SalesforceApp()
        self.servers = [ServerThread(self.agentclara).start(), ServerThread(self.hubspot).start(),
                        serve(self.salesforce)]
        self.store = StateStore(f"sqlite:///{tmp_path / 'state.db'}")
        self.env = {
            "SYNC_DATABASE_URL": self.store.url,
            "AGENTCLARA_API_KEY": DEFAULT_KEY, "AGENTCLARA_BASE_URL": self.servers[0].url,
            "HUBSPOT_ACCESS_TOKEN": DEFAULT_TOKEN, "HUBSPOT_BASE_URL": self.servers[1].url,
            "SALESFORCE_INSTANCE_URL": self.servers[2].url,
            "SALESFORCE_ACCESS_TOKEN": self.salesforce.access_token,
        }

    def run(self, day: str) -> Any:
        result = run_daily(self.env, day)
        assert result.success, failure_messages(result)
        return result

    def crm_ids(self, key: str) -> dict[str, str | None]:
        return {target: (row.crm_id if row else None) for target in ("hubspot", "salesforce")
                for row in [self.store.sync_rows(target, "contact", [key]).get(key)]}

    def stop(self) -> None:
        for server in self.servers:
            server.stop()


@pytest.fixture
def box(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Box]:
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", tls.ca_path())
    sandbox = Box(tmp_path)
    yield sandbox
    sandbox.stop()


def test_a_phone_only_person_who_gives_an_email_keeps_their_crm_records(box: Box) -> None:
    (contact_id,) = box.agentclara.insert_contacts(1, at="end", name="Pat Quinn", email=None, phone=PHONE)
    box.run(DAYS[0])
    before = box.crm_ids(OLD_KEY)
    assert all(before.values()), before
    contacts, leads = len(box.hubspot.contacts()), len(box.salesforce.records("Lead"))

    box.agentclara.update_contacts([contact_id], field="email")
    email = box.agentclara.get_contact(contact_id)["email"].lower()
    second = box.run(DAYS[1])

    new_key = f"email:{email}"
    assert box.crm_ids(new_key) == before  # the same CRM records, under the new key
    assert box.store.sync_rows("hubspot", "contact", [OLD_KEY]) == {}
    assert len(box.hubspot.contacts()) == contacts and len(box.salesforce.records("Lead")) == leads
    contact = box.hubspot.find("contacts", email=email)
    assert contact["id"] == before["hubspot"]
    assert contact["properties"]["phone"] == E164 and not contact["properties"].get("agent_sync_person_key")
    lead = box.salesforce.find("Lead", "Id", before["salesforce"])
    assert lead["Email"] == email and lead["Agent_Contact_Id__c"] == new_key
    assert step_metadata(second, "persons")["CRM records moved to a re-keyed person"] == 2
    for target in ("hubspot", "salesforce"):
        metadata = step_metadata(second, f"{target}_contacts")
        assert (metadata["created"], metadata["updated"]) == (0, 1), (target, metadata)
        row = box.store.sync_rows(target, "contact", [new_key])[new_key]
        assert row.moved_from is None and row.last_hash  # synced: later runs diff as usual

    third = box.run(DAYS[2])
    for target in ("hubspot", "salesforce"):
        metadata = step_metadata(third, f"{target}_contacts")
        assert (metadata["created"], metadata["updated"]) == (0, 0), (target, metadata)


def test_when_the_new_key_has_its_own_crm_records_the_leftovers_are_reported(box: Box) -> None:
    (phone_only,) = box.agentclara.insert_contacts(1, at="end", name="Pat Quinn", email=None, phone=PHONE)
    box.agentclara.insert_contacts(1, at="end", name="Patricia Quinn", email="pat.quinn@example.org", phone=None)
    box.run(DAYS[0])
    old = box.crm_ids(OLD_KEY)
    emailed = box.crm_ids("email:pat.quinn@example.org")
    assert all(old.values()) and all(emailed.values())
    contacts = len(box.hubspot.contacts())

    # The same person's email now comes with the phone: the phone-only record joins them.
    box.agentclara.insert_contacts(1, at="end", name="Patricia Quinn", email="pat.quinn@example.org", phone=PHONE)
    second = box.run(DAYS[1])

    assert box.crm_ids("email:pat.quinn@example.org") == emailed  # the emailed person keeps its own records
    assert len(box.hubspot.contacts()) == contacts  # nothing new created
    left = step_metadata(second, "persons")["CRM duplicates to merge by hand"]
    assert sorted(left) == sorted(f"{target} {old[target]}: was {OLD_KEY}, now part of email:pat.quinn@example.org"
                                  for target in ("hubspot", "salesforce"))
    assert phone_only in box.hubspot.find("contacts", email="pat.quinn@example.org")["properties"][
        "agent_sync_sources"]
