"""Chatloom payloads -> canonical conversation dicts (its roadmap conversation export).

Assumed shape (connectors/chatloom/spec.py): each exported conversation is
whole, `{"id", "agentId", "agentName", "channel", "status", "startedAt",
"lastMessageAt", "visitor": {"name", "email", "phone"}, "messages": [...]}`
(the agent's name becomes the subject); any field but
`id` may be missing or null, unknown fields are ignored. Chatloom has no
contact records, so a conversation finds its person by its visitor's email,
else phone (the persons step's hints); an anonymous one waits unlinked.
Channel defaults to web chat (the widget).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from schemas._common import field_id, prepare, read_email, read_phone, read_time, require_mapping, text_or_none
from schemas.conversation import build_conversation, map_channel, map_status, normalize_messages

SOURCE = "chatloom"
WHAT = "Chatloom conversation"


def normalize_conversation(raw: Mapping[str, Any], *, region: str = "US") -> dict[str, Any]:
    """Canonical conversation from one item of Chatloom's conversation export."""
    source_id = field_id(require_mapping(raw, WHAT), "id", WHAT)
    record, warnings = prepare(raw, WHAT)
    visitor = record.get("visitor") if isinstance(record.get("visitor"), Mapping) else {}
    if record.get("visitor") is not None and not visitor:
        warnings.append("bad_visitor")
    times = {field: read_time(record.get(key), field, warnings)
             for field, key in (("started_at", "startedAt"), ("last_activity_at", "lastMessageAt"))}
    return build_conversation(
        source=SOURCE, source_id=source_id, contact_source_id=None,
        email=read_email(visitor.get("email"), warnings), phone=read_phone(visitor.get("phone"), region, warnings),
        channel=map_channel(record.get("channel"), default="webchat", warnings=warnings),
        status=map_status(record.get("status"), warnings=warnings), subject=text_or_none(record.get("agentName")),
        messages=normalize_messages(record.get("messages"), warnings=warnings), count_hint=None,
        warnings=warnings, **times,
    )
