"""How a person becomes a Salesforce Lead or Contact, and a conversation a Task.

Pure functions and constants, no I/O: the sink (`connectors/salesforce.py`)
checks the org against `fields_needed()` and sends what `properties()` gives.

Field mapping (person dict -> Salesforce field):

| person          | Lead            | Contact         |
|-----------------|-----------------|-----------------|
| first_name      | FirstName (40)  | FirstName (40)  |
| last_name       | LastName (80)   | LastName (80)   |
| email           | Email           | Email           |
| phone (E.164)   | Phone           | Phone           |
| company         | Company (255)   | (not mapped: Contacts hang off Accounts) |
| source_ids keys | `sources_field` if configured, e.g. Agent_Sources__c = "agentclara;clairo" |
| person_key      | the external id field (default Agent_Contact_Id__c) |

Placeholders (configurable) fill the fields Salesforce requires when the
source lacks them: Lead `LastName` and `Company`, Contact `LastName`, each
`"[not provided]"` by default. When `last_name` is missing, it is taken from
`full_name` first (the words after `first_name`, or the whole name), so the
placeholder is the last resort. Empty values are left out of the payload, so
an upsert never blanks a field a sales rep filled in. Strings longer than
the standard field lengths are cut to fit.

Optional conversation roll-ups (never required: written only when the
org's describe shows the field, createable and updateable; add them in
Setup -> Object Manager -> Lead/Contact -> Fields & Relationships -> New):

| person             | field (ROLLUP_FIELDS)           | type |
|--------------------|---------------------------------|------|
| last_seen_at       | Agent_Last_Conversation_At__c   | Date/Time |
| conversation_count | Agent_Conversation_Count__c     | Number(18, 0) (left out at 0) |
| channels           | Agent_Channels__c               | Text(255), ";"-separated |

A conversation becomes a Task (`conversation_task`): WhoId = the person's
Lead/Contact id, Subject, Description = the transcript, ActivityDate = the
day it started, Status Completed, keyed by the Task external id field
(default Agent_Conversation_Id__c = "source:conversation id").
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from typing import Any, Mapping

from schemas.conversation import transcript_lines

SUPPORTED_OBJECTS = ("Lead", "Contact")
DEFAULT_EXTERNAL_ID_FIELD = "Agent_Contact_Id__c"
DEFAULT_TASK_EXTERNAL_ID_FIELD = "Agent_Conversation_Id__c"
PLACEHOLDER = "[not provided]"
DEFAULT_PLACEHOLDERS: Mapping[str, Mapping[str, str]] = {
    "Lead": {"LastName": PLACEHOLDER, "Company": PLACEHOLDER},
    "Contact": {"LastName": PLACEHOLDER},
}
REQUIRED_FIELDS: Mapping[str, tuple[str, ...]] = {
    "Lead": ("LastName", "Company"),
    "Contact": ("LastName",),
}
STANDARD_FIELDS: Mapping[str, tuple[str, ...]] = {
    "Lead": ("FirstName", "LastName", "Email", "Phone", "Company"),
    "Contact": ("FirstName", "LastName", "Email", "Phone"),
}
TASK_FIELDS = ("WhoId", "Subject", "Description", "ActivityDate", "Status")
# person field -> optional Lead/Contact field holding its conversation roll-up.
ROLLUP_FIELDS: Mapping[str, str] = {
    "last_seen_at": "Agent_Last_Conversation_At__c",
    "conversation_count": "Agent_Conversation_Count__c",
    "channels": "Agent_Channels__c",
}
# Standard field lengths (identical in every org); custom Text fields are 255.
MAX_LENGTH = {"FirstName": 40, "LastName": 80, "Company": 255, "Subject": 255, "Description": 32000}
EXTERNAL_ID_MAX_LENGTH = 255
TRUNCATION_MARK = " [truncated]"


def _text(value: Any) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    return text or None


def _fit(value: str, length: int) -> str:
    return value if len(value) <= length else value[:length]


def split_name(person: Mapping[str, Any]) -> tuple[str | None, str | None]:
    """(first, last): last_name, else the rest of full_name after first_name, else full_name."""
    first, last, full = _text(person.get("first_name")), _text(person.get("last_name")), _text(
        person.get("full_name")
    )
    if last or not full:
        return first, last
    words = full.split()
    if first:
        if len(words) > 1 and words[0].lower() == first.lower():
            return first, " ".join(words[1:])
        return first, None if full.lower() == first.lower() else full
    if len(words) > 1:
        return words[0], " ".join(words[1:])
    return None, full


def external_id_problem(key: Any) -> str | None:
    """Why a person key cannot be an external id value, or None when it can."""
    if not isinstance(key, str) or not key.strip():
        return "person_key is empty"
    if len(key) > EXTERNAL_ID_MAX_LENGTH:
        return f"person_key is {len(key)} characters; a Text external id holds at most {EXTERNAL_ID_MAX_LENGTH}"
    if any(ord(ch) < 32 for ch in key):
        return "person_key contains control characters"
    return None


@dataclass(frozen=True)
class FieldMapping:
    """The person -> record mapping for one object and key field."""

    object_name: str = "Lead"
    external_id_field: str = DEFAULT_EXTERNAL_ID_FIELD
    placeholders: Mapping[str, str] = field(default_factory=dict)
    sources_field: str | None = None
    # The ROLLUP_FIELDS the org has (the sink finds them in the describe).
    rollup_fields: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        merged = dict(DEFAULT_PLACEHOLDERS.get(self.object_name, {}))
        merged.update(self.placeholders or {})
        object.__setattr__(self, "placeholders", merged)

    def fields_needed(self) -> tuple[str, ...]:
        """Every field the payload can carry, external id included."""
        needed = list(STANDARD_FIELDS[self.object_name])
        if self.sources_field:
            needed.append(self.sources_field)
        needed.append(self.external_id_field)
        return tuple(needed)

    def properties(self, person: Mapping[str, Any]) -> dict[str, Any]:
        """The fields written for one person (external id included, empties left out)."""
        first, last = split_name(person)
        values: dict[str, Any] = {
            "FirstName": first,
            "LastName": last,
            "Email": _text(person.get("email")),
            "Phone": _text(person.get("phone")),
        }
        if self.object_name == "Lead":
            values["Company"] = _text(person.get("company"))
        for name in REQUIRED_FIELDS[self.object_name]:
            if not values.get(name):
                values[name] = self.placeholders.get(name, PLACEHOLDER)
        if self.sources_field:
            sources = sorted((person.get("source_ids") or {}).keys())
            values[self.sources_field] = _fit(";".join(sources), 255) if sources else None
        for key, name in ROLLUP_FIELDS.items():
            if name in self.rollup_fields:
                values[name] = _rollup_value(key, person.get(key))
        out = {
            name: (_fit(value, MAX_LENGTH[name]) if name in MAX_LENGTH and isinstance(value, str) else value)
            for name, value in values.items()
            if value is not None
        }
        out[self.external_id_field] = person["person_key"]
        return out


def _rollup_value(key: str, value: Any) -> Any:
    if key == "last_seen_at":
        return salesforce_datetime(value)
    if key == "conversation_count":
        return int(value) if value else None
    channels = sorted({str(c) for c in value or [] if c})
    return _fit(";".join(channels), 255) if channels else None


def salesforce_datetime(value: Any) -> str | None:
    """An ISO-8601 time as a Salesforce dateTime: UTC, milliseconds, 'Z'."""
    if not value:
        return None
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def conversation_key(conversation: Mapping[str, Any]) -> str:
    """The Task's external id value: "source:conversation id"."""
    return f"{conversation['source']}:{conversation['source_id']}"


