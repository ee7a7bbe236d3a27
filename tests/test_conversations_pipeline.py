"""Conversations end to end through Dagster: the AgentClara, Clairo and AgentPro
emulators (clocks pinned) -> state store -> HubSpot engagements and
Salesforce Tasks, over real HTTP with the real clients.

One sandbox, three daily_sync runs (module fixture), then assertions:
run A is a two-day range as one run (2026-11-08...2026-11-09), run B the
same range again, then new messages and new conversations arrive and run C
syncs 2026-11-10. Covers: conversations in the day of their last activity;
the AgentClara listing read once for the range and not past the lookback;
per-day results; one communication per SMS/WhatsApp conversation and a
note otherwise, on the right contact; Tasks with WhoId; roll-ups on the
contact; a rerun creates nothing; a new message updates the same engagement
and the same Task; Clairo brief and AgentPro visitor conversations on their
persons.
"""

from __future__ import annotations

import functools
from collections import Counter
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Iterator

import pytest
import sqlalchemy as sa

from connectors.hubspot.mapping import hubspot_datetime
from connectors.salesforce.mapping import ROLLUP_FIELDS, salesforce_datetime
from pipelines.state import StateStore
from pipelines.state.tables import records
from sandbox import tls
from sandbox.agentclara import DEFAULT_KEY as AGENTCLARA_KEY
from sandbox.agentclara import AgentClaraApp
from sandbox.agentpro import DEFAULT_KEY as AGENTPRO_KEY
from sandbox.agentpro import AgentProApp
from sandbox.clairo import DEFAULT_KEY as CLAIRO_KEY
from sandbox.clairo import ClairoApp
from sandbox.http import ServerThread
from sandbox.hubspot import DEFAULT_TOKEN, HubSpotApp
from sandbox.salesforce import SalesforceApp, serve
from schemas.fields import parse_timestamp
from tests.pipeline_runs import failure_messages, run_daily, step_metadata

NOW = datetime(2026, 11, 10, 12, 0, tzinfo=timezone.utc)
FIRST, LAST, NEXT = "2026-11-08", "2026-11-09", "2026-11-10"
LOOKBACK_DAYS = 1
NEW_MESSAGE = "One more question: are you open on Sundays?"
KEY = "agent_sync_activity_key"


class Box:
    def __init__(self, tmp_path: Path) -> None:
        self.agentclara = AgentClaraApp(contacts=80, conversations=360, now=NOW, per_10s=None, per_minute=None)
        self.clairo = ClairoApp(briefs=6, conversations=10, now=NOW, per_minute=None)
        self.agentpro = AgentProApp(chatbots=1, conversations=8, now=NOW, per_minute=None, per_second=None)
        self.hubspot = HubSpotApp()
        self.salesforce = SalesforceApp()
        # The optional roll-up fields, as an admin would add them (they are never required).
        for name, kind in zip(ROLLUP_FIELDS.values(), ("datetime", "double", "string")):
            self.salesforce.add_field("Lead", name, kind)
        self.servers = [ServerThread(app).start() for app in (self.agentclara, self.clairo, self.agentpro, self.hubspot)]
        self.servers.append(serve(self.salesforce))
        urls = [server.url for server in self.servers]
        self.db = f"sqlite:///{tmp_path / 'state.db'}"
        self.env = {
            "SYNC_DATABASE_URL": self.db,
            "SYNC_CONVERSATION_LOOKBACK_DAYS": str(LOOKBACK_DAYS),
            "AGENTCLARA_API_KEY": AGENTCLARA_KEY, "AGENTCLARA_BASE_URL": urls[0],
            "CLAIRO_API_KEY": CLAIRO_KEY, "CLAIRO_BASE_URL": urls[1] + ClairoApp.BASE_PATH,
            "AGENTPRO_API_KEY": AGENTPRO_KEY, "AGENTPRO_BASE_URL": urls[2],
            "HUBSPOT_ACCESS_TOKEN": DEFAULT_TOKEN, "HUBSPOT_BASE_URL": urls[3],
            "SALESFORCE_INSTANCE_URL": urls[4], "SALESFORCE_ACCESS_TOKEN": self.salesforce.access_token,
        }
        self.runs: dict[str, Any] = {}
        self.seen: dict[str, Any] = {}

    @functools.cached_property
    def store(self) -> StateStore:
        return StateStore(self.db)

    def contact(self, target_id: str | None) -> dict[str, Any]:
        """The HubSpot contact with this id."""
        (found,) = [c for c in self.hubspot.contacts() if c["id"] == target_id]
        return found

    def conversations(self) -> dict[str, dict[str, Any]]:
        """Stored conversations by activity key: data, person_key, event_day."""
        found = {}
        for chunk in self.store.iter_conversations():
            for row in chunk:
                found[f"{row.source}:{row.data['source_id']}"] = {
                    "data": row.data, "person_key": row.person_key, "event_day": row.event_day}
        return found

    def engagements(self) -> dict[str, list[tuple[str, dict[str, Any]]]]:
        """HubSpot engagements by activity key: [(object type, record)]."""
        found: dict[str, list[tuple[str, dict[str, Any]]]] = {}
        for kind in ("notes", "communications"):
            for record in self.hubspot.objects(kind):
                found.setdefault(record["properties"].get(KEY), []).append((kind, record))
        return found

    def tasks(self) -> dict[str, dict[str, Any]]:
        return {task["Agent_Conversation_Id__c"]: task for task in self.salesforce.records("Task")}

    def crm_id(self, target: str, object_type: str, key: str) -> str | None:
        row = self.store.sync_rows(target, object_type, [key]).get(key)
        return row.crm_id if row else None

    def stop(self) -> None:
        for server in self.servers:
            server.stop()


