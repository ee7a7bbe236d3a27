"""What a valid AgentClara webhook event is: the assumed payload shapes, in one place.

The docs name the events but not their bodies. DESIGN.md assumes
`{"id": "evt_...", "event": NAME, "created_at": ISO-8601, "data": {...}}`,
where `data` is the conversation object of the Conversations docs (with
`messages` for `message.received`), and for `appointment.booked`
`{"id": "apt_...", "conversation_id", "customer_id", "customer_name",
"customer_email", "customer_phone", "title", "start_time", "end_time",
"timezone"}`. When a real delivery disagrees, correct it here.

Validation is only what the sync relies on (an event id to be idempotent
by, a known shape of `data` with an id); every other field is kept as it
came. Reasons never quote the body: it carries personal data.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from typing import Any

from schemas.errors import InvalidRecord
from schemas.fields import parse_timestamp
from schemas.raw import is_storable_key, storable

SOURCE = "agentclara"

# -- Assumptions where the docs are silent (DESIGN.md). Correct them here. --------------------
CONVERSATION_EVENTS = frozenset({"conversation.created", "conversation.updated", "message.received",
                                 "conversation.closed"})
APPOINTMENT_BOOKED = "appointment.booked"
KNOWN_EVENTS = CONVERSATION_EVENTS | {APPOINTMENT_BOOKED}
# A conversation object "with its content" carries its thread; one without it is fetched.
MESSAGES_FIELD = "messages"
APPOINTMENT_CONVERSATION_FIELD = "conversation_id"
# ----------------------------------------------------------------------------------------------

MAX_ID_LENGTH = 255
EVENT_NAME = re.compile(r"[A-Za-z0-9_.\-]{1,64}")


class InvalidEvent(ValueError):
    """The body is not a valid event; `reason` says why (answered as 400), without quoting the body."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class Event:
    """A valid event: its id and type, the body as stored, and the raw body's sha256."""

    event_id: str
    event_type: str
    payload: dict[str, Any]
    body_sha256: str

    @property
    def known(self) -> bool:
        """Is it an event the sync acts on? (Others are kept, marked ignored.)"""
        return self.event_type in KNOWN_EVENTS


def parse_event(body: bytes) -> Event:
    """The event in `body`, or InvalidEvent with the reason."""
    payload = _json_object(body)
    event_id = _identifier(payload.get("id"), "id")
    event_type = payload.get("event")
    if not isinstance(event_type, str) or not EVENT_NAME.fullmatch(event_type):
        raise InvalidEvent("`event` must be the event's name: at most 64 letters, digits, '.', '_' or '-'")
    created_at = payload.get("created_at")
    if created_at is not None:
        try:
            parse_timestamp(created_at)
        except InvalidRecord:
            raise InvalidEvent("`created_at` is not an ISO-8601 time") from None
    data = payload.get("data")
    if not isinstance(data, dict):
        raise InvalidEvent("`data` must be an object")
    if event_type in KNOWN_EVENTS:
        _identifier(data.get("id"), "data.id")
    if event_type == APPOINTMENT_BOOKED and data.get(APPOINTMENT_CONVERSATION_FIELD) is not None:
        _identifier(data.get(APPOINTMENT_CONVERSATION_FIELD), f"data.{APPOINTMENT_CONVERSATION_FIELD}")
    kept = storable(payload).value  # what the store can hold: no lone surrogate, no NUL
    return Event(event_id, event_type, kept, hashlib.sha256(body).hexdigest())


def _json_object(body: bytes) -> dict[str, Any]:
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidEvent("the body is not UTF-8") from None
    try:
        payload = json.loads(text, parse_constant=_refuse_constant)
    except (ValueError, RecursionError):
        raise InvalidEvent("the body is not valid JSON") from None
    if not isinstance(payload, dict):
        raise InvalidEvent("the body must be a JSON object")
    return payload


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _identifier(value: Any, field: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise InvalidEvent(f"`{field}` must be a non-empty string")
    if len(value) > MAX_ID_LENGTH or not is_storable_key(value):
        raise InvalidEvent(f"`{field}` must be at most {MAX_ID_LENGTH} printable characters")
    return value


def conversation_id(event_type: str, data: dict[str, Any]) -> str | None:
    """The conversation an event is about: its `data.id`, or a booking's `conversation_id`."""
    if event_type in CONVERSATION_EVENTS:
        return str(data["id"])
    if event_type == APPOINTMENT_BOOKED and data.get(APPOINTMENT_CONVERSATION_FIELD):
        return str(data[APPOINTMENT_CONVERSATION_FIELD])
    return None


def carries_content(event_type: str, data: dict[str, Any]) -> bool:
    """Does the event carry the conversation itself (with its thread), or only name it?"""
    return event_type in CONVERSATION_EVENTS and isinstance(data.get(MESSAGES_FIELD), list)
