"""AgentPro payloads -> canonical contact and conversation dicts.

AgentPro has no contact endpoint: a person exists only as the visitor of a
conversation (`visitorName`, `visitorEmail`, `visitorPhone`, often null).

The contact's source_id is the *visitor key*: "email:<normalized email>"
when the visitor gave a valid email, else "phone:<E.164>". It is derived
from what the visitor said, so the same visitor across conversations and
chatbots gives the same source_id (several conversations then yield equal
or near-equal records for one source record; keep the latest). `sessionId`
is not used: it changes per browser session, and a visitor without email
or phone is quarantined anyway (`no_valid_email_or_phone`). A visitor seen
once with an email and once with only a phone gives two source records,
which identity resolution joins when that phone has one owner.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from schemas._common import (
    field_id, person_fields, prepare, read_email, read_phone, read_time, require_email_or_phone,
    require_mapping, text_or_none,
)
from schemas.contact import Contact
from schemas.conversation import build_conversation, map_channel, map_status, normalize_messages
from schemas.fields import parse_name
from schemas.keys import canonical_person_key

SOURCE = "agentpro"


def visitor_key(email: str | None, phone: str | None) -> str | None:
    """The AgentPro contact source_id for a visitor's normalized email/phone: their person key's format.

    `phone` is a real number or None (the phone rule in schemas.fields), so
    a placeholder such as `555-CALL-NOW` never names a visitor.
    """
    return canonical_person_key(email, phone)


def contact_from_conversation(conv: Mapping[str, Any], *, region: str = "US") -> dict[str, Any]:
    """Canonical contact for the visitor of an AgentPro conversation (list item or detail)."""
    conversation_id = field_id(require_mapping(conv, "AgentPro conversation"), "id", "AgentPro conversation")
    what = f"AgentPro conversation {conversation_id}"
    record, warnings = prepare(conv, what)
    email = read_email(record.get("visitorEmail"), warnings)
    phone = read_phone(record.get("visitorPhone"), region, warnings)
    require_email_or_phone(email, phone, what, warnings)
    name = parse_name(record.get("visitorName"))
    created = read_time(record.get("createdAt"), "created_at", warnings)
    updated = read_time(record.get("updatedAt"), "updated_at", warnings)
    return Contact(
        source=SOURCE,
        source_id=visitor_key(email, phone),
        **person_fields(email, phone, name),
        created_at=created,
        updated_at=updated or created,
        # v2: seen in this conversation, on its channel (its warnings belong to the conversation).
        preferred_channel=map_channel(record.get("channel"), default="webchat", warnings=[]),
        last_seen_at=updated or created,
        warnings=tuple(warnings),
    ).to_dict()


def normalize_conversation(conv: Mapping[str, Any], *, region: str = "US") -> dict[str, Any]:
    """Canonical conversation from an AgentPro conversation (list item or detail).

    contact_source_id is the visitor key (null for an anonymous visitor);
    channel defaults to web chat; messages use `role`/`content`/`createdAt`;
    a list item's `messageCount` is kept as message_count.
    """
    source_id = field_id(require_mapping(conv, "AgentPro conversation"), "id", "AgentPro conversation")
    record, warnings = prepare(conv, "AgentPro conversation")
    email = read_email(record.get("visitorEmail"), warnings)
    phone = read_phone(record.get("visitorPhone"), region, warnings)
    messages = normalize_messages(record.get("messages"), warnings=warnings)
    return build_conversation(
        source=SOURCE, source_id=source_id, contact_source_id=visitor_key(email, phone), email=email, phone=phone,
        channel=map_channel(record.get("channel"), default="webchat", warnings=warnings),
        status=map_status(record.get("status"), warnings=warnings),
        subject=text_or_none(record.get("subject") or record.get("title")),
        started_at=read_time(record.get("createdAt"), "started_at", warnings),
        last_activity_at=read_time(record.get("updatedAt"), "updated_at", warnings),
        messages=messages, count_hint=record.get("messageCount"), warnings=warnings,
    )