def agentclara_expected(app: AgentClaraApp) -> dict[str, dict[str, Any]]:
    """Every AgentClara conversation as the emulator has it: start, last activity day, customer."""
    found = {}
    for conversation_id in app.conversation_ids():
        detail = app.conversation(conversation_id)
        started = parse_timestamp(detail["timestamp"])
        times = [parse_timestamp(m["timestamp"]) for m in detail["messages"]]
        found[conversation_id] = {"started": started, "day": max(times or [started]).date().isoformat(),
                                  "customer_id": detail["customer_id"], "channel": detail["channel"]}
    return found


@pytest.fixture(scope="module")
def box(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Box]:
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("REQUESTS_CA_BUNDLE", tls.ca_path())
        sandbox = Box(tmp_path_factory.mktemp("conversations"))
        try:
            sandbox.seen["expected"] = agentclara_expected(sandbox.agentclara)
            range_tags = {"dagster/asset_partition_range_start": FIRST, "dagster/asset_partition_range_end": LAST}
            sandbox.runs["A"] = run_daily(sandbox.env, LAST, tags=range_tags)
            sandbox.seen["offsets A"] = sandbox.agentclara.list_offsets("conversations")
            sandbox.seen["engagements A"] = sandbox.engagements()
            sandbox.seen["tasks A"] = sandbox.tasks()
            sandbox.seen["creates A"] = len(sandbox.hubspot.requests("POST", "/batch/create"))
            sandbox.runs["B"] = run_daily(sandbox.env, LAST, tags=range_tags)
            sandbox.seen["creates B"] = len(sandbox.hubspot.requests("POST", "/batch/create"))
            sandbox.seen["tasks B"] = sandbox.tasks()
            sandbox.seen["engagements B"] = sandbox.engagements()
            # New activity on 2026-11-10 (the emulators' pinned "now"):
            stored = sandbox.conversations()
            woken = sorted(key for key, conv in stored.items() if key.startswith("agentclara:") and conv["person_key"]
                           and conv["data"]["started_at"].startswith(LAST))[0]
            sandbox.seen["woken"] = woken
            sandbox.agentclara.add_message(woken.split(":", 1)[1], NEW_MESSAGE)
            (brief,) = sandbox.clairo.add_briefs(1)
            sandbox.seen["brief"] = brief
            bot = sandbox.agentpro.chatbots[0]["id"]
            sandbox.seen["visitor conversation"] = sandbox.agentpro.add_conversation(
                bot, visitor_name="Wendy Walsh", visitor_phone="+44 7911 123456", channel="whatsapp")
            sandbox.runs["C"] = run_daily(sandbox.env, NEXT)
            yield sandbox
        finally:
            sandbox.stop()


def test_every_run_succeeds(box: Box) -> None:
    for name, result in box.runs.items():
        assert result.success, (name, failure_messages(result))


def test_conversations_land_in_the_day_of_their_last_activity(box: Box) -> None:
    expected = box.seen["expected"]
    start = datetime(2026, 11, 8, tzinfo=timezone.utc)
    cutoff, end = start - timedelta(days=LOOKBACK_DAYS), start + timedelta(days=2)
    stored = box.conversations()
    read = {cid for cid, conv in expected.items() if cutoff <= conv["started"] < end}
    landed = {key.split(":", 1)[1] for key in stored if key.startswith("agentclara:")}
    woken = box.seen["woken"].split(":", 1)[1]
    # Run C (2026-11-10, lookback 1) read 2026-11-09 onwards again, and what started on 11-10.
    later = {cid for cid, conv in expected.items() if conv["started"] >= end}
    assert read and read <= landed <= read | later
    for cid in read - {woken}:
        assert stored[f"agentclara:{cid}"]["event_day"] == expected[cid]["day"], cid
    # A conversation that got a new message moved to the day of that message.
    assert stored[box.seen["woken"]]["event_day"] == NEXT
    # Started before the window's lookback: never read, whatever its day.
    assert not {cid for cid, conv in expected.items() if conv["started"] < cutoff} & landed
    # Clairo and AgentPro conversations (landed whole) sit in the day of their last message.
    for key, conv in stored.items():
        if not key.startswith("agentclara:"):
            data = conv["data"]
            assert conv["event_day"] == (data["last_message_at"] or data["started_at"])[:10], key