def conversation_task(conversation: Mapping[str, Any], *, who_id: str | None = None,
                      person_key: str | None = None) -> dict[str, Any]:
    """The activity (see `task_properties`) for one canonical conversation."""
    channel = conversation.get("channel") or "chat"
    return {
        "conversation_key": conversation_key(conversation),
        "who_id": who_id,
        "person_key": person_key,
        "subject": _text(conversation.get("subject")) or f"AI agent conversation ({channel})",
        "description": "\n".join(transcript_lines(conversation)),
        "activity_date": conversation.get("started_at") or conversation.get("last_message_at"),
        "status": "Completed",
    }


def task_properties(
    activity: Mapping[str, Any],
    *,
    object_name: str,
    external_id_field: str,
    task_external_id_field: str,
) -> dict[str, Any]:
    """A Task for one conversation, linked to its Lead/Contact.

    `activity` keys: conversation_key (required), person_key or who_id
    (required), subject, description (the transcript), activity_date
    (date or ISO string), status (default "Completed").
    """
    when = activity.get("activity_date")
    if isinstance(when, datetime):
        when = when.date().isoformat()
    elif isinstance(when, date):
        when = when.isoformat()
    elif isinstance(when, str):
        when = when[:10]
    description = _text(activity.get("description")) or ""
    limit = MAX_LENGTH["Description"]
    if len(description) > limit:
        description = description[: limit - len(TRUNCATION_MARK)] + TRUNCATION_MARK
    record: dict[str, Any] = {
        task_external_id_field: activity["conversation_key"],
        "Subject": _fit(_text(activity.get("subject")) or "AI agent conversation", MAX_LENGTH["Subject"]),
        "Description": description or None,
        "ActivityDate": when or None,
        "Status": activity.get("status") or "Completed",
    }
    if activity.get("who_id"):
        record["WhoId"] = activity["who_id"]
    else:
        # Link by the person's external id: no lookup round trip, no race with the upsert.
        record["Who"] = {"attributes": {"type": object_name}, external_id_field: activity["person_key"]}
    return {k: v for k, v in record.items() if v is not None}
