"""How a person becomes a HubSpot contact, and a conversation an engagement.

Pure functions and constants, no I/O: the sink (`connectors/hubspot/sink.py`)
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

The table is data (`BUILTIN`, person field per property) rendered by
`render()`; a mapping file (`SYNC_MAPPING_FILE`) overrides it property by
property (`connectors.fieldrules`). Empty values are left out, so an upsert
never blanks a value someone typed in HubSpot. Every value is a string and the dict is built in one fixed
order, so the content hash of `properties(person)` is stable. HubSpot holds
at most 65,536 characters per property value (UTF-16 units, as its backend
counts): a longer value is cut with `connectors.limits` and marked
" [truncated]"; an email, phone or key that long is left out instead, and
`properties_and_cuts()` says which.

Engagements: a conversation on SMS or WhatsApp becomes a *communication*
(`hs_communication_channel_type` SMS / WHATS_APP), anything else (web chat,
email, voice, ...) a *note*; both carry `agent_sync_activity_key`
("source:conversation id"), which is how a rerun finds what it created.
"""

from __future__ import annotations

import html
from typing import Any, Callable, Mapping, Sequence

from connectors.fieldrules import Rule, builtin_rules, render_field, sent, shared_renderers
from connectors.limits import Cut, fit
from schemas.conversation import transcript_lines
from schemas.fields import ISO_MILLIS_UTC, crm_datetime, crm_names
from schemas.keys import record_activity_key

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
# Values a cut would turn into another identity: left out instead of shortened.
EXACT_PROPERTIES = frozenset({"email", "phone", PERSON_KEY_PROPERTY, ACTIVITY_KEY_PROPERTY})


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
# HubSpot-defined association type ids, engagement -> contact (meetings: connectors/hubspot/meetings.py).
CONTACT_ASSOCIATION_TYPE = {"notes": 202, "communications": 81, "meetings": 200}
COMMUNICATION_CHANNELS = {"sms": "SMS", "whatsapp": "WHATS_APP"}


def _text(value: Any) -> str | None:
    if value is None:
        return None
    text = " ".join(str(value).split())
    return text or None


def _fit(values: dict[str, str]) -> tuple[dict[str, str], tuple[Cut, ...]]:
    fitted, cuts = fit(values, lambda _name: MAX_VALUE_LENGTH, exact=EXACT_PROPERTIES, mark=TRUNCATION_MARK)
    return fitted, cuts  # type: ignore[return-value]


def _names(person: Mapping[str, Any]) -> tuple[str | None, str | None]:
    """(firstname, lastname): the one rule every CRM mapping uses (schemas.fields.crm_names)."""
    return crm_names(person.get("first_name"), person.get("last_name"), person.get("full_name"))


def properties(person: Mapping[str, Any], rules: Sequence[Rule] | None = None) -> dict[str, str]:
    """The HubSpot contact properties for a person (see the module table), under `rules` (default: built-in)."""
    return properties_and_cuts(person, rules)[0]


# The built-in mapping as data: (contact property, person field), in payload order.
# `python -m pipelines.mapping --print-default hubspot` prints it as a mapping file.
BUILTIN: tuple[tuple[str, str], ...] = (
    ("email", "email"),
    ("firstname", "first_name"),
    ("lastname", "last_name"),
    ("phone", "phone"),
    ("company", "company"),
    (SOURCES_PROPERTY, "source_ids"),
    (TAGS_PROPERTY, "tags"),
    (LAST_CONVERSATION_PROPERTY, "last_seen_at"),
    (CONVERSATION_COUNT_PROPERTY, "conversation_count"),
    (CHANNELS_PROPERTY, "channels"),
)
BUILTIN_RULES = builtin_rules(BUILTIN)
# The upsert keys: a mapping file cannot change where they come from.
KEY_PROPERTIES = frozenset({EMAIL_ID_PROPERTY, PERSON_KEY_PROPERTY})


