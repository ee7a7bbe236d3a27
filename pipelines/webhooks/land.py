"""Land what a batch of inbox events carries as raw AgentClara records (a plain step, no Dagster).

- A conversation event's `data` is the conversation object: kept as a raw
  record of the `conversations` stream, as the daily read keeps a listed
  item with its detail. Its `messages` are merged by id with the thread
  already kept, so an event that carries only the newest message never
  shortens the transcript. An event that names a conversation without its
  thread (no `messages`) gets it from the source's detail read.
- A customer the store has never seen is landed from the conversation's
  `customer_*` fields as a raw `contacts` record, so the person and their
  CRM contact need not wait for the night; the daily contacts listing then
  replaces it with the full record (never the other way round).
- A booking (`appointment.booked`) goes through the appointment steps
  (pipelines/steps/appointments.py): `land_appointments` keeps it, one per
  appointment id, and `normalize_appointments` makes it a canonical
  appointment and its customer a contact, so that the persons rebuild that
  follows gives someone the CRM has never seen a person, pushed (created)
  before their meeting/Event. Its conversation (when named) is fetched and
  landed too.

Events of one batch are applied in seq order, so the later one wins.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import sqlalchemy as sa

from connectors.errors import NotFound
from pipelines.state import StateStore
from pipelines.state.store import CONVERSATION_STREAM
from pipelines.state.tables import records
from pipelines.webhooks import events as ev
from pipelines.steps.appointments import land_appointments, normalize_appointments
from pipelines.webhooks.inbox import DONE, InboxEvent
from schemas.raw import raw_key

CONVERSATIONS = "conversations"  # AgentClara's raw streams (pipelines/sources.py)
CONTACTS = "contacts"

Fetch = Callable[[str], dict[str, Any]]


@dataclass
class Landed:
    """What landing a batch did, and each event's outcome (status, detail) by seq."""

    events: int = 0
    conversations: dict[str, dict[str, Any]] = field(default_factory=dict)  # id -> payload landed
    fetched: int = 0
    gone: int = 0
    new_contacts: int = 0
    appointments: list[str] = field(default_factory=list)  # appointment ids (raw keys) of the batch's bookings
    appointments_normalized: int = 0
    appointments_quarantined: int = 0
    customers_quarantined: int = 0  # a booking's customer without a usable email or phone
    new_or_changed: int = 0
    outcomes: dict[int, tuple[str, str | None]] = field(default_factory=dict)

    @property
    def anything(self) -> bool:
        """Whether the batch left anything for the persons rebuild and the pushes."""
        return bool(self.conversations or self.new_contacts or self.appointments)

    def as_metadata(self) -> dict[str, Any]:
        return {"events": self.events, "conversations landed": len(self.conversations),
                "details fetched": self.fetched, "conversations gone at the source": self.gone,
                "new customers landed": self.new_contacts, "appointments landed": len(self.appointments),
                "appointments normalized": self.appointments_normalized,
                "appointments quarantined": self.appointments_quarantined,
                "booking customers quarantined": self.customers_quarantined,
                "raw records new or changed": self.new_or_changed}


def land_events(store: StateStore, batch: list[InboxEvent], fetch: Fetch | None, *,
                region: str = "US", run_id: str | None = None) -> Landed:
    """Land the batch's conversations, new customers and bookings; returns what was done per event.

    `fetch` is the source's detail read (None when AgentClara is off: an
    event without the thread is then landed as it came, over what is kept).
    A NotFound on it (deleted since) lands nothing for that event; any other
    connector error is raised, so the run fails and the events stay pending.
    Bookings are landed and normalized here (`region` for their phones); the
    conversations and contacts are normalized by the caller.
    """
    landed = Landed(events=len(batch))
    appointments: dict[str, dict[str, Any]] = {}
    for event in batch:
        data = event.payload.get("data") or {}
        detail = None
        if event.event_type == ev.APPOINTMENT_BOOKED:
            appointments[raw_key(data, "id")] = data  # the later booking of an appointment wins
        conversation_id = ev.conversation_id(event.event_type, data)
        if conversation_id is None:
            landed.outcomes.setdefault(event.seq, (DONE, None))
            continue
        known = landed.conversations.get(conversation_id) or _kept(store, conversation_id)
        try:
            payload = _conversation(event, data, known, fetch, landed)
            if payload is not None:
                landed.conversations[conversation_id] = payload
        except NotFound:
            landed.gone += 1
            detail = "the conversation is gone at the source (404): " + (
                "the appointment is landed, not the conversation" if event.event_type == ev.APPOINTMENT_BOOKED
                else "nothing landed")
        landed.outcomes.setdefault(event.seq, (DONE, detail))
    landed.new_or_changed += store.save_raw("agentclara", CONVERSATIONS, landed.conversations.items(), run_id=run_id)
    _land_bookings(store, appointments, landed, region=region, run_id=run_id)
    customers = _new_customers(store, landed.conversations.values())
    landed.new_contacts = store.save_raw("agentclara", CONTACTS, customers.items(), run_id=run_id)
    landed.new_or_changed += landed.new_contacts
    return landed


