"""Webhook events to CRM writes: AgentClara emulator -> signed POST over real HTTP ->
`python -m pipelines.webhooks` (a real child process) -> inbox -> `agentclara_webhook_sensor`
(evaluated against a Dagster instance) -> `webhook_sync` with the run config it produced ->
the HubSpot emulator, through hubspot-api-client.

One sandbox (module fixture): a daily_sync for 2026-11-09 first puts the
AgentClara people and that day's conversations in HubSpot; then each test
sends events and runs the sensor's batch. Covers: a new message updating the
conversation's existing engagement in place; a conversation.created that
only names its conversation (fetched) becoming an engagement on the right
contact; a new customer's conversation creating the contact first; a replay
changing nothing; a booking for someone not in the CRM becoming one contact
and one meeting on it, the same booking at a new time updating that meeting
in place, its replay changing nothing, and a booking an earlier version kept
as `waiting_for_appointment_support` synced once; a failed run leaving its
events pending for the next batch; a dry run writing nothing. Then, on a
second sandbox with Salesforce as the only target (no daily sync): a booking
becoming one Event on the new Lead, updated in place, and an org without the
Event key field failing the run before any Lead is written.
"""

from __future__ import annotations

from typing import Any, Iterator, Mapping

import dagster as dg
import pytest

from pipelines.webhooks import inbox
from tests.pipeline_runs import failure_messages, run_daily
from tests.webhook_sandbox import DAY, Box


@pytest.fixture(scope="module")
def box(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Box]:
    sandbox = Box(tmp_path_factory.mktemp("webhook_sync"))
    # A managed instance: Dagster keeps the current one in a context variable, which an
    # ephemeral instance never dropped would leave pointing at a dead one for later tests.
    with dg.instance_for_test() as instance:
        sandbox.instance = instance
        try:
            daily = run_daily(sandbox.env, DAY, instance=instance)
            assert daily.success, failure_messages(daily)
            sandbox.receiver.start()
            yield sandbox
        finally:
            sandbox.stop()


def _synced_conversation(box: Box) -> tuple[str, str]:
    """An AgentClara conversation with its HubSpot engagement that no test used yet: (its id, engagement id)."""
    for chunk in box.store.iter_conversations():
        for row in chunk:
            key = f"agentclara:{row.record_id}"
            state = box.store.sync_rows("hubspot", "activity", [key]).get(key)
            if row.source == "agentclara" and state and state.crm_id and row.record_id not in box.used:
                box.used.add(row.record_id)
                return row.record_id, state.crm_id
    raise AssertionError(f"no AgentClara conversation of {DAY} reached HubSpot")


def _synced_customer(box: Box) -> str:
    for customer in box.agentclara.contact_ids():
        if box.hubspot_contact_of(customer):
            return customer
    raise AssertionError("no AgentClara customer reached HubSpot")


def _body(engagement: Mapping[str, Any]) -> str:
    properties = engagement["properties"]
    return str(properties.get("hs_note_body") or properties.get("hs_communication_body") or "")


def test_a_new_message_updates_the_conversations_engagement_in_place(box: Box) -> None:
    conversation_id, engagement_id = _synced_conversation(box)
    before = box.engagements()
    box.agentclara.add_message(conversation_id, "Can we move it to Friday at 3pm?")
    status, reply = box.send(box.agentclara.webhook_event("message.received", conversation_id))
    assert (status, reply["outcome"]) == (200, "stored")

    result = box.sync()

    assert result.success, failure_messages(result)
    after = box.engagements()
    (engagement,) = after[f"agentclara:{conversation_id}"]
    assert engagement["id"] == engagement_id  # the same engagement, updated in place
    assert "Can we move it to Friday at 3pm?" in _body(engagement)
    assert sum(map(len, after.values())) == sum(map(len, before.values()))
    assert set(box.statuses().values()) == {"done"}


def test_a_created_conversation_named_without_its_thread_lands_on_the_right_contact(box: Box) -> None:
    customer = _synced_customer(box)
    conversation_id = box.agentclara.add_conversation(customer_id=customer, channel="email",
                                                      message="Do you have a slot next week?", sender="customer")
    event = box.agentclara.webhook_event("conversation.created", conversation_id, with_messages=False)
    assert box.send(event)[0] == 200

    result = box.sync()

    assert result.success, failure_messages(result)
    (engagement,) = box.engagements()[f"agentclara:{conversation_id}"]
    assert box.hubspot.associated(engagement["kind"], engagement["id"], "contacts") == [box.hubspot_contact_of(customer)]
    assert "Do you have a slot next week?" in _body(engagement)  # the thread came from the detail read
    box.created_event = event  # for the replay test


