"""How a person becomes a Salesforce Lead or Contact, and a conversation a Task.

Pure functions and constants, no I/O: the sink (`connectors/salesforce/sink.py`)
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
an upsert never blanks a field a sales rep filled in. The table is data
(`FieldMapping.builtin()`) rendered by `render()`; a mapping file
(`SYNC_MAPPING_FILE`) overrides it field by field (`FieldMapping.overrides`).

Lengths: every string is fitted (`connectors.limits`, counted in UTF-16
units as Salesforce counts) to the length the org's describe gives for its
field (`FieldMapping.lengths`, filled by the sink's prepare; the standard
lengths below until then). Names, company and subject are cut; the Task
description is cut with a " [truncated]" mark; an email or phone too long
for its field is left out, never shortened into another address.
`properties_and_cuts()` / `task_properties_and_cuts()` say what was cut.

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
from datetime import date
from typing import Any, Callable, Mapping

from connectors.fieldrules import Rule, builtin_rules, merged, render_field, sent, shared_renderers
from connectors.limits import Cut, fit, utf16_length
from schemas.conversation import transcript_lines
from schemas.fields import ISO_DATE, ISO_MILLIS_UTC, crm_datetime, crm_names
from schemas.keys import record_activity_key

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
# Standard field lengths (as a fresh org's describe gives them); the sink replaces
# them with the org's own describe. Custom Text fields default to 255.
MAX_LENGTH: Mapping[str, int] = {
    "FirstName": 40, "LastName": 80, "Company": 255, "Email": 80, "Phone": 40,
    "Subject": 255, "Description": 32000,
}
CUSTOM_TEXT_LENGTH = 255
EXTERNAL_ID_MAX_LENGTH = 255
TRUNCATION_MARK = " [truncated]"
# Values a cut would turn into another identity: left out instead of shortened.
EXACT_FIELDS = frozenset({"Email", "Phone"})
# Cut values that carry the mark (long text a person reads).
MARKED_FIELDS = frozenset({"Description"})


def _limit(lengths: Mapping[str, int]) -> Any:
    return lambda name: lengths.get(name) or (CUSTOM_TEXT_LENGTH if name.endswith("__c") else None)


def _text(value: Any) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    return text or None


def split_name(person: Mapping[str, Any]) -> tuple[str | None, str | None]:
    """(FirstName, LastName): the one rule every CRM mapping uses (schemas.fields.crm_names).

    A LastName left empty is filled with the placeholder where the object requires it.
    """
    return crm_names(person.get("first_name"), person.get("last_name"), person.get("full_name"))


def external_id_problem(key: Any) -> str | None:
    """Why a person key cannot be an external id value, or None when it can."""
    if not isinstance(key, str) or not key.strip():
        return "person_key is empty"
    if utf16_length(key) > EXTERNAL_ID_MAX_LENGTH:
        return (f"person_key is {utf16_length(key)} characters; a Text external id holds at most "
                f"{EXTERNAL_ID_MAX_LENGTH}")
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
    # Field -> length as the org's describe gives it (the sink's prepare fills it).
    lengths: Mapping[str, int] = field(default_factory=lambda: dict(MAX_LENGTH))
    # A mapping file's rules for this object (SYNC_MAPPING_FILE), over `builtin_rules()`.
    overrides: tuple[Rule, ...] = ()

    def __post_init__(self) -> None:
        merged = dict(DEFAULT_PLACEHOLDERS.get(self.object_name, {}))
        merged.update(self.placeholders or {})
        object.__setattr__(self, "placeholders", merged)

    def builtin(self) -> tuple[tuple[str, str], ...]:
        """The built-in mapping as data: (field, person field), in payload order.

        It depends on the object (Company is a Lead field), the configured
        sources field and the roll-up fields the org has.
        """
        pairs = [("FirstName", "first_name"), ("LastName", "last_name"), ("Email", "email"), ("Phone", "phone")]
        if self.object_name == "Lead":
            pairs.append(("Company", "company"))
        if self.sources_field:
            pairs.append((self.sources_field, "source_ids"))
        pairs += [(name, key) for key, name in ROLLUP_FIELDS.items() if name in self.rollup_fields]
        return tuple(pairs)

    def rules(self) -> tuple[Rule, ...]:
        """The rules in force: the built-in mapping with the file's overrides."""
        return merged(builtin_rules(self.builtin()), self.overrides)

    def fields_needed(self) -> tuple[str, ...]:
        """Every field the built-in payload can carry, external id included."""
        needed = list(STANDARD_FIELDS[self.object_name])
        if self.sources_field:
            needed.append(self.sources_field)
        needed.append(self.external_id_field)
        return tuple(needed)

    def properties(self, person: Mapping[str, Any]) -> dict[str, Any]:
        """The fields written for one person (external id included, empties left out)."""
        return self.properties_and_cuts(person)[0]

    def properties_and_cuts(self, person: Mapping[str, Any]) -> tuple[dict[str, Any], tuple[Cut, ...]]:
        """`properties(person)` and the values cut (or left out) to fit the org's field lengths.

        A required field (Lead LastName and Company, Contact LastName) the
        rules send but the person lacks gets its placeholder.
        """
        rules = sent(self.rules())
        values: dict[str, Any] = {
            rule.name: constant(rule.value) if rule.has_value else render(str(rule.source), person)
            for rule in rules
        }
        for name in REQUIRED_FIELDS[self.object_name]:
            if name in values and values[name] in (None, ""):
                values[name] = self.placeholders.get(name, PLACEHOLDER)
        out, cuts = fit({name: value for name, value in values.items() if value is not None},
                        _limit(self.lengths), exact=EXACT_FIELDS)
        out[self.external_id_field] = person["person_key"]
        return out, cuts


