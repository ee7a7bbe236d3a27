"""The canonical appointment: schema "appointment", version 1.

An AgentClara agent books an appointment (`appointment.booked`); it becomes a
HubSpot meeting or a Salesforce Event on the person's contact. As a plain
JSON dict:

    {"schema": "appointment", "version": 1, "source": "agentclara", "source_id": "apt_abc123",
     "conversation_id": "conv_abc123", "contact_source_id": "cust_xyz789",
     "email": "john@example.com", "phone": "+14155552671", "customer_name": "John Smith",
     "title": "Consultation", "start_at": "2026-12-01T15:00:00+00:00",
     "end_at": "2026-12-01T15:30:00+00:00", "timezone": "America/New_York", "warnings": []}

The payload is an assumption (DESIGN.md, "Near-real-time: AgentClara
webhooks"; the docs give none), kept here in one place: `{"id": "apt_...",
"conversation_id", "customer_id", "customer_name", "customer_email",
"customer_phone", "title", "start_time", "end_time", "timezone"}`; unknown
extra fields are ignored.

- contact_source_id: `customer_id`, the id `GET /contacts` uses, which links
  the appointment to that contact record (as a conversation is linked);
  email/phone are person hints, normalized like a contact's.
- times: ISO-8601 UTC. A time written with an offset keeps its offset; one
  written without (`2026-12-01T10:00:00`) is read in `timezone` when that is
  an IANA zone, else as UTC (the rule of `fields.parse_timestamp`).
- timezone: the IANA name as given, or null (missing, or unknown with the
  warning "unknown_timezone"). It says how the customer sees the time; the
  stored times are UTC either way.
- end_at may be null (warning "no_end_time"): the CRM mappings then give the
  meeting a documented default length.
- title, customer_name: one line (`_common.prepare`), or null.

Quarantined (InvalidRecord): not an object (`malformed_payload`), no usable
id (`missing_id`, `invalid_id`), no start time (`no_timestamp`), a start or
end time that cannot be read (`bad_timestamp`), an end before the start
(`end_before_start`), and nothing that names its person: no customer_id and
neither a valid email nor a valid phone (`no_valid_email_or_phone`).

`contact_from_appointment` gives the booking's customer as a canonical
contact, so a person nobody has seen yet exists (and is pushed to the CRM)
before their appointment is.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from schemas._common import (
    field_id,
    optional_field_id,
    prepare,
    read_email,
    read_phone,
    require_email_or_phone,
    require_mapping,
    text_or_none,
)
from schemas.contact import Contact
from schemas.errors import BAD_TIMESTAMP, END_BEFORE_START, NO_TIMESTAMP, NO_VALID_EMAIL_OR_PHONE, InvalidRecord
from schemas.fields import parse_name, parse_timestamp, to_iso
from schemas.keys import activity_key, record_activity_key
from schemas.registry import current_version

SCHEMA = "appointment"
SOURCE = "agentclara"

KEYS = (
    "schema", "version", "source", "source_id", "conversation_id", "contact_source_id", "email", "phone",
    "customer_name", "title", "start_at", "end_at", "timezone", "warnings",
)
UNKNOWN_TIMEZONE = "unknown_timezone"
NO_END_TIME = "no_end_time"


@dataclass(frozen=True)
class Appointment:
    """A canonical appointment; `to_dict()` gives the stored/passed JSON form."""

    source: str
    source_id: str
    conversation_id: str | None
    contact_source_id: str | None
    email: str | None
    phone: str | None
    customer_name: str | None
    title: str | None
    start_at: datetime
    end_at: datetime | None
    timezone: str | None
    warnings: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema": SCHEMA,
            "version": current_version(SCHEMA),
            "source": self.source,
            "source_id": self.source_id,
            "conversation_id": self.conversation_id,
            "contact_source_id": self.contact_source_id,
            "email": self.email,
            "phone": self.phone,
            "customer_name": self.customer_name,
            "title": self.title,
            "start_at": to_iso(self.start_at),
            "end_at": to_iso(self.end_at),
            "timezone": self.timezone,
            "warnings": list(dict.fromkeys(self.warnings)),
        }


def read_zone(value: Any, warnings: list[str]) -> ZoneInfo | None:
    """The IANA zone named by `value`, or None (+ "unknown_timezone" when it names none)."""
    name = text_or_none(value)
    if name is None:
        return None
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        warnings.append(UNKNOWN_TIMEZONE)
        return None


def read_local_time(value: Any, zone: ZoneInfo | None, what: str) -> datetime | None:
    """UTC time of `value`; a wall-clock time without offset is read in `zone` (rule in the module doc).

    Raises InvalidRecord(bad_timestamp) naming `what`: an appointment at an
    unknown time cannot be put in anyone's calendar.
    """
    if isinstance(value, str) and zone is not None:
        try:
            moment = datetime.fromisoformat(value.strip())
        except ValueError:
            moment = None
        if moment is not None and moment.tzinfo is None:
            return moment.replace(tzinfo=zone).astimezone(timezone.utc)
    try:
        return parse_timestamp(value)
    except InvalidRecord as exc:
        raise InvalidRecord(BAD_TIMESTAMP, f"{what}: {exc.detail}") from None


def normalize_appointment(raw: Mapping[str, Any], *, region: str = "US") -> dict[str, Any]:
    """Canonical appointment dict from an AgentClara `appointment.booked` payload (its `data`)."""
    record = require_mapping(raw, "AgentClara appointment")
    source_id = field_id(record, "id", "AgentClara appointment")
    what = f"AgentClara appointment {source_id}"
    contact_source_id = optional_field_id(record, "customer_id")
    conversation_id = optional_field_id(record, "conversation_id")
    record, warnings = prepare(record, "AgentClara appointment")
    email = read_email(record.get("customer_email"), warnings)
    phone = read_phone(record.get("customer_phone"), region, warnings)
    if contact_source_id is None and email is None and phone is None:
        raise InvalidRecord(NO_VALID_EMAIL_OR_PHONE, f"{what} has no customer_id and no valid email or phone")
    zone = read_zone(record.get("timezone"), warnings)
    start = read_local_time(record.get("start_time"), zone, f"{what} start_time")
    if start is None:
        raise InvalidRecord(NO_TIMESTAMP, f"{what} has no start_time")
    end = read_local_time(record.get("end_time"), zone, f"{what} end_time")
    if end is None:
        warnings.append(NO_END_TIME)
    elif end < start:
        raise InvalidRecord(END_BEFORE_START, f"{what} ends ({to_iso(end)}) before it starts ({to_iso(start)})")
    return Appointment(
        source=SOURCE, source_id=source_id, conversation_id=conversation_id, contact_source_id=contact_source_id,
        email=email, phone=phone, customer_name=parse_name(record.get("customer_name")).full,
        title=text_or_none(record.get("title")), start_at=start, end_at=end,
        timezone=zone.key if zone is not None else None, warnings=tuple(warnings),
    ).to_dict()


def contact_from_appointment(raw: Mapping[str, Any], *, region: str = "US") -> dict[str, Any]:
    """The booking's customer as a canonical contact (the person an appointment hangs off).

    source_id is `customer_id` (the id `GET /contacts` uses, so both describe
    one source record), else the appointment's own id: a booking by someone
    AgentClara has no contact for still makes them a person. Quarantined
    without a valid email or phone, as every contact is.
    """
    record = require_mapping(raw, "AgentClara appointment")
    appointment_id = field_id(record, "id", "AgentClara appointment")
    source_id = optional_field_id(record, "customer_id") or appointment_id
    record, warnings = prepare(record, "AgentClara appointment")
    email = read_email(record.get("customer_email"), warnings)
    phone = read_phone(record.get("customer_phone"), region, warnings)
    require_email_or_phone(email, phone, f"AgentClara appointment {appointment_id}", warnings)
    name = parse_name(record.get("customer_name"))
    return Contact(
        source=SOURCE, source_id=source_id, email=email, phone=phone, first_name=name.first,
        last_name=name.last, full_name=name.full, warnings=tuple(warnings),
    ).to_dict()


def appointment_key(appointment: Mapping[str, Any]) -> str:
    """"source:appointment id": the appointment's key in every CRM and in sync_state (schemas.keys)."""
    return record_activity_key(appointment)


def appointment_day(appointment: Mapping[str, Any]) -> str | None:
    """The UTC day (YYYY-MM-DD) the appointment starts on."""
    moment = parse_timestamp(appointment.get("start_at"))
    return moment.date().isoformat() if moment else None


def appointment_lines(appointment: Mapping[str, Any]) -> list[str]:
    """A readable description for the CRM: who booked what, when in their time zone, from which conversation."""
    lines = [f"Booked by an AI agent ({appointment.get('source')})"]
    start, end = parse_timestamp(appointment.get("start_at")), parse_timestamp(appointment.get("end_at"))
    zone = read_zone(appointment.get("timezone"), [])  # None too where this machine lacks the zone
    if start is not None and zone is not None:
        zone_name = zone.key
        local = start.astimezone(zone).strftime("%Y-%m-%d %H:%M")
        until = f"-{end.astimezone(zone).strftime('%H:%M')}" if end is not None else ""
        lines.append(f"Local time: {local}{until} ({zone_name})")
    if appointment.get("customer_name"):
        lines.append(f"Customer: {appointment['customer_name']}")
    if appointment.get("conversation_id"):
        lines.append(f"Conversation: {activity_key(appointment['source'], appointment['conversation_id'])}")
    return lines