def test_a_range_reads_the_listing_once_and_records_each_days_results(box: Box) -> None:
    result = box.runs["A"]
    assert box.seen["offsets A"] == [0]  # one listing for both days, stopped at the lookback on its first page
    read = step_metadata(result, "agentclara_contacts_raw")
    assert read["window"] == f"{FIRST}...{LAST}" and read["listing stopped early"] is True
    assert read["conversations details fetched"] == read["conversations listed in the window"]
    expected = box.seen["expected"]
    days = box.store.day_results(result.run_id)
    per_day = Counter(conv["day"] for cid, conv in expected.items()
                      if conv["day"] in (FIRST, LAST) and conv["started"] >= datetime(2026, 11, 7, tzinfo=timezone.utc))
    assert {day: stats["conversations"] for day, stats in days["agentclara_conversations"].items()} == {
        FIRST: per_day[FIRST], LAST: per_day[LAST]}
    pushed = days["hubspot_activities"]
    assert set(pushed) == {FIRST, LAST} and set(days["salesforce_activities"]) == {FIRST, LAST}
    assert all(stats["created"] + stats["unlinked"] == stats["considered"] for stats in pushed.values())
    # ... and the Dagster UI has one observation per day partition.
    observed = {(e.asset_key.to_user_string(), e.partition) for e in result.get_asset_observation_events()}
    assert {("agentclara_conversations", FIRST), ("agentclara_conversations", LAST),
            ("hubspot_activities", FIRST), ("hubspot_activities", LAST)} <= observed


def test_hubspot_gets_one_engagement_per_conversation_on_the_right_contact(box: Box) -> None:
    engagements, stored, expected = box.seen["engagements A"], box.conversations(), box.seen["expected"]
    in_range = {key: conv for key, conv in stored.items()
                if key.startswith("agentclara:") and expected[key.split(":", 1)[1]]["day"] in (FIRST, LAST)}
    linked = {key: conv for key, conv in in_range.items() if conv["person_key"]}
    assert linked and set(engagements) == set(linked)  # unlinked ones wait, nothing else was sent
    kinds = Counter()
    for key, conv in linked.items():
        ((kind, record),) = engagements[key]
        channel = conv["data"]["channel"]
        kinds[kind] += 1
        if channel in ("sms", "whatsapp"):
            assert kind == "communications"
            assert record["properties"]["hs_communication_channel_type"] == {"sms": "SMS", "whatsapp": "WHATS_APP"}[channel]
        else:
            assert kind == "notes" and "AI agent conversation" in record["properties"]["hs_note_body"]
        contact_id = box.crm_id("hubspot", "contact", conv["person_key"])
        assert box.hubspot.associated(kind, record["id"], "contacts") == [contact_id]
        customer = conv["data"]["contact_source_id"]
        if box.store.count("records", source="agentclara", stream="contacts", record_id=customer):
            assert f"agentclara:{customer}" in box.contact(contact_id)["properties"]["agent_sync_sources"]
    assert kinds["communications"] and kinds["notes"]  # the seed has both kinds of channel


def test_salesforce_gets_one_task_per_conversation_with_who_id(box: Box) -> None:
    tasks, engagements = box.seen["tasks A"], box.seen["engagements A"]
    assert set(tasks) == set(engagements)
    stored = box.conversations()
    for key, task in tasks.items():
        conv = stored[key]
        lead = box.salesforce.find("Lead", "Agent_Contact_Id__c", conv["person_key"])
        assert task["WhoId"] == lead["Id"] == box.crm_id("salesforce", "contact", conv["person_key"])
        assert task["Subject"] == (conv["data"]["subject"] or f"AI agent conversation ({conv['data']['channel']})")
        assert task["ActivityDate"] == conv["data"]["started_at"][:10]
        assert task["Status"] == "Completed"
        first = conv["data"]["messages"][0]
        assert f"{first['role']}: {first['content']}" in task["Description"]


