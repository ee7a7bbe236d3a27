"""Booked appointments, from an `appointment.booked` payload to one meeting/Event in the CRM.

Round trip: payload -> raw records (`appointments`, `appointment_customers`)
-> canonical `appointment` v1 and the customer's contact -> persons -> the
contact push -> `push_appointments`, with the real hubspot-api-client and
simple-salesforce over real HTTP(S) to the HubSpot and Salesforce emulators.
Covers: a booking for someone the CRM has never seen creates the contact,
then one meeting/Event on it; the same appointment at a new time updates
that meeting/Event in place; a replay sends nothing; a lost create answer
is reconciled, not duplicated; Salesforce without the Event key field fails
at start with the set-up message and writes nothing. The normalizer and the
mappings are tested first, without a server (good, dirty and invalid
payloads, and a property test over arbitrary ones).
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any, Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from connectors.errors import ConfigError
from connectors.hubspot import HubSpotSink
from connectors.hubspot.meetings import meeting_properties_and_cuts, outcome_problem
from connectors.salesforce import RetryPolicy, SalesforceSettings, SalesforceSink, connect
from connectors.salesforce.events import appointment_event, event_fields_and_cuts
from pipelines.state import StateStore
from pipelines.steps.appointments import (
    OBJECT_TYPE,
    AppointmentStats,
    land_appointments,
    normalize_appointments,
    push_appointments,
)
from pipelines.steps.persons import rebuild_persons
from pipelines.steps.push import push_persons
from sandbox import tls
from sandbox.http import ServerThread
from sandbox.hubspot import DEFAULT_TOKEN, HubSpotApp
from sandbox.salesforce import SalesforceApp, serve
from schemas.appointment import KEYS, contact_from_appointment, normalize_appointment
from schemas.errors import REASONS, InvalidRecord

KEY = "agentclara:apt_1"


def booking(**overrides: Any) -> dict[str, Any]:
    """An `appointment.booked` data object as DESIGN.md assumes it."""
    base = {
        "id": "apt_1", "conversation_id": "conv_1", "customer_id": "cust_1", "customer_name": "Jane Roe",
        "customer_email": "jane.roe@example.com", "customer_phone": "+1 415 555 2671", "title": "Consultation",
        "start_time": "2026-12-01T10:00:00", "end_time": "2026-12-01T10:30:00", "timezone": "America/New_York",
    }
    base.update(overrides)
    return base


# ------------------------------------------------------------------ normalizer
def test_a_clean_booking_becomes_an_appointment_in_utc():
    record = normalize_appointment(booking())
    assert tuple(record) == KEYS
    assert record["schema"] == "appointment" and record["version"] == 1
    assert record["source_id"] == "apt_1" and record["contact_source_id"] == "cust_1"
    assert record["email"] == "jane.roe@example.com" and record["phone"] == "+14155552671"
    # A wall-clock time without offset is read in the booking's time zone (EST in December).
    assert record["start_at"] == "2026-12-01T15:00:00+00:00" and record["end_at"] == "2026-12-01T15:30:00+00:00"
    assert record["timezone"] == "America/New_York" and record["warnings"] == []


def test_a_dirty_booking_is_cleaned_and_noted():
    record = normalize_appointment(booking(
        customer_email="  Jane.ROE@Example.COM ", customer_phone="555-CALL-NOW", customer_name="ROE, JANE",
        title="Consult\x1b[31mation\x00 ", start_time="2026-12-01T10:00:00+01:00", end_time=None,
        timezone="Mars/Olympus", surprise={"extra": True}))
    assert record["email"] == "jane.roe@example.com" and record["phone"] is None
    assert record["customer_name"] == "Jane Roe" and record["title"] == "Consultation"
    assert record["start_at"] == "2026-12-01T09:00:00+00:00" and record["end_at"] is None
    assert record["timezone"] is None
    assert {"invalid_phone", "cleaned:title", "unknown_timezone", "no_end_time"} <= set(record["warnings"])


def test_a_booking_named_only_by_its_customer_id_is_kept():
    record = normalize_appointment(booking(customer_email=None, customer_phone="n/a"))
    assert record["contact_source_id"] == "cust_1" and record["email"] is None


@pytest.mark.parametrize("payload, reason", [
    (["not", "an", "object"], "malformed_payload"),
    (booking(id=None), "missing_id"),
    (booking(id=True), "missing_id"),
    (booking(id=1.5), "invalid_id"),
    (booking(start_time=None), "no_timestamp"),
    (booking(start_time="next tuesday-ish"), "bad_timestamp"),
    (booking(end_time="soon"), "bad_timestamp"),
    (booking(end_time="2026-12-01T09:59:00"), "end_before_start"),
    (booking(customer_id=None, customer_email="nobody", customer_phone="12"), "no_valid_email_or_phone"),
])
def test_an_invalid_booking_is_quarantined_with_its_reason(payload, reason):
    with pytest.raises(InvalidRecord) as caught:
        normalize_appointment(payload)
    assert caught.value.reason == reason


def test_the_customer_of_a_booking_is_a_contact_even_without_a_customer_id():
    contact = contact_from_appointment(booking(customer_id=None))
    assert contact["source_id"] == "apt_1" and contact["email"] == "jane.roe@example.com"
    assert (contact["first_name"], contact["last_name"]) == ("Jane", "Roe")
    with pytest.raises(InvalidRecord) as caught:
        contact_from_appointment(booking(customer_email=None, customer_phone=None))
    assert caught.value.reason == "no_valid_email_or_phone"


_ANYTHING = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True), st.text(max_size=30),
                      st.lists(st.integers(), max_size=2), st.dictionaries(st.text(max_size=3), st.integers(),
                                                                           max_size=2))
_BOOKABLE = {"min_value": datetime(1970, 1, 1), "max_value": datetime(2100, 1, 1)}
_TIMES = st.one_of(_ANYTHING, st.datetimes(**_BOOKABLE).map(lambda d: d.isoformat()),
                   st.datetimes(**_BOOKABLE, timezones=st.just(timezone.utc)).map(lambda d: d.isoformat()))


@settings(max_examples=300, deadline=None)
@given(st.fixed_dictionaries({}, optional={
    "id": st.one_of(_ANYTHING, st.just("apt_9")), "customer_id": _ANYTHING, "customer_email": _ANYTHING,
    "customer_phone": _ANYTHING, "customer_name": _ANYTHING, "title": _ANYTHING, "start_time": _TIMES,
    "end_time": _TIMES, "timezone": st.one_of(_ANYTHING, st.sampled_from(["Europe/Paris", "UTC", "Asia/Tokyo"])),
}))
def test_any_payload_is_an_appointment_or_a_quarantine_reason(payload):
    try:
        record = normalize_appointment(payload)
    except InvalidRecord as exc:
        assert exc.reason in REASONS
        return
    assert tuple(record) == KEYS
    start = datetime.fromisoformat(record["start_at"])
    assert start.utcoffset() is not None and start.utcoffset().total_seconds() == 0
    if record["end_at"] is not None:
        assert datetime.fromisoformat(record["end_at"]) >= start
    assert record["email"] or record["phone"] or record["contact_source_id"]
    assert all(isinstance(text, str) and "\x1b" not in text and "\x00" not in text
               for text in (record["title"], record["customer_name"]) if text is not None)
    # Whatever was booked maps to a meeting and an Event the CRMs accept: a start, an end not before it.
    props, _ = meeting_properties_and_cuts(record)
    assert props["hs_timestamp"] == props["hs_meeting_start_time"] and props["hs_meeting_end_time"]
    fields, _ = event_fields_and_cuts(appointment_event(record, who_id="00Q1"), key_field="Agent_Appointment_Id__c")
    assert fields["StartDateTime"] and ("EndDateTime" in fields) != ("DurationInMinutes" in fields)
    assert 0 < len(fields["Subject"]) <= 255


# --------------------------------------------------------------------- mapping
def test_a_meeting_is_scheduled_at_the_start_and_gets_a_default_end():
    props, _ = meeting_properties_and_cuts(normalize_appointment(booking(end_time=None, title=None)))
    assert props["hs_timestamp"] == props["hs_meeting_start_time"] == "2026-12-01T15:00:00.000Z"
    assert props["hs_meeting_end_time"] == "2026-12-01T15:30:00.000Z"
    assert props["hs_meeting_outcome"] == "SCHEDULED" and props["hs_meeting_title"] == "Appointment"
    assert props["agent_sync_activity_key"] == KEY


def test_a_portal_whose_meeting_outcomes_lack_scheduled_is_named_at_start():
    definition = {"name": "hs_meeting_outcome", "options": [{"label": "Booked", "value": "BOOKED"}]}
    assert "BOOKED" in outcome_problem(definition) and "SCHEDULED" in outcome_problem(definition)
    assert outcome_problem({"options": [{"label": "Scheduled", "value": "SCHEDULED"}]}) is None
    assert outcome_problem(None) is not None


def test_an_event_without_an_end_gets_a_duration():
    appointment = normalize_appointment(booking(end_time=None))
    fields, _ = event_fields_and_cuts(appointment_event(appointment, who_id="00Q1"),
                                      key_field="Agent_Appointment_Id__c")
    assert fields["StartDateTime"] == "2026-12-01T15:00:00.000Z" and fields["DurationInMinutes"] == 30
    assert "EndDateTime" not in fields and fields["WhoId"] == "00Q1"
    assert fields["Agent_Appointment_Id__c"] == KEY


# ---------------------------------------------------------------- the round trip
def sync(store: StateStore, sink: Any, *payloads: dict[str, Any]) -> AppointmentStats:
    """What webhook_sync does with appointment payloads: land, normalize, persons, contacts, appointments."""
    land_appointments(store, payloads)
    normalize_appointments(store)
    rebuild_persons(store)
    push_persons(store, sink)
    return push_appointments(store, sink)


@pytest.fixture
def store(store_url: str) -> StateStore:
    """A state store on SQLite, then on PostgreSQL (tests/conftest.py)."""
    return StateStore(store_url)


@pytest.fixture
def hubspot() -> Iterator[tuple[HubSpotApp, HubSpotSink, str]]:
    """A fresh HubSpot emulator on loopback, a sink on it, and its URL."""
    app = HubSpotApp(retry_after_s=0)
    with ServerThread(app) as running:
        yield app, HubSpotSink(DEFAULT_TOKEN, running.url, backoff_factor=0.001), running.url


def meeting_writes(app: HubSpotApp) -> list[tuple[str, str, int]]:
    return [r for r in app.requests("POST", "/crm/v3/objects/meetings/batch/") if not r[1].endswith("/read")]


def test_hubspot_booking_for_a_new_person_creates_the_contact_then_one_meeting_on_it(store, hubspot):
    app, sink, _url = hubspot
    stats = sync(store, sink, booking())

    assert (stats.created, stats.failed) == (1, 0)
    contact = app.find("contacts", email="jane.roe@example.com")
    assert contact is not None and contact["properties"]["firstname"] == "Jane"
    (meeting,) = app.meetings()
    props = meeting["properties"]
    assert props["hs_meeting_title"] == "Consultation" and props["hs_meeting_outcome"] == "SCHEDULED"
    assert props["hs_timestamp"] == props["hs_meeting_start_time"] == "2026-12-01T15:00:00.000Z"
    assert props["hs_meeting_end_time"] == "2026-12-01T15:30:00.000Z"
    assert "Local time: 2026-12-01 10:00-10:30 (America/New_York)" in props["hs_meeting_body"]
    assert app.associated("meetings", meeting["id"], "contacts") == [contact["id"]]
    log = [path for _method, path, _status in app.requests("POST")]
    assert log.index("/crm/v3/objects/contacts/batch/upsert") < log.index("/crm/v3/objects/meetings/batch/create")
    assert store.sync_rows("hubspot", OBJECT_TYPE, [KEY])[KEY].crm_id == meeting["id"]


def test_hubspot_same_appointment_at_a_new_time_updates_the_same_meeting(store, hubspot):
    app, sink, _url = hubspot
    sync(store, sink, booking())
    (first,) = app.meetings()
    before = len(app.request_log)

    stats = sync(store, sink, booking(start_time="2026-12-02T09:00:00", end_time="2026-12-02T10:00:00"))

    assert (stats.created, stats.updated) == (0, 1)
    # Written by its stored id: no search for it among the contact's meetings was needed.
    assert [r for r in list(app.request_log)[before:] if "associations" in r[1] or "/batch/read" in r[1]] == []
    (meeting,) = app.meetings()
    assert meeting["id"] == first["id"]
    assert meeting["properties"]["hs_meeting_start_time"] == "2026-12-02T14:00:00.000Z"
    assert meeting["properties"]["hs_meeting_end_time"] == "2026-12-02T15:00:00.000Z"
    assert [path for _m, path, _s in meeting_writes(app)] == [
        "/crm/v3/objects/meetings/batch/create", "/crm/v3/objects/meetings/batch/update"]


def test_hubspot_replayed_booking_sends_nothing(store, hubspot):
    app, sink, _url = hubspot
    sync(store, sink, booking())
    before = len(app.requests("POST"))

    stats = sync(store, sink, booking())

    assert (stats.unchanged, stats.created, stats.updated) == (1, 0, 0)
    assert [r for r in app.requests("POST")[before:] if "/batch/read" not in r[1]] == []
    assert len(app.meetings()) == 1


def test_hubspot_lost_create_answer_is_reconciled_not_duplicated(store, hubspot):
    app, sink, _url = hubspot
    land_appointments(store, [booking()])
    normalize_appointments(store)
    rebuild_persons(store)
    push_persons(store, sink)
    app.fail_after_create_next = 1  # the meeting is created, then the answer is a 502

    stats = push_appointments(store, sink)

    assert len(app.meetings()) == 1 and stats.failed == 0
    assert store.sync_rows("hubspot", OBJECT_TYPE, [KEY])[KEY].crm_id == app.meetings()[0]["id"]


def test_hubspot_appointment_waits_until_its_contact_is_in_the_crm(store, hubspot):
    app, sink, _url = hubspot
    land_appointments(store, [booking()])
    normalize_appointments(store)
    rebuild_persons(store)

    early = push_appointments(store, sink)  # before the contact push: nothing to hang it on yet
    assert early.waiting_for_contact == 1 and app.meetings() == [] and meeting_writes(app) == []
    push_persons(store, sink)
    assert push_appointments(store, sink).created == 1 and len(app.meetings()) == 1


def test_hubspot_dry_run_counts_the_meeting_and_writes_nothing(store, hubspot):
    app, _sink, url = hubspot
    dry = HubSpotSink(DEFAULT_TOKEN, url)  # built for real writes: the dry run is the step's alone
    land_appointments(store, [booking()])
    normalize_appointments(store)
    rebuild_persons(store)
    push_persons(store, dry, dry_run=True)
    stats = push_appointments(store, dry, dry_run=True)
    assert stats.created == 1 and stats.as_metadata()["would be created"] == 1
    assert app.meetings() == [] and app.contacts() == [] and app.requests("POST") == []


def test_hubspot_booking_of_an_unknown_customer_waits_for_its_person(store, hubspot):
    app, sink, _url = hubspot
    stats = sync(store, sink, booking(customer_email=None, customer_phone=None))
    assert stats.unlinked == 1 and app.meetings() == [] and app.contacts() == []


def test_hubspot_emulator_refuses_a_meeting_outcome_it_does_not_know(hubspot):
    app, sink, _url = hubspot
    contact_id = app.seed_contact({"email": "a@example.com"})
    body = {"inputs": [{"properties": {"hs_meeting_start_time": "2026-12-01T15:00:00Z",
                                       "hs_meeting_outcome": "BOOKED"},
                        "associations": [{"to": {"id": contact_id}, "types": [
                            {"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 200}]}]}]}
    transport = sink._transport
    reply = transport.call(transport.engagements["meetings"][1].create_with_http_info, body)
    assert reply.status == 400 and "allowed options" in reply.message
    body["inputs"][0]["properties"]["hs_meeting_outcome"] = "SCHEDULED"
    reply = transport.call(transport.engagements["meetings"][1].create_with_http_info, body)
    assert reply.status == 201  # hs_timestamp defaulted to the start time, as HubSpot's guide says
    assert app.meetings()[0]["properties"]["hs_timestamp"] == "2026-12-01T15:00:00Z"


@pytest.fixture(scope="module")
def salesforce_server() -> Iterator[Any]:
    thread = serve(SalesforceApp())
    yield thread
    thread.stop()


@pytest.fixture
def salesforce(salesforce_server: Any) -> tuple[SalesforceApp, SalesforceSettings]:
    app: SalesforceApp = salesforce_server.app
    app.reset()
    return app, SalesforceSettings(instance_url=salesforce_server.url, access_token=app.access_token,
                                   ca_bundle=tls.ca_path())


def sf_sink(settings: SalesforceSettings) -> SalesforceSink:
    return SalesforceSink(settings, appointments=True, retry=RetryPolicy(attempts=2, base_s=0))


def sf_writes(app: SalesforceApp) -> list[tuple[str, str, int]]:
    return [entry for entry in app.request_log if entry[0] in ("PATCH", "PUT", "POST")]


def test_salesforce_booking_for_a_new_person_creates_the_lead_then_one_event_on_it(store, salesforce):
    app, settings = salesforce
    stats = sync(store, sf_sink(settings), booking())

    assert (stats.created, stats.failed) == (1, 0)
    lead = app.find("Lead", "Email", "jane.roe@example.com")
    (event,) = app.records("Event")
    assert event["WhoId"] == lead["Id"] and event["Subject"] == "Consultation"
    assert event["StartDateTime"] == "2026-12-01T15:00:00.000Z" and event["EndDateTime"] == "2026-12-01T15:30:00.000Z"
    assert event["Agent_Appointment_Id__c"] == KEY and "Jane Roe" in event["Description"]
    paths = [path for _method, path, _status in sf_writes(app)]
    assert paths[0].endswith("/composite/sobjects/Lead/Agent_Contact_Id__c")
    assert paths[1].endswith("/composite/sobjects/Event/Agent_Appointment_Id__c")


def test_salesforce_same_appointment_at_a_new_time_updates_the_same_event(store, salesforce):
    app, settings = salesforce
    sync(store, sf_sink(settings), booking())
    (first,) = app.records("Event")

    stats = sync(store, sf_sink(settings), booking(start_time="2026-12-02T09:00:00", end_time="2026-12-02T10:00:00"))

    assert (stats.created, stats.updated) == (0, 1)
    (event,) = app.records("Event")
    assert event["Id"] == first["Id"]
    assert event["StartDateTime"] == "2026-12-02T14:00:00.000Z" and event["DurationInMinutes"] == 60
    assert app.upsert_count("Event", KEY) == 2


def test_salesforce_replayed_booking_sends_nothing(store, salesforce):
    app, settings = salesforce
    sync(store, sf_sink(settings), booking())
    before = len(sf_writes(app))

    stats = sync(store, sf_sink(settings), booking())

    assert (stats.unchanged, stats.created, stats.updated) == (1, 0, 0)
    assert sf_writes(app)[before:] == [] and len(app.records("Event")) == 1


def test_salesforce_without_the_event_key_field_fails_at_start_and_writes_nothing(store, salesforce):
    app, settings = salesforce
    app.drop_field("Event", "Agent_Appointment_Id__c")
    land_appointments(store, [booking()])
    normalize_appointments(store)
    rebuild_persons(store)

    with pytest.raises(ConfigError) as caught:
        push_persons(store, sf_sink(settings))
    message = str(caught.value)
    assert "Event.Agent_Appointment_Id__c is missing" in message
    assert "Object Manager → Activity → Fields & Relationships" in message and "'External ID'" in message
    with pytest.raises(ConfigError):
        push_appointments(store, sf_sink(settings))
    assert sf_writes(app) == [] and app.records("Lead") == [] and app.records("Event") == []


def test_salesforce_emulator_needs_an_event_length_and_keeps_it_consistent(salesforce):
    app, settings = salesforce
    sf = connect(settings)  # the real client, the sandbox CA pinned
    path = "composite/sobjects/Event/Agent_Appointment_Id__c"
    record = {"attributes": {"type": "Event"}, "Agent_Appointment_Id__c": "k1", "Subject": "x",
              "StartDateTime": "2026-12-01T15:00:00.000Z"}
    (result,) = sf.restful(path, method="PATCH", json={"allOrNone": False, "records": [record]})
    assert result["errors"][0]["statusCode"] == "REQUIRED_FIELD_MISSING"
    record["EndDateTime"] = "2026-12-01T14:00:00.000Z"
    (result,) = sf.restful(path, method="PATCH", json={"allOrNone": False, "records": [record]})
    assert result["errors"][0]["statusCode"] == "FIELD_INTEGRITY_EXCEPTION"
    record.pop("EndDateTime")
    record["DurationInMinutes"] = 45
    (result,) = sf.restful(path, method="PATCH", json={"allOrNone": False, "records": [record]})
    assert result["success"] and app.find("Event", "Agent_Appointment_Id__c", "k1")["EndDateTime"].startswith(
        "2026-12-01T15:45")
    # A custom Activity field is on Task too (one Activity object in Setup).
    assert app.find("Task", "Agent_Appointment_Id__c", "k1") is None
    assert "Agent_Appointment_Id__c" in {f["name"] for f in app.schema["Task"]}

