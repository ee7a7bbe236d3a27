"""The canonical conversation: schema "conversation", version 1.

As a plain JSON dict:

    {"schema": "conversation", "version": 1, "source": "agentclara", "source_id": "conv_abc123",
     "contact_source_id": "cust_xyz789", "email": null, "phone": "+15551234567",
     "channel": "sms", "status": "open", "subject": "Appointment Question",
     "started_at": "2024-03-15T10:30:00+00:00", "last_message_at": "2024-03-15T10:31:00+00:00",
     "messages": [{"id": "msg_1", "role": "customer", "content": "...",
                   "sent_at": "2024-03-15T10:30:00+00:00"}],
     "message_count": 1, "warnings": []}

- contact_source_id: the id of the contact record on the same source that
  this conversation belongs to (AgentClara customer_id, the AgentPro visitor
  key, the Clairo brief id when known), or null. email/phone are person
  hints (normalized like a contact's), for identity when the id is unknown.
- channel: one of CHANNELS. Platform spellings are mapped (CHANNEL_ALIASES);
  a missing channel takes the source's default (web chat for Clairo and
  AgentPro); an unknown one becomes "other" with the warning
  "unknown_channel" -- a new channel on a platform must never fail a run.
- status: "open", "closed", "resolved" or null (missing, or unknown with the
  warning "unknown_status"). Clairo's ACTIVE -> open, COMPLETED -> closed.
- messages: in source order; role customer|assistant|agent (ROLE_ALIASES);
  a message with an unknown role or that is not an object is dropped with the
  warning "unknown_role" / "bad_message". A message without an id gets a
  stable one derived from its content ("m_<16 hex>").
- message_count: len(messages) when the payload has messages, else the
  source's own count (list endpoints), else 0.
- times: ISO-8601 UTC. started_at falls back to the first message's time;
  last_message_at is the latest message's time, else the platform's own
  last-update time (a list item). A conversation with neither is
  quarantined (`no_timestamp`): it belongs to no day and a CRM activity
  needs a date. Invalid payloads are quarantined like contacts are:
  `malformed_payload` (not an object, messages not a list), `missing_id`,
  `invalid_id`. Text is read through `_common.prepare`: message content
  keeps its lines and tabs (`text.clean_text(multiline=True)`), every
  other string is one line; what cleaning changed is in `warnings`
  ("cleaned:<field>", "raw_sanitized:<change>").

Its *activity time* (`activity_time`) is last_message_at, else started_at;
the UTC date of that time (`activity_day`) is the daily partition the
conversation belongs to, so a conversation that gets a new message later
moves to the day of that message.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from schemas._common import optional_id, read_time
from schemas.errors import MALFORMED_PAYLOAD, NO_TIMESTAMP, InvalidRecord
from schemas.fields import parse_timestamp, to_iso
from schemas.hashing import content_hash
from schemas.registry import current_version

SCHEMA = "conversation"

KEYS = (
    "schema", "version", "source", "source_id", "contact_source_id", "email", "phone",
    "channel", "status", "subject", "started_at", "last_message_at",
    "messages", "message_count", "warnings",
)
MESSAGE_KEYS = ("id", "role", "content", "sent_at")

CHANNELS = ("sms", "email", "instagram", "facebook", "whatsapp", "voice", "webchat", "other")
CHANNEL_ALIASES: dict[str, str] = {
    "sms": "sms", "text": "sms", "mms": "sms", "textmessage": "sms",
    "email": "email", "mail": "email",
    "instagram": "instagram", "ig": "instagram", "instagramdm": "instagram",
    "facebook": "facebook", "fb": "facebook", "messenger": "facebook",
    "facebookmessenger": "facebook",
    "whatsapp": "whatsapp", "wa": "whatsapp",
    "voice": "voice", "phone": "voice", "call": "voice", "phonecall": "voice",
    "webchat": "webchat", "web": "webchat", "chat": "webchat", "widget": "webchat",
    "website": "webchat", "livechat": "webchat", "webwidget": "webchat",
    "other": "other",
}

STATUSES = ("open", "closed", "resolved")
STATUS_ALIASES: dict[str, str] = {
    "open": "open", "active": "open", "pending": "open", "new": "open",
    "inprogress": "open", "ongoing": "open", "waiting": "open",
    "closed": "closed", "completed": "closed", "complete": "closed", "ended": "closed",
    "archived": "closed", "abandoned": "closed", "expired": "closed", "inactive": "closed",
    "resolved": "resolved", "done": "resolved", "solved": "resolved",
}

ROLES = ("customer", "assistant", "agent")
ROLE_ALIASES: dict[str, str] = {
    "user": "customer", "customer": "customer", "visitor": "customer",
    "contact": "customer", "lead": "customer", "client": "customer",
    "assistant": "assistant", "bot": "assistant", "ai": "assistant",
    "chatbot": "assistant", "clara": "assistant",
    "agent": "agent", "human": "agent", "operator": "agent", "staff": "agent",
    "humanagent": "agent",
}

# Where messages keep each field, in the order they are looked up.
_MESSAGE_ROLE_KEYS = ("role", "sender", "from", "author")
_MESSAGE_TIME_KEYS = ("sent_at", "timestamp", "createdAt", "created_at")
_MESSAGE_CONTENT_KEYS = ("content", "text", "message", "body")


def _token(value: str) -> str:
    """Lookup form of a platform value: case-folded letters and digits only."""
    return "".join(ch for ch in value.casefold() if ch.isalnum())


def map_channel(value: Any, *, default: str | None, warnings: list[str]) -> str:
    """Canonical channel; `default` when missing, "other" (+ warning) when unknown."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return default or "other"
    if isinstance(value, str):
        channel = CHANNEL_ALIASES.get(_token(value))
        if channel is not None:
            return channel
    warnings.append("unknown_channel")
    return "other"