def _joined(values: Any) -> str | None:
    texts = sorted({t for t in (_text(v) for v in values or []) if t})
    return ";".join(t.replace(";", ",") for t in texts) or None


def _sources(person: Mapping[str, Any]) -> str | None:
    pairs = sorted(f"{source}:{source_id}" for source, ids in (person.get("source_ids") or {}).items()
                   for source_id in (ids or []))
    return ";".join(pairs) or None


_RENDER: Mapping[str, Callable[[Mapping[str, Any]], str | None]] = {
    **shared_renderers(_text, _names),
    "email": lambda p: (_text(p.get("email")) or "").lower() or None,
    "source_ids": _sources,
    "tags": lambda p: _joined(p.get("tags")),
    "last_seen_at": lambda p: hubspot_datetime(p.get("last_seen_at")),
    "conversation_count": lambda p: str(p["conversation_count"]) if p.get("conversation_count") else None,
    "channels": lambda p: ";".join(sorted({str(c) for c in p.get("channels") or [] if c})) or None,
}


def constant(value: Any) -> str | None:
    """A mapping file's constant as HubSpot takes it: a string ("true"/"false" for booleans)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return _text(value)


def render(source: str, person: Mapping[str, Any]) -> str | None:
    """A person field (or `extra.<key>`) as a HubSpot property value; None when empty."""
    return render_field(source, person, _RENDER, joined=_joined, constant=constant)


def properties_and_cuts(person: Mapping[str, Any],
                        rules: Sequence[Rule] | None = None) -> tuple[dict[str, str], tuple[Cut, ...]]:
    """`properties(person, rules)` and the values that had to be cut to HubSpot's limit.

    The person key property is not a rule: it is the upsert key of persons without email.
    """
    values: list[tuple[str, str | None]] = [
        (rule.name, constant(rule.value) if rule.has_value else render(str(rule.source), person))
        for rule in sent(BUILTIN_RULES if rules is None else rules)
    ]
    email = _text(person.get("email"))
    values.append((PERSON_KEY_PROPERTY, None if email else _text(person.get("person_key"))))
    return _fit({name: value for name, value in values if value})


def hubspot_datetime(value: Any) -> str | None:
    """A time as HubSpot's datetime value: the one CRM formatter's ISO_MILLIS_UTC (schemas.fields)."""
    return crm_datetime(value, ISO_MILLIS_UTC)


def upsert_key(person: Mapping[str, Any], props: Mapping[str, str]) -> tuple[str, str]:
    """(idProperty, id) for the batch upsert: the email, else the person key."""
    if props.get("email"):
        return EMAIL_ID_PROPERTY, props["email"]
    return PERSON_KEY_PROPERTY, str(person["person_key"])


# ---------------------------------------------------------------- engagements


def activity_key(conversation: Mapping[str, Any]) -> str:
    """The stable key of a conversation's engagement: "source:source_id" (schemas.keys, the one rule)."""
    return record_activity_key(conversation)


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
    return activity_properties_and_cuts(conversation)[0]


def activity_properties_and_cuts(conversation: Mapping[str, Any]) -> tuple[dict[str, str], tuple[Cut, ...]]:
    """`activity_properties(conversation)` and the values cut to HubSpot's limit (a long transcript)."""
    timestamp = _timestamp(conversation)
    if timestamp is None:
        raise ValueError("conversation has no started_at, last_message_at or message time")
    lines = transcript_lines(conversation)
    key = activity_key(conversation)
    if activity_object(conversation) == "communications":
        return _fit({
            "hs_timestamp": timestamp,
            "hs_communication_channel_type": COMMUNICATION_CHANNELS[conversation["channel"]],
            "hs_communication_logged_from": "CRM",
            "hs_communication_body": "\n".join(lines),
            ACTIVITY_KEY_PROPERTY: key,
        })
    body = "".join(f"<p>{html.escape(line)}</p>" for line in lines)
    return _fit({"hs_timestamp": timestamp, "hs_note_body": body, ACTIVITY_KEY_PROPERTY: key})
