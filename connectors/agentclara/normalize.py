"""AgentClara payloads -> canonical contact and conversation dicts.

Assumed contact shape (DESIGN.md, "Assumptions where the docs are silent"):
`{"id", "name", "email", "phone", "tags", "created_at", "updated_at"}`,
any field but `id` missing or null, unknown extra fields ignored. A
`company` string, or `first_name`/`last_name`, are read when present.

Quarantined (InvalidRecord): not an object (`malformed_payload`), no id
(`missing_id`), an id that cannot be a key (`invalid_id`, see
`text.parse_source_id`), neither a valid email nor a valid phone
(`no_valid_email_or_phone`). An invalid email next to a valid phone (or the
reverse) is dropped and noted in `warnings` ("invalid_email",
"invalid_phone"); an unreadable time becomes null with "bad_timestamp:<field>".
Every string is read through `_common.prepare` (`text.clean_text`), with
"cleaned:<field>" in `warnings` where that changed something.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from schemas._common import (
    field_id, optional_field_id, person_fields, prepare, read_email, read_phone, read_time,
    require_email_or_phone, require_mapping, text_or_none,
)
from schemas.contact import Contact
from schemas.conversation import build_conversation, map_channel, map_status, normalize_messages
from schemas.fields import clean_tags, name_from_parts, parse_name

SOURCE = "agentclara"


def normalize_contact(raw: Mapping[str, Any], *, region: str = "US") -> dict[str, Any]:
    """Canonical contact dict from an AgentClara `GET /contacts` item."""
    source_id = field_id(require_mapping(raw, "AgentClara contact"), "id", "AgentClara contact")
    record, warnings = prepare(raw, "AgentClara contact")
    email = read_email(record.get("email"), warnings)
    phone = read_phone(record.get("phone"), region, warnings)
    require_email_or_phone(email, phone, f"AgentClara contact {source_id}", warnings)
    name = parse_name(record.get("name"))
    if name.full is None:
        name = name_from_parts(record.get("first_name"), record.get("last_name"))
    return Contact(
        source=SOURCE,
        source_id=source_id,
        **person_fields(email, phone, name),
        company=text_or_none(record.get("company")),
        tags=tuple(clean_tags(record.get("tags"))),
        created_at=read_time(record.get("created_at"), "created_at", warnings),
        updated_at=read_time(record.get("updated_at"), "updated_at", warnings),
        warnings=tuple(warnings),
    ).to_dict()


def contact_from_conversation(raw: Mapping[str, Any], *, region: str = "US") -> dict[str, Any]:
    """Canonical contact from the `customer_*` fields of an AgentClara conversation.

    source_id is `customer_id`, the same id `GET /contacts` uses, so this
    record and the contact endpoint's describe one source record: where both
    exist, keep the one from `/contacts`. Its times are the conversation's
    (`timestamp` = created_at; the latest message, if any, = updated_at).
    """
    record = require_mapping(raw, "AgentClara conversation")
    what = f"AgentClara conversation {optional_field_id(record, 'id')}"
    source_id = field_id(record, "customer_id", f"{what} customer")
    record, warnings = prepare(record, "AgentClara conversation")
    email = read_email(record.get("customer_email"), warnings)
    phone = read_phone(record.get("customer_phone"), region, warnings)
    require_email_or_phone(email, phone, what, warnings)
    name = parse_name(record.get("customer_name"))
    started = read_time(record.get("timestamp"), "created_at", warnings)
    messages = normalize_messages(record.get("messages"), warnings=[])
    times = [m.sent_at for m in messages or () if m.sent_at is not None]
    return Contact(
        source=SOURCE,
        source_id=source_id,
        **person_fields(email, phone, name),
        tags=tuple(clean_tags(record.get("tags"))),
        created_at=started,
        updated_at=max(times) if times else started,
        warnings=tuple(warnings),
    ).to_dict()


def normalize_conversation(raw: Mapping[str, Any], *, region: str = "US") -> dict[str, Any]:
    """Canonical conversation from an AgentClara conversation (list item or detail).

    Message `sender` customer/assistant (and agent spellings) map to roles;
    `timestamp` is when the conversation started. A list item has no
    messages, so its message_count is 0 and last_message_at null.
    """
    record = require_mapping(raw, "AgentClara conversation")
    source_id = field_id(record, "id", "AgentClara conversation")
    contact_source_id = optional_field_id(record, "customer_id")
    record, warnings = prepare(record, "AgentClara conversation")
    messages = normalize_messages(record.get("messages"), warnings=warnings)
    return build_conversation(
        source=SOURCE, source_id=source_id, contact_source_id=contact_source_id,
        email=read_email(record.get("customer_email"), warnings),
        phone=read_phone(record.get("customer_phone"), region, warnings),
        channel=map_channel(record.get("channel"), default=None, warnings=warnings),
        status=map_status(record.get("status"), warnings=warnings), subject=text_or_none(record.get("subject")),
        started_at=read_time(record.get("timestamp"), "started_at", warnings), last_activity_at=None,
        messages=messages, count_hint=None, warnings=warnings,
    )
