"""How a booked appointment becomes a HubSpot meeting: pure functions and constants, no I/O.

A meeting is written like the other engagements (`engagements.py`: created
once, associated with its contact, updated in place by its stored id, found
again by its key after a lost answer), so it carries the same key property,
`agent_sync_activity_key`, here holding "source:appointment id"
(`schemas.appointment.appointment_key`).

| appointment           | meeting property        | notes |
|-----------------------|-------------------------|-------|
| title                 | hs_meeting_title        | "Appointment" when the booking has none |
| start_at              | hs_meeting_start_time, hs_timestamp | the guide: the two should match |
| end_at                | hs_meeting_end_time     | start + DEFAULT_LENGTH_MINUTES when the booking has no end |
| (booked)              | hs_meeting_outcome      | `SCHEDULED` (see OUTCOME_SCHEDULED) |
| who, local time, conversation | hs_meeting_body | `schemas.appointment.appointment_lines`, as HTML paragraphs |
| source:id             | agent_sync_activity_key | how a rerun finds what it created |

Association: meeting -> contact, HubSpot-defined type 200
(`hubspot.crm.association_type.AssociationType.MEETING_TO_CONTACT`).
"""

from __future__ import annotations

import html
from datetime import timedelta
from typing import Any, Mapping, Sequence

from connectors.hubspot import mapping
from connectors.hubspot.writes import Engagement
from connectors.limits import Cut, fit
from connectors.sink import SyncOutcome
from schemas.appointment import appointment_key, appointment_lines
from schemas.fields import parse_timestamp

OBJECT_TYPE = "meetings"
# The meetings guide lists the outcomes by label ("scheduled, completed,
# rescheduled, no show, and canceled"); the internal value is assumed here,
# in one place, and checked against the portal's options by the sink's prepare.
OUTCOME_PROPERTY = "hs_meeting_outcome"
OUTCOME_SCHEDULED = "SCHEDULED"
DEFAULT_TITLE = "Appointment"
DEFAULT_LENGTH_MINUTES = 30

# What prepare_appointments() makes sure exists on meetings.
MEETING_PROPERTIES: tuple[dict[str, Any], ...] = (
    {"name": mapping.ACTIVITY_KEY_PROPERTY, "label": "Agent sync appointment key", "type": "string",
     "field_type": "text", "group_name": mapping.GROUP_NAME, "has_unique_value": False,
     "description": "The booked appointment (source:id) this meeting was made from."},
)


def meeting_properties_and_cuts(appointment: Mapping[str, Any]) -> tuple[dict[str, str], tuple[Cut, ...]]:
    """The meeting properties of one canonical appointment, and the values cut to HubSpot's limit.

    Raises ValueError for an appointment without a start (the normalizer
    quarantines those; a stored record never lacks one).
    """
    start = parse_timestamp(appointment.get("start_at"))
    if start is None:
        raise ValueError("appointment has no start_at")
    end = parse_timestamp(appointment.get("end_at")) or start + timedelta(minutes=DEFAULT_LENGTH_MINUTES)
    body = "".join(f"<p>{html.escape(line)}</p>" for line in appointment_lines(appointment))
    when, until = str(mapping.hubspot_datetime(start)), str(mapping.hubspot_datetime(end))
    values = {
        "hs_timestamp": when,
        "hs_meeting_title": " ".join(str(appointment.get("title") or "").split()) or DEFAULT_TITLE,
        "hs_meeting_start_time": when,
        "hs_meeting_end_time": until,
        OUTCOME_PROPERTY: OUTCOME_SCHEDULED,
        "hs_meeting_body": body,
        mapping.ACTIVITY_KEY_PROPERTY: appointment_key(appointment),
    }
    fitted, cuts = fit(values, lambda _name: mapping.MAX_VALUE_LENGTH, exact=mapping.EXACT_PROPERTIES,
                       mark=mapping.TRUNCATION_MARK)  # the one cap rule of every HubSpot value
    return fitted, cuts  # type: ignore[return-value]


def meeting(appointment: Mapping[str, Any], contact_id: str | None) -> dict[str, Any]:
    """What HubSpot would receive for an appointment (the engine hashes it for diffing)."""
    return {"object": OBJECT_TYPE, "contact_id": contact_id,
            "properties": meeting_properties_and_cuts(appointment)[0]}


def meeting_items(appointments: Sequence[Mapping[str, Any]],
                  outcomes: dict[str, SyncOutcome]) -> list[Engagement]:
    """The meetings to write (one per appointment key, a later duplicate wins).

    Each input is a canonical appointment plus `contact_id` and, when known,
    `crm_id`; one that cannot be a meeting gets its outcome in `outcomes`.
    """
    items: dict[str, Engagement] = {}
    for appointment in appointments:
        key = appointment_key(appointment)
        if not appointment.get("contact_id"):
            outcomes[key] = SyncOutcome(key, False, error="no HubSpot contact id for this appointment",
                                        error_code="NO_CONTACT")
            continue
        try:
            props, cuts = meeting_properties_and_cuts(appointment)
        except ValueError as exc:
            outcomes[key] = SyncOutcome(key, False, error=str(exc), error_code="NO_TIMESTAMP", permanent=True)
            continue
        items.pop(key, None)
        items[key] = Engagement(key, OBJECT_TYPE, str(appointment["contact_id"]), props,
                                str(appointment["crm_id"]) if appointment.get("crm_id") else None, cuts)
    return list(items.values())


def outcome_problem(definition: Mapping[str, Any] | None) -> str | None:
    """Why the portal's `hs_meeting_outcome` cannot take OUTCOME_SCHEDULED, or None when it can."""
    if definition is None:
        return f"meetings have no {OUTCOME_PROPERTY} property"
    values = [str(option.get("value")) for option in definition.get("options") or [] if isinstance(option, dict)]
    if values and OUTCOME_SCHEDULED not in values:
        return (f"meetings' {OUTCOME_PROPERTY} has no option {OUTCOME_SCHEDULED} (its options: "
                f"{', '.join(values)}); set connectors.hubspot.meetings.OUTCOME_SCHEDULED to the scheduled one")
    return None