def map_status(value: Any, *, warnings: list[str]) -> str | None:
    """Canonical status, or None when missing or unknown (+ warning)."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, str):
        status = STATUS_ALIASES.get(_token(value))
        if status is not None:
            return status
    warnings.append("unknown_status")
    return None


def map_role(value: Any) -> str | None:
    """Canonical message role, or None when unknown."""
    if not isinstance(value, str):
        return None
    return ROLE_ALIASES.get(_token(value))


@dataclass(frozen=True)
class Message:
    id: str
    role: str
    content: str
    sent_at: datetime | None

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "role": self.role, "content": self.content,
                "sent_at": to_iso(self.sent_at)}


def normalize_messages(raw: Any, *, warnings: list[str]) -> list[Message] | None:
    """Messages of a conversation payload; None when the payload has none (list item)."""
    if raw is None:
        return None
    if not isinstance(raw, list):
        raise InvalidRecord(MALFORMED_PAYLOAD, f"messages is a {type(raw).__name__}, not a list")
    messages: list[Message] = []
    seen: dict[str, int] = {}
    for item in raw:
        if not isinstance(item, Mapping):
            warnings.append("bad_message")
            continue
        role = map_role(_first(item, _MESSAGE_ROLE_KEYS))
        if role is None:
            warnings.append("unknown_role")
            continue
        content = _first(item, _MESSAGE_CONTENT_KEYS)
        content = "" if content is None else content if isinstance(content, str) else str(content)
        sent_at = read_time(_first(item, _MESSAGE_TIME_KEYS), "message", warnings)
        message_id = optional_id(item.get("id"))
        if message_id is None:  # stable across runs; repeats of one text get _2, _3...
            base = "m_" + content_hash([role, to_iso(sent_at), content])[:16]
            seen[base] = seen.get(base, 0) + 1
            message_id = base if seen[base] == 1 else f"{base}_{seen[base]}"
        messages.append(Message(message_id, role, content, sent_at))
    return messages


def _first(item: Mapping[str, Any], keys: tuple[str, ...]) -> Any:
    for key in keys:
        if item.get(key) is not None:
            return item[key]
    return None


@dataclass(frozen=True)
class Conversation:
    """A canonical conversation; `to_dict()` gives the stored/passed JSON form."""

    source: str
    source_id: str
    contact_source_id: str | None
    email: str | None
    phone: str | None
    channel: str
    status: str | None
    subject: str | None
    started_at: datetime | None
    last_message_at: datetime | None
    messages: tuple[Message, ...]
    message_count: int
    warnings: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema": SCHEMA,
            "version": current_version(SCHEMA),
            "source": self.source,
            "source_id": self.source_id,
            "contact_source_id": self.contact_source_id,
            "email": self.email,
            "phone": self.phone,
            "channel": self.channel,
            "status": self.status,
            "subject": self.subject,
            "started_at": to_iso(self.started_at),
            "last_message_at": to_iso(self.last_message_at),
            "messages": [m.to_dict() for m in self.messages],
            "message_count": self.message_count,
            "warnings": list(self.warnings),
        }


def build_conversation(
    *,
    source: str,
    source_id: str,
    contact_source_id: str | None,
    email: str | None,
    phone: str | None,
    channel: str,
    status: str | None,
    subject: str | None,
    started_at: datetime | None,
    last_activity_at: datetime | None,
    messages: list[Message] | None,
    count_hint: Any,
    warnings: list[str],
) -> dict[str, Any]:
    """Assemble the conversation dict; times fall back to the messages' own."""
    times = [m.sent_at for m in messages or () if m.sent_at is not None]
    if started_at is None and times:
        started_at = min(times)
    last_message_at = max(times) if times else last_activity_at
    if started_at is None and last_message_at is None:
        raise InvalidRecord(NO_TIMESTAMP, f"{source} conversation {source_id} has no start, message or update time")
    if messages is not None:
        count = len(messages)
    elif isinstance(count_hint, int) and not isinstance(count_hint, bool) and count_hint >= 0:
        count = count_hint
    else:
        count = 0
    return Conversation(
        source=source, source_id=source_id, contact_source_id=contact_source_id,
        email=email, phone=phone, channel=channel, status=status, subject=subject,
        started_at=started_at, last_message_at=last_message_at,
        messages=tuple(messages or ()), message_count=count,
        warnings=tuple(dict.fromkeys(warnings)),  # each code once, first-seen order
    ).to_dict()


def activity_time(conversation: Mapping[str, Any]) -> str | None:
    """When the conversation was last active (ISO-8601 UTC): last message, else start."""
    return conversation.get("last_message_at") or conversation.get("started_at")


def activity_day(conversation: Mapping[str, Any]) -> str | None:
    """The UTC day (YYYY-MM-DD) of `activity_time`: the daily partition the conversation belongs to."""
    moment = parse_timestamp(activity_time(conversation))
    return moment.date().isoformat() if moment else None


def transcript_lines(conversation: Mapping[str, Any]) -> list[str]:
    """A readable transcript: a header line, the subject, then one line per message."""
    header = " · ".join(str(v) for v in (conversation.get("source"), conversation.get("channel"),
                                         conversation.get("status")) if v)
    lines = [f"AI agent conversation ({header})" if header else "AI agent conversation"]
    if conversation.get("subject"):
        lines.append(f"Subject: {conversation['subject']}")
    for message in conversation.get("messages") or []:
        when = str(message.get("sent_at") or "")[:16].replace("T", " ")
        lines.append(f"{when} {message.get('role') or 'unknown'}: {message.get('content') or ''}".strip())
    return lines