def _joined(values: Any) -> str | None:
    texts = sorted({t for t in (_text(v) for v in values or []) if t})
    return ";".join(texts) or None


_RENDER: Mapping[str, Callable[[Mapping[str, Any]], Any]] = {
    **shared_renderers(_text, split_name),
    "email": lambda p: _text(p.get("email")),
    "source_ids": lambda p: ";".join(sorted((p.get("source_ids") or {}).keys())) or None,
    "tags": lambda p: _joined(p.get("tags")),
    "last_seen_at": lambda p: _rollup_value("last_seen_at", p.get("last_seen_at")),
    "conversation_count": lambda p: _rollup_value("conversation_count", p.get("conversation_count")),
    "channels": lambda p: _rollup_value("channels", p.get("channels")),
}


def constant(value: Any) -> Any:
    """A mapping file's constant as Salesforce takes it (booleans and numbers stay typed)."""
    return _text(value) if isinstance(value, str) else value


def render(source: str, person: Mapping[str, Any]) -> Any:
    """A person field (or `extra.<key>`) as a Salesforce field value; None when empty."""
    return render_field(source, person, _RENDER, joined=_joined, constant=constant)


def _rollup_value(key: str, value: Any) -> Any:
    if key == "last_seen_at":
        return salesforce_datetime(value)
    if key == "conversation_count":
        return int(value) if value else None
    channels = sorted({str(c) for c in value or [] if c})
    return ";".join(channels) if channels else None


def salesforce_datetime(value: Any) -> str | None:
    """A time as a Salesforce dateTime: the one CRM formatter's ISO_MILLIS_UTC (schemas.fields)."""
    return crm_datetime(value, ISO_MILLIS_UTC)


def conversation_key(conversation: Mapping[str, Any]) -> str:
    """The Task's external id value: "source:conversation id" (schemas.keys, the one rule)."""
    return record_activity_key(conversation)


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
    lengths: Mapping[str, int] = MAX_LENGTH,
) -> dict[str, Any]:
    """A Task for one conversation, linked to its Lead/Contact.

    `activity` keys: conversation_key (required), person_key or who_id
    (required), subject, description (the transcript), activity_date
    (date or ISO string), status (default "Completed").
    """
    return task_properties_and_cuts(activity, object_name=object_name, external_id_field=external_id_field,
                                    task_external_id_field=task_external_id_field, lengths=lengths)[0]


def task_properties_and_cuts(
    activity: Mapping[str, Any],
    *,
    object_name: str,
    external_id_field: str,
    task_external_id_field: str,
    lengths: Mapping[str, int] = MAX_LENGTH,
) -> tuple[dict[str, Any], tuple[Cut, ...]]:
    """`task_properties(...)` and the values cut to the Task fields' lengths (a long transcript)."""
    when = activity.get("activity_date")
    if isinstance(when, (date, str)):
        when = crm_datetime(when, ISO_DATE)  # a Salesforce date field
    texts, cuts = fit({"Subject": _text(activity.get("subject")) or "AI agent conversation",
                       "Description": _text(activity.get("description")) or None},
                      lambda name: lengths.get(name) or MAX_LENGTH[name], mark=TRUNCATION_MARK, marked=MARKED_FIELDS)
    record: dict[str, Any] = {
        task_external_id_field: activity["conversation_key"],
        "Subject": texts["Subject"],
        "Description": texts["Description"],
        "ActivityDate": when or None,
        "Status": activity.get("status") or "Completed",
    }
    if activity.get("who_id"):
        record["WhoId"] = activity["who_id"]
    else:
        # Link by the person's external id: no lookup round trip, no race with the upsert.
        record["Who"] = {"attributes": {"type": object_name}, external_id_field: activity["person_key"]}
    return {k: v for k, v in record.items() if v is not None}, cuts
