"""How a person becomes a HubSpot contact, and a conversation an engagement.

Pure functions and constants, no I/O: the sink (`connectors/hubspot.py`)
creates what `CUSTOM_PROPERTIES` lists when it is missing and sends what
`properties()` gives.

Contact property mapping (person dict -> HubSpot contact property):

| person                 | HubSpot property        | notes |
|------------------------|-------------------------|-------|
| email                  | email                   | lower-cased; the upsert key (`idProperty: email`) |
| first_name             | firstname               | else the first word of full_name |
| last_name              | lastname                | else the rest of full_name |
| phone (E.164)          | phone                   | |
| company                | company                 | |
| person_key             | agent_sync_person_key   | only for persons without email: their upsert key (unique property) |
| source_ids             | agent_sync_sources      | "source:id" pairs, sorted, ";"-separated |
| tags                   | agent_sync_tags         | sorted, unique, ";"-separated |
| last_seen_at           | agent_sync_last_conversation_at | datetime: the person's latest conversation activity |
| conversation_count     | agent_sync_conversation_count   | number: conversations synced for the person (left out at 0) |
| channels               | agent_sync_channels     | channels used, sorted, ";"-separated |

Empty values are left out, so an upsert never blanks a value someone typed
in HubSpot. Every value is a string and the dict is built in one fixed
order, so the content hash of `properties(person)` is stable.

Engagements: a conversation on SMS or WhatsApp becomes a *communication*
(`hs_communication_channel_type` SMS / WHATS_APP), anything else (web chat,
email, voice, ...) a *note*; both carry `agent_sync_activity_key`
("source:conversation id"), which is how a rerun finds what it created.
"""

from __future__ import annotations

import html
from datetime import datetime, timezone
from typing import Any, Mapping

from schemas.conversation import transcript_lines

GROUP_NAME = "agent_sync"
GROUP_LABEL = "AI agent sync"
PERSON_KEY_PROPERTY = "agent_sync_person_key"
SOURCES_PROPERTY = "agent_sync_sources"
TAGS_PROPERTY = "agent_sync_tags"
ACTIVITY_KEY_PROPERTY = "agent_sync_activity_key"
EMAIL_ID_PROPERTY = "email"

# HubSpot caps a string property value at 65,536 characters.
MAX_VALUE_LENGTH = 65_536
TRUNCATION_MARK = " [truncated]"


LAST_CONVERSATION_PROPERTY = "agent_sync_last_conversation_at"
CONVERSATION_COUNT_PROPERTY = "agent_sync_conversation_count"
CHANNELS_PROPERTY = "agent_sync_channels"


def _definition(name: str, label: str, field_type: str, description: str, unique: bool = False,
                kind: str = "string") -> dict[str, Any]:
    return {"name": name, "label": label, "type": kind, "field_type": field_type,
            "group_name": GROUP_NAME, "has_unique_value": unique, "description": description}


# What prepare() makes sure exists on contacts (keyword names of PropertyCreate).
CUSTOM_PROPERTIES: tuple[dict[str, Any], ...] = (
    _definition(PERSON_KEY_PROPERTY, "Agent sync person key", "text",
                "Identity of this person in the AI agent sync (email:... or phone:+E.164); "
                "the upsert key for contacts without an email.", unique=True),
    _definition(SOURCES_PROPERTY, "Agent sync sources", "textarea",
                "The chat-agent platform records merged into this contact, as source:id pairs."),
    _definition(TAGS_PROPERTY, "Agent sync tags", "textarea",
                "Tags the chat-agent platforms gave this person."),
    _definition(LAST_CONVERSATION_PROPERTY, "Agent sync last conversation", "date",
                "When this person last talked to an AI agent (latest message of their latest conversation).",
                kind="datetime"),
    _definition(CONVERSATION_COUNT_PROPERTY, "Agent sync conversations", "number",
                "How many AI agent conversations of this person were synced.", kind="number"),
    _definition(CHANNELS_PROPERTY, "Agent sync channels", "textarea",
                "The channels this person used with the AI agents (sms, email, whatsapp, webchat, ...)."),
)
# What prepare_activities() makes sure exists on notes and communications.
ACTIVITY_PROPERTIES: tuple[dict[str, Any], ...] = (
    _definition(ACTIVITY_KEY_PROPERTY, "Agent sync conversation key", "text",
                "The conversation (source:id) this engagement was made from."),
)
ACTIVITY_OBJECTS = ("notes", "communications")
# HubSpot-defined association type ids, engagement -> contact.
CONTACT_ASSOCIATION_TYPE = {"notes": 202, "communications": 81}
COMMUNICATION_CHANNELS = {"sms": "SMS", "whatsapp": "WHATS_APP"}