def test_a_new_customers_conversation_creates_the_contact_then_the_engagement(box: Box) -> None:
    conversation_id = box.agentclara.add_conversation(
        channel="email", customer_email="wanda.hook@example.org", customer_name="Wanda Hook",
        message="Hi, I'd like to book a cleaning", sender="customer")
    assert box.send(box.agentclara.webhook_event("conversation.created", conversation_id))[0] == 200

    result = box.sync()

    assert result.success, failure_messages(result)
    (contact,) = [c for c in box.hubspot.contacts() if c["properties"].get("email") == "wanda.hook@example.org"]
    assert contact["properties"].get("firstname") == "Wanda"
    (engagement,) = box.engagements()[f"agentclara:{conversation_id}"]
    assert box.hubspot.associated(engagement["kind"], engagement["id"], "contacts") == [contact["id"]]


def test_a_replayed_event_changes_nothing(box: Box) -> None:
    event = box.created_event
    engagements, rows = box.engagements(), inbox.events(box.store.engine)

    status, reply = box.send(event)

    assert (status, reply["outcome"]) == (200, "duplicate")
    assert [row for row in inbox.events(box.store.engine) if row["event_id"] == event["id"]] == \
        [row for row in rows if row["event_id"] == event["id"]]
    assert len(inbox.events(box.store.engine)) == len(rows)
    requests, skipped = box.sensor_requests()
    assert requests == [] and skipped == "no pending webhook events"
    assert box.engagements() == engagements


def test_a_booking_for_someone_not_in_the_crm_creates_the_contact_then_one_meeting_on_it(box: Box) -> None:
    event = box.booking("bea.booker@example.org", "Bea Booker", start="2026-12-04T15:00:00Z",
                        end="2026-12-04T15:45:00Z")
    assert not box.hubspot.find("contacts", email="bea.booker@example.org")
    status, reply = box.send(event)
    assert (status, reply["outcome"]) == (200, "stored")

    result = box.sync()

    assert result.success, failure_messages(result)
    (contact,) = [c for c in box.hubspot.contacts() if c["properties"].get("email") == "bea.booker@example.org"]
    (meeting,) = box.meetings()[f"agentclara:{event['data']['id']}"]
    props = meeting["properties"]
    assert props["hs_meeting_title"] == "Whitening" and props["hs_meeting_outcome"] == "SCHEDULED"
    assert props["hs_meeting_start_time"] == props["hs_timestamp"] == "2026-12-04T15:00:00.000Z"
    assert props["hs_meeting_end_time"] == "2026-12-04T15:45:00.000Z"
    assert box.hubspot.associated("meetings", meeting["id"], "contacts") == [contact["id"]]
    assert box.statuses()[event["id"]] == "done"
    steps = box.recorded(result)  # each push recorded in the run history, as the daily job's are
    assert [steps[f"hubspot_{what}"]["status"] for what in ("contacts", "activities", "appointments")] == \
        ["success"] * 3 and steps["hubspot_appointments"]["stats"]["created"] == 1
    box.booked = event  # for the rebooking and replay tests


def test_the_same_booking_at_a_new_time_updates_its_meeting_in_place(box: Box) -> None:
    key = f"agentclara:{box.booked['data']['id']}"
    (first,) = box.meetings()[key]
    count = len(box.hubspot.meetings())
    event = box.rebooked(box.booked, start="2026-12-05T09:00:00Z", end="2026-12-05T10:00:00Z")
    assert box.send(event)[0] == 200

    result = box.sync()

    assert result.success, failure_messages(result)
    (meeting,) = box.meetings()[key]
    assert meeting["id"] == first["id"] and len(box.hubspot.meetings()) == count
    assert meeting["properties"]["hs_meeting_start_time"] == "2026-12-05T09:00:00.000Z"
    assert meeting["properties"]["hs_meeting_end_time"] == "2026-12-05T10:00:00.000Z"
    assert box.statuses()[event["id"]] == "done"
    box.rebooking = event


def test_a_replayed_booking_changes_nothing(box: Box) -> None:
    meetings, contacts, rows = box.meetings(), box.hubspot.contacts(), inbox.events(box.store.engine)

    status, reply = box.send(box.rebooking)  # the same delivery again: refused as a duplicate

    assert (status, reply["outcome"]) == (200, "duplicate")
    assert inbox.events(box.store.engine) == rows
    assert box.sensor_requests()[0] == []
    # The same booking under a new event id: its run sends no meeting (nor contact) write.
    again = {**box.rebooking, "id": f"{box.rebooking['id']}-redelivered"}
    assert box.send(again)[0] == 200
    writes = len(box.hubspot.requests("POST"))
    assert box.sync().success
    assert [r for r in box.hubspot.requests("POST")[writes:] if "/batch/read" not in r[1]] == []
    assert box.meetings() == meetings and box.hubspot.contacts() == contacts
    assert box.statuses()[again["id"]] == "done"


def test_a_booking_kept_waiting_by_an_earlier_version_is_synced_once(box: Box) -> None:
    event = box.booking("wade.waiting@example.org", "Wade Waiting")
    assert box.send(event)[0] == 200
    (row,) = [r for r in inbox.events(box.store.engine) if r["event_id"] == event["id"]]
    # What the version without appointment support did with a booking.
    assert inbox.mark(box.store.engine, [row["seq"]], inbox.WAITING_FOR_APPOINTMENTS, run_id="before") == 1

    result = box.sync()  # the sensor puts it back to pending first

    assert result.success, failure_messages(result)
    assert box.statuses()[event["id"]] == "done"
    assert len(box.meetings()[f"agentclara:{event['data']['id']}"]) == 1
    assert inbox.requeue(box.store.engine) == 0  # once: nothing is left waiting


