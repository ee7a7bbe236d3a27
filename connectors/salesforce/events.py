"""How a booked appointment becomes a Salesforce Event: pure functions and constants, no I/O.

One Event per appointment, upserted by the Event external id field (default
`Agent_Appointment_Id__c` = "source:appointment id",
`schemas.appointment.appointment_key`), so the same appointment booked again
(a new time) updates its Event and never makes a second one. Like the Task
field, it is a custom field of the shared Activity object (Setup → Object
Manager → Activity), checked by the sink's prepare before anything is written.

| appointment | Event field     | notes |
|-------------|-----------------|-------|
| person      | WhoId           | the Lead/Contact id of the person |
| title       | Subject (255)   | "Appointment" when the booking has none |
| start_at    | StartDateTime   | UTC |
| end_at      | EndDateTime     | when the booking has none: DurationInMinutes = DEFAULT_LENGTH_MINUTES (Salesforce needs one of the two) |
| who, local time, conversation | Description (32,000) | `schemas.appointment.appointment_lines` |
"""

from __future__ import annotations

from typing import Any, Mapping

from connectors.limits import Cut, fit
from connectors.salesforce.mapping import MAX_LENGTH, MARKED_FIELDS, TRUNCATION_MARK, salesforce_datetime
from schemas.appointment import appointment_key, appointment_lines

OBJECT = "Event"
DEFAULT_APPOINTMENT_EXTERNAL_ID_FIELD = "Agent_Appointment_Id__c"
EVENT_FIELDS = ("WhoId", "Subject", "Description", "StartDateTime", "EndDateTime", "DurationInMinutes")
DEFAULT_TITLE = "Appointment"
DEFAULT_LENGTH_MINUTES = 30


def appointment_event(appointment: Mapping[str, Any], *, who_id: str | None) -> dict[str, Any]:
    """The Event of one canonical appointment, before field lengths (what the engine hashes)."""
    return {
        "appointment_key": appointment_key(appointment),
        "who_id": who_id,
        "subject": " ".join(str(appointment.get("title") or "").split()) or DEFAULT_TITLE,
        "description": "\n".join(appointment_lines(appointment)),
        "start": salesforce_datetime(appointment.get("start_at")),
        "end": salesforce_datetime(appointment.get("end_at")),
    }


def event_fields_and_cuts(event: Mapping[str, Any], *, key_field: str,
                          lengths: Mapping[str, int] = MAX_LENGTH) -> tuple[dict[str, Any], tuple[Cut, ...]]:
    """The Event record for sObject Collections, and the values cut to the org's field lengths.

    Raises ValueError for an event without a start (the normalizer
    quarantines such appointments; a stored one never lacks it).
    """
    if not event.get("start"):
        raise ValueError(f"appointment {event.get('appointment_key')} has no start time")
    texts, cuts = fit({"Subject": event.get("subject") or DEFAULT_TITLE, "Description": event.get("description")},
                      lambda name: lengths.get(name) or MAX_LENGTH[name], mark=TRUNCATION_MARK,
                      marked=MARKED_FIELDS)
    record: dict[str, Any] = {
        key_field: event["appointment_key"],
        "Subject": texts["Subject"],
        "Description": texts.get("Description") or None,
        "StartDateTime": event["start"],
        "EndDateTime": event.get("end") or None,
        "DurationInMinutes": None if event.get("end") else DEFAULT_LENGTH_MINUTES,
        "WhoId": event.get("who_id") or None,
    }
    return {name: value for name, value in record.items() if value is not None}, cuts
