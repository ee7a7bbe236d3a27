"""A contact deleted in HubSpot, end to end through Dagster: the AgentClara and HubSpot emulators
over real HTTP, the real hubspot-api-client, a SQLite state store, three daily_sync runs.

Run 1 (day 2026-11-10, reading back to 11-09) syncs everyone's contact,
and one person has a conversation of 11-09, whose engagement belongs to the
11-09 partition. Then someone deletes that person's contact in HubSpot
(through the vendor client, as a script or the UI would), and an operator
backfills 11-09: the contact has not changed, so run 2 does not send it, and
the engagement for the conversation is refused (its contact is gone). The
run succeeds, the outcome says CONTACT_GONE and the person's contact sync
state is reset instead of the engagement failing forever. Run 3 (11-09
again) creates the contact again and the engagement lands on it.
"""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterator

import pytest
from hubspot import HubSpot

from pipelines.state import StateStore
from sandbox.agentclara import DEFAULT_KEY as AGENTCLARA_KEY
from sandbox.agentclara import AgentClaraApp
from sandbox.http import ServerThread
from sandbox.hubspot import DEFAULT_TOKEN, HubSpotApp
from tests.pipeline_runs import failure_messages, run_daily, step_metadata

NOW = datetime(2026, 11, 9, 12, 0, tzinfo=timezone.utc)
DAY, NEXT = "2026-11-09", "2026-11-10"
KEY = "agent_sync_activity_key"


class Box:
    def __init__(self, tmp_path: Path) -> None:
        self.agentclara = AgentClaraApp(contacts=20, conversations=10, now=NOW, per_10s=None, per_minute=None)
        self.hubspot = HubSpotApp()
        self.servers = [ServerThread(app).start() for app in (self.agentclara, self.hubspot)]
        self.db = f"sqlite:///{tmp_path / 'state.db'}"
        self.env = {
            "SYNC_DATABASE_URL": self.db, "SYNC_CONVERSATION_LOOKBACK_DAYS": "1",
            "AGENTCLARA_API_KEY": AGENTCLARA_KEY, "AGENTCLARA_BASE_URL": self.servers[0].url,
            "HUBSPOT_ACCESS_TOKEN": DEFAULT_TOKEN, "HUBSPOT_BASE_URL": self.servers[1].url,
        }
        self.runs: dict[str, Any] = {}
        self.seen: dict[str, Any] = {}

    def note(self, key: str) -> dict[str, Any] | None:
        return next((n for n in self.hubspot.notes() if n["properties"].get(KEY) == key), None)

    def stop(self) -> None:
        for server in self.servers:
            server.stop()


@pytest.fixture(scope="module")
def box(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Box]:
    sandbox = Box(tmp_path_factory.mktemp("contact_gone"))
    try:
        customer, email = next((cid, contact["email"]) for cid in sandbox.agentclara.contact_ids()
                               for contact in [sandbox.agentclara.get_contact(cid) or {}]
                               if str(contact.get("email") or "").endswith((".com", ".org", ".net", ".io")))
        conversation = sandbox.agentclara.add_conversation(customer_id=customer, channel="webchat",
                                                           message="Hello, a question about my order")
        sandbox.runs["1"] = run_daily(sandbox.env, NEXT)
        found = sandbox.hubspot.find(email=email)
        assert found is not None, "the person was synced in run 1"
        email = found["properties"]["email"]
        sandbox.seen.update(email=found["properties"]["email"], contact=found["id"],
                            key=f"agentclara:{conversation}", note_after_1=sandbox.note(f"agentclara:{conversation}"))
        HubSpot(access_token=DEFAULT_TOKEN, host=sandbox.servers[1].url).crm.contacts.basic_api.archive(found["id"])
        sandbox.runs["2"] = run_daily(sandbox.env, DAY)
        store = StateStore(sandbox.db)
        sandbox.seen["state after 2"] = store.sync_rows("hubspot", "contact", [f"email:{email}"])[f"email:{email}"]
        sandbox.seen["errors after 2"] = store.sync_errors("hubspot", limit=100)
        sandbox.seen["note after 2"] = sandbox.note(sandbox.seen["key"])
        sandbox.runs["3"] = run_daily(sandbox.env, DAY)
        sandbox.seen["state after 3"] = store.sync_rows("hubspot", "contact", [f"email:{email}"])[f"email:{email}"]
        store.dispose()
        yield sandbox
    finally:
        sandbox.stop()


def test_every_run_succeeds(box: Box) -> None:
    for name, result in box.runs.items():
        assert result.success, (name, failure_messages(result))


def test_the_engagement_on_the_deleted_contact_fails_as_contact_gone_and_resets_the_contact(box: Box) -> None:
    assert box.seen["note_after_1"] is None  # its day had not been run yet
    assert step_metadata(box.runs["2"], "hubspot_contacts")["created"] == 0  # the contact had not changed
    meta = step_metadata(box.runs["2"], "hubspot_activities")
    assert meta["errors by code"] == {"CONTACT_GONE": 1}
    assert meta["contacts gone from the CRM (sent again next run)"] == 1
    assert box.seen["note after 2"] is None
    state = box.seen["state after 2"]
    assert state.crm_id is None and state.last_hash == "" and not state.error_permanent
    assert {"key": f"email:{box.seen['email']}", "error_code": "CONTACT_GONE"}.items() <= next(
        e for e in box.seen["errors after 2"] if e["key"] == f"email:{box.seen['email']}").items()


def test_the_next_run_creates_the_contact_again_and_the_engagement_lands_on_it(box: Box) -> None:
    contact = box.hubspot.find(email=box.seen["email"])
    assert contact is not None and contact["id"] != box.seen["contact"]
    assert box.seen["state after 3"].crm_id == contact["id"]
    note = box.note(box.seen["key"])
    assert note is not None and box.hubspot.associated("notes", note["id"], "contacts") == [contact["id"]]
    assert step_metadata(box.runs["3"], "hubspot_activities")["errors by code"] == {}
    assert step_metadata(box.runs["3"], "hubspot_contacts")["created"] >= 1