def test_a_failed_run_leaves_its_events_pending_for_the_next_batch(box: Box) -> None:
    conversation_id, engagement_id = _synced_conversation(box)
    box.agentclara.add_message(conversation_id, "Still there?")
    first = box.agentclara.webhook_event("message.received", conversation_id)
    assert box.send(first)[0] == 200

    failed = box.sync(HUBSPOT_ACCESS_TOKEN="pat-na1-wrong-token")

    assert not failed.success
    assert box.statuses()[first["id"]] == "pending"
    box.agentclara.add_message(conversation_id, "Hello?")
    second = box.agentclara.webhook_event("message.received", conversation_id)
    assert box.send(second)[0] == 200
    (request,) = box.sensor_requests()[0]
    first_seq = [row["seq"] for row in inbox.events(box.store.engine) if row["event_id"] == first["id"]][0]
    assert request.run_config["ops"]["webhook_land"]["config"]["first_seq"] == first_seq

    assert box.run(request).success
    assert box.statuses()[first["id"]] == box.statuses()[second["id"]] == "done"
    (engagement,) = box.engagements()[f"agentclara:{conversation_id}"]
    assert engagement["id"] == engagement_id and "Hello?" in _body(engagement)


def test_a_dry_run_writes_nothing_to_the_crm_and_leaves_the_events_pending(box: Box) -> None:
    conversation_id, _ = _synced_conversation(box)
    box.agentclara.add_message(conversation_id, "Dry run, please")
    event = box.agentclara.webhook_event("message.received", conversation_id)
    booking = box.booking("dora.dry@example.org", "Dora Dry")
    assert box.send(event)[0] == 200 and box.send(booking)[0] == 200
    engagements, meetings, contacts = box.engagements(), box.meetings(), box.hubspot.contacts()

    result = box.sync(SYNC_DRY_RUN="1")

    assert result.success, failure_messages(result)
    assert box.engagements() == engagements
    assert box.meetings() == meetings and box.hubspot.contacts() == contacts
    assert box.statuses()[event["id"]] == box.statuses()[booking["id"]] == "pending"
    recorded = box.recorded(result)["hubspot_appointments"]  # the push ran, counting what it would create
    assert recorded["stats"]["dry_run"] is True and recorded["stats"]["created"] == 1


# ---------------------------------------------------------------- Salesforce as the target
@pytest.fixture(scope="module")
def sf_box(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Box]:
    """Salesforce only, no daily sync first: every booking is for someone the org has never seen."""
    sandbox = Box(tmp_path_factory.mktemp("webhook_sync_sf"), salesforce=True)
    with dg.instance_for_test() as instance:
        sandbox.instance = instance
        try:
            sandbox.receiver.start()
            yield sandbox
        finally:
            sandbox.stop()


def test_salesforce_a_booking_becomes_one_event_on_the_new_lead_updated_in_place(sf_box: Box) -> None:
    event = sf_box.booking("sal.force@example.org", "Sal Force", start="2026-12-04T15:00:00Z",
                           end="2026-12-04T15:45:00Z")
    assert sf_box.send(event)[0] == 200

    result = sf_box.sync()

    assert result.success, failure_messages(result)
    lead = sf_box.salesforce.find("Lead", "Email", "sal.force@example.org")
    (first,) = sf_box.salesforce.records("Event")
    assert first["WhoId"] == lead["Id"] and first["Subject"] == "Whitening"
    assert first["Agent_Appointment_Id__c"] == f"agentclara:{event['data']['id']}"
    assert (first["StartDateTime"], first["EndDateTime"]) == ("2026-12-04T15:00:00.000Z", "2026-12-04T15:45:00.000Z")
    assert sf_box.statuses()[event["id"]] == "done"

    assert sf_box.send(sf_box.rebooked(event, start="2026-12-05T09:00:00Z", end="2026-12-05T09:30:00Z"))[0] == 200
    assert sf_box.sync().success
    (moved,) = sf_box.salesforce.records("Event")
    assert moved["Id"] == first["Id"] and moved["StartDateTime"] == "2026-12-05T09:00:00.000Z"
    assert len(sf_box.salesforce.records("Lead")) == 1


def test_salesforce_without_the_event_key_field_fails_before_any_lead_is_written(sf_box: Box) -> None:
    sf_box.salesforce.drop_field("Event", "Agent_Appointment_Id__c")  # the module's last test
    leads = sf_box.salesforce.records("Lead")
    event = sf_box.booking("no.field@example.org", "Nofield Yet")
    assert sf_box.send(event)[0] == 200

    result = sf_box.sync()

    assert not result.success
    assert any("Event.Agent_Appointment_Id__c is missing" in m for m in failure_messages(result))
    assert sf_box.salesforce.records("Lead") == leads
    assert sf_box.statuses()[event["id"]] == "pending"