def _text(value: Any) -> str | None:
    if value is None:
        return None
    text = " ".join(str(value).split())
    return text or None


def _cut(text: str, limit: int = MAX_VALUE_LENGTH) -> str:
    return text if len(text) <= limit else text[: limit - len(TRUNCATION_MARK)] + TRUNCATION_MARK


def _names(person: Mapping[str, Any]) -> tuple[str | None, str | None]:
    first, last = _text(person.get("first_name")), _text(person.get("last_name"))
    full = _text(person.get("full_name"))
    if full and not (first and last):
        words = full.split(" ")
        if first is None and last is None:
            first, last = words[0], " ".join(words[1:]) or None
        elif last is None and full.lower().startswith(first.lower() + " "):  # type: ignore[union-attr]
            last = full[len(first) + 1:]  # type: ignore[arg-type]
    return first, last


def properties(person: Mapping[str, Any]) -> dict[str, str]:
    """The HubSpot contact properties for a person (see the module table)."""
    email = _text(person.get("email"))
    first, last = _names(person)
    sources = sorted(
        f"{source}:{source_id}"
        for source, ids in (person.get("source_ids") or {}).items()
        for source_id in (ids or [])
    )
    tags = sorted({t for t in (_text(tag) for tag in person.get("tags") or []) if t})
    values: list[tuple[str, str | None]] = [
        ("email", email.lower() if email else None),
        ("firstname", first),
        ("lastname", last),
        ("phone", _text(person.get("phone"))),
        ("company", _text(person.get("company"))),
        (PERSON_KEY_PROPERTY, None if email else _text(person.get("person_key"))),
        (SOURCES_PROPERTY, ";".join(sources) or None),
        (TAGS_PROPERTY, ";".join(t.replace(";", ",") for t in tags) or None),
        (LAST_CONVERSATION_PROPERTY, hubspot_datetime(person.get("last_seen_at"))),
        (CONVERSATION_COUNT_PROPERTY, str(person["conversation_count"]) if person.get("conversation_count") else None),
        (CHANNELS_PROPERTY, ";".join(sorted({str(c) for c in person.get("channels") or [] if c})) or None),
    ]
    return {name: _cut(value) for name, value in values if value}


def hubspot_datetime(value: Any) -> str | None:
    """An ISO-8601 time (or datetime) as HubSpot's datetime value: UTC, milliseconds, 'Z'."""
    if not value:
        return None
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def upsert_key(person: Mapping[str, Any], props: Mapping[str, str]) -> tuple[str, str]:
    """(idProperty, id) for the batch upsert: the email, else the person key."""
    if props.get("email"):
        return EMAIL_ID_PROPERTY, props["email"]
    return PERSON_KEY_PROPERTY, str(person["person_key"])


# ---------------------------------------------------------------- engagements


def activity_key(conversation: Mapping[str, Any]) -> str:
    """The stable key of a conversation's engagement: `key`, else "source:source_id"."""
    if conversation.get("key"):
        return str(conversation["key"])
    return f"{conversation['source']}:{conversation['source_id']}"


def activity_object(conversation: Mapping[str, Any]) -> str:
    """'communications' for SMS and WhatsApp conversations, 'notes' for the rest."""
    return "communications" if conversation.get("channel") in COMMUNICATION_CHANNELS else "notes"


def _timestamp(conversation: Mapping[str, Any]) -> str | None:
    messages = conversation.get("messages") or []
    for value in (conversation.get("started_at"), conversation.get("last_message_at"),
                  messages[0].get("sent_at") if messages else None):
        if value:
            return hubspot_datetime(value)
    return None


def activity_properties(conversation: Mapping[str, Any]) -> dict[str, str]:
    """The engagement properties for a conversation; raises ValueError without any timestamp."""
    timestamp = _timestamp(conversation)
    if timestamp is None:
        raise ValueError("conversation has no started_at, last_message_at or message time")
    lines = transcript_lines(conversation)
    key = activity_key(conversation)
    if activity_object(conversation) == "communications":
        return {
            "hs_timestamp": timestamp,
            "hs_communication_channel_type": COMMUNICATION_CHANNELS[conversation["channel"]],
            "hs_communication_logged_from": "CRM",
            "hs_communication_body": _cut("\n".join(lines)),
            ACTIVITY_KEY_PROPERTY: key,
        }
    body = "".join(f"<p>{html.escape(line)}</p>" for line in lines)
    return {"hs_timestamp": timestamp, "hs_note_body": _cut(body), ACTIVITY_KEY_PROPERTY: key}