def test_contacts_carry_the_conversation_rollups(box: Box) -> None:
    stored = box.conversations()
    by_person: dict[str, list[dict[str, Any]]] = {}
    for conv in stored.values():
        if conv["person_key"]:
            by_person.setdefault(conv["person_key"], []).append(conv["data"])
    assert any(len(convs) > 1 for convs in by_person.values())
    contacts = {c["id"]: c for c in box.hubspot.contacts()}
    for person_key, convs in by_person.items():
        last = max(parse_timestamp(c["last_message_at"] or c["started_at"]) for c in convs)
        channels = sorted({c["channel"] for c in convs})
        props = contacts[box.crm_id("hubspot", "contact", person_key)]["properties"]
        assert props["agent_sync_conversation_count"] == str(len(convs)), person_key
        assert props["agent_sync_last_conversation_at"] == hubspot_datetime(last)
        assert props["agent_sync_channels"] == ";".join(channels)
        lead = box.salesforce.find("Lead", "Agent_Contact_Id__c", person_key)
        assert lead["Agent_Conversation_Count__c"] == len(convs)
        assert lead["Agent_Last_Conversation_At__c"] == salesforce_datetime(last)
        assert lead["Agent_Channels__c"] == ";".join(channels)


def test_a_rerun_creates_nothing_and_sends_nothing(box: Box) -> None:
    rerun = box.runs["B"]
    assert box.seen["creates B"] == box.seen["creates A"]
    assert box.seen["engagements B"] == box.seen["engagements A"]
    assert box.seen["tasks B"] == box.seen["tasks A"]
    for target in ("hubspot", "salesforce"):
        pushed = step_metadata(rerun, f"{target}_activities")
        assert (pushed["created"], pushed["updated"], pushed["failed"]) == (0, 0, 0)
        assert pushed["unchanged"] == len(box.seen["tasks A"])
        assert step_metadata(rerun, f"{target}_contacts")["updated"] == 0


def test_a_new_message_updates_the_same_engagement_and_task(box: Box) -> None:
    woken = box.seen["woken"]
    ((kind, before),) = box.seen["engagements A"][woken]
    ((kind_after, after),) = box.engagements()[woken]
    assert (kind_after, after["id"]) == (kind, before["id"])  # the same engagement, and only one
    body = after["properties"].get("hs_note_body") or after["properties"]["hs_communication_body"]
    assert NEW_MESSAGE in body
    task = box.tasks()[woken]
    assert task["Id"] == box.seen["tasks A"][woken]["Id"] and NEW_MESSAGE in task["Description"]
    assert box.salesforce.upsert_count("Task", woken) == 2  # created once, updated once
    days = box.store.day_results(box.runs["C"].run_id)
    assert days["hubspot_activities"][NEXT]["updated"] >= 1 and days["salesforce_activities"][NEXT]["updated"] >= 1
    # The person's roll-up moved with it: the contact was updated too.
    person = box.conversations()[woken]["person_key"]
    contact = box.contact(box.crm_id("hubspot", "contact", person))
    message_time = box.conversations()[woken]["data"]["last_message_at"]
    assert message_time.startswith(NEXT)
    assert contact["properties"]["agent_sync_last_conversation_at"] == hubspot_datetime(message_time)


def test_clairo_and_agentpro_conversations_reach_their_persons(box: Box) -> None:
    stored, engagements = box.conversations(), box.engagements()
    # The Clairo lead's discovery conversation: on the brief's person, as a note (web chat).
    brief = box.seen["brief"]
    (conversation_id,) = [row["data"]["extra"]["conversationId"] for row in _contact_records(box, "clairo")
                          if row["record_id"] == brief]
    key = f"clairo:{conversation_id}"
    assert stored[key]["event_day"] == NEXT and stored[key]["data"]["channel"] == "webchat"
    ((kind, note),) = engagements[key]
    contact = box.contact(box.hubspot.associated(kind, note["id"], "contacts")[0])
    assert kind == "notes" and f"clairo:{brief}" in contact["properties"]["agent_sync_sources"]
    # The AgentPro WhatsApp visitor known by phone only: a WhatsApp communication on that phone's person.
    key = f"agentpro:{box.seen['visitor conversation']}"
    assert stored[key]["person_key"] == "phone:+447911123456"
    ((kind, record),) = engagements[key]
    assert kind == "communications" and record["properties"]["hs_communication_channel_type"] == "WHATS_APP"
    assert box.hubspot.associated(kind, record["id"], "contacts") == [
        box.crm_id("hubspot", "contact", "phone:+447911123456")]
    assert box.tasks()[key]["WhoId"] == box.crm_id("salesforce", "contact", "phone:+447911123456")


def _contact_records(box: Box, source: str) -> list[dict[str, Any]]:
    c = records.c
    with box.store.engine.connect() as conn:
        rows = conn.execute(sa.select(c.record_id, c.data).where(c.stream == "contacts", c.source == source)).all()
    return [{"record_id": row.record_id, "data": row.data} for row in rows]