def _land_bookings(store: StateStore, bookings: dict[str, dict[str, Any]], landed: Landed, *, region: str,
                   run_id: str | None) -> None:
    """Land and normalize the batch's bookings (appointment id -> payload) with the appointment steps.

    Normalized now, not by the caller's `normalize_source`: the appointment
    streams are not a daily source stream, and the booking's customer must
    be a contact record before the persons rebuild so that it is pushed
    (created in the CRM) before its meeting/Event.
    """
    if not bookings:
        return
    landed.new_or_changed += land_appointments(store, list(bookings.values()), run_id=run_id)
    customers, appointments = normalize_appointments(store, region=region, run_id=run_id)
    landed.appointments = list(bookings)
    landed.appointments_normalized = appointments.normalized
    landed.appointments_quarantined = appointments.quarantined
    landed.customers_quarantined = customers.quarantined


def _conversation(event: InboxEvent, data: dict[str, Any], known: dict[str, Any] | None, fetch: Fetch | None,
                  landed: Landed) -> dict[str, Any] | None:
    """The conversation payload this event leaves: carried (thread merged), fetched, or laid over what
    is kept; None when there is nothing to land (a booking's conversation, unknown and not fetchable)."""
    if ev.carries_content(event.event_type, data):
        merged = {**(known or {}), **data}
        merged[ev.MESSAGES_FIELD] = merge_messages((known or {}).get(ev.MESSAGES_FIELD), data[ev.MESSAGES_FIELD])
        return merged
    conversation_id = ev.conversation_id(event.event_type, data)
    if fetch is not None:
        detail = fetch(str(conversation_id))
        landed.fetched += 1
        listed = data if event.event_type in ev.CONVERSATION_EVENTS else {}
        return {**(known or {}), **listed, **detail}
    if event.event_type in ev.CONVERSATION_EVENTS:
        return {**(known or {}), **data}
    return None  # a booking without the source: its conversation comes with the daily sync


def merge_messages(kept: Any, carried: list[Any]) -> list[Any]:
    """The kept thread with the carried messages over it, by message id (new ones appended in order).

    A message without an id cannot be matched: it is appended unless an
    equal one is already there.
    """
    merged: list[Any] = list(kept) if isinstance(kept, list) else []
    at = {m.get("id"): k for k, m in enumerate(merged) if isinstance(m, dict) and m.get("id") is not None}
    for message in carried:
        key = message.get("id") if isinstance(message, dict) else None
        if key is not None and key in at:
            merged[at[key]] = message
        elif message not in merged:
            at[key] = len(merged)
            merged.append(message)
    return merged


def _kept(store: StateStore, conversation_id: str) -> dict[str, Any] | None:
    kept = store.raw_payloads("agentclara", CONVERSATIONS, [conversation_id]).get(conversation_id)
    return kept if isinstance(kept, dict) else None


def _new_customers(store: StateStore, conversations: Any) -> dict[str, dict[str, Any]]:
    """Raw contacts for the customers of these conversations that the store has no contact record of."""
    wanted: dict[str, dict[str, Any]] = {}
    for conversation in conversations:
        customer = conversation.get("customer_id")
        if isinstance(customer, str) and customer.strip():
            wanted[customer] = {"id": customer, "name": conversation.get("customer_name"),
                                "email": conversation.get("customer_email"),
                                "phone": conversation.get("customer_phone")}
    kept = store.raw_payloads("agentclara", CONTACTS, list(wanted))
    return {key: contact for key, contact in wanted.items() if key not in kept}


def conversation_days(store: StateStore, conversation_ids: list[str]) -> tuple[str, str] | None:
    """(first, last) day of these conversations as normalized (`records.event_day`), or None."""
    if not conversation_ids:
        return None
    c = records.c
    query = sa.select(sa.func.min(c.event_day), sa.func.max(c.event_day)).where(
        c.source == "agentclara", c.stream == CONVERSATION_STREAM, c.record_id.in_(conversation_ids))
    with store.engine.connect() as conn:
        first, last = conn.execute(query).one()
    return (first, last) if first else None
