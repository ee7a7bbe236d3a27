"""AgentClara emulator: contacts and conversations behind the documented REST API.

Base URL: the server root (`ServerThread(AgentClaraApp()).url`, no path
prefix), as `https://api.agentclara.app/contacts` is in production.

Built to the docs (seeds/agentclara-*.txt) and DESIGN.md's assumptions:
`{"success": true, "data": ...}` envelope, `limit` (default 25, max 100,
larger values clamped) + `offset` paging, 401/400/404/429 bodies
`{"success": false, "error": "..."}`, 1,000 requests/minute and 100 per 10 s
per key. No Retry-After unless asked (the docs do not promise one).

Records are generated from their index (sandbox/seed.py), so a million
contacts cost no memory; only mutations are stored. Tests and benchmarks
mutate the data while a client pages (`insert_contacts`, `delete_contacts`,
`update_contacts`, `add_message`, `on_request`), thread-safely.
"""

from __future__ import annotations

import bisect
import hashlib
import hmac
import itertools
import json
import threading
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime
from typing import Any

import httpx

from sandbox.common import (
    Clock,
    EnvelopedSourceApp,
    HttpError,
    KeyedRateLimits,
    iso_z,
    json_body,
    page_args,
)
from sandbox.http import Request, Response
from sandbox.seed import (
    CHANNELS,
    CONTACT_IDS,
    CONVERSATION_IDS,
    DEFAULT_SEED,
    INSERTED_BASE,
    AgentClaraSeed,
    PeoplePool,
    format_phone,
    render_name,
)

DEFAULT_KEY = "ac_sandbox_key"
STATUSES = ("open", "closed", "resolved")


class LiveOrder:
    """Display order of records over a generated base range, without materialising it.

    Order: `front` inserts, then base indices 0..n-1 minus `deleted`, then
    `end` inserts. Offsets map to indices in O(log n), so page 10,000 of a
    million contacts costs what page 1 costs.
    """

    def __init__(self, n: int) -> None:
        self.n = n
        self.front: list[int] = []
        self.end: list[int] = []
        self.deleted: list[int] = []  # sorted base indices

    def __len__(self) -> int:
        return len(self.front) + self.n - len(self.deleted) + len(self.end)

    def copy(self) -> "LiveOrder":
        twin = LiveOrder(self.n)
        twin.front, twin.end, twin.deleted = list(self.front), list(self.end), list(self.deleted)
        return twin

    def contains(self, index: int) -> bool:
        if 0 <= index < self.n:
            at = bisect.bisect_left(self.deleted, index)
            return at == len(self.deleted) or self.deleted[at] != index
        return index in self.front or index in self.end

    def remove(self, index: int) -> bool:
        if not self.contains(index):
            return False
        if 0 <= index < self.n:
            bisect.insort(self.deleted, index)
        elif index in self.front:
            self.front.remove(index)
        else:
            self.end.remove(index)
        return True

    def _kth_base(self, k: int) -> int:
        """The k-th (0-based) live base index: smallest x with k+1 live indices <= x."""
        lo, hi = k, min(self.n - 1, k + len(self.deleted))
        while lo < hi:
            mid = (lo + hi) // 2
            if mid + 1 - bisect.bisect_right(self.deleted, mid) >= k + 1:
                hi = mid
            else:
                lo = mid + 1
        return lo

    def iter_from(self, offset: int) -> Iterator[int]:
        if offset < len(self.front):
            yield from self.front[offset:]
            offset = 0
        else:
            offset -= len(self.front)
        live_base = self.n - len(self.deleted)
        if offset < live_base:
            x = self._kth_base(offset)
            d = bisect.bisect_left(self.deleted, x)
            while x < self.n:
                if d < len(self.deleted) and self.deleted[d] == x:
                    d += 1
                else:
                    yield x
                x += 1
            offset = 0
        else:
            offset -= live_base
        yield from self.end[offset:]

    def page(self, offset: int, limit: int) -> list[int]:
        return list(itertools.islice(self.iter_from(offset), limit))


class AgentClaraApp(EnvelopedSourceApp):
    """The AgentClara REST API over seeded contacts and conversations."""

    def __init__(
        self,
        *,
        api_keys: Iterable[str] | None = None,
        contacts: int = 500,
        conversations: int | None = None,
        seed: int = DEFAULT_SEED,
        per_minute: int | None = 1000,
        per_10s: int | None = 100,
        retry_after_header: bool = False,
        now: datetime | None = None,
    ) -> None:
        super().__init__()
        self.api_keys = set(api_keys) if api_keys is not None else {DEFAULT_KEY}
        self.retry_after_header = retry_after_header
        self.clock = Clock(now)
        self.pool = PeoplePool(seed)
        conversation_count = 2 * contacts if conversations is None else conversations
        if contacts == 0:
            conversation_count = 0
        self.data = AgentClaraSeed(
            self.pool, contacts=contacts, conversations=conversation_count, now=self.clock.start
        )
        self.limits = KeyedRateLimits([(per_10s, 10.0), (per_minute, 60.0)])
        self._lock = threading.RLock()
        self._contacts = LiveOrder(contacts)
        self._contact_fields: dict[int, dict[str, Any]] = {}  # overrides per index
        self._bad_contacts: list[tuple[int, Any]] = []  # (list position, item as served): inject_bad_contacts
        self._contact_created: dict[int, datetime] = {}  # inserted records
        self._next_inserted = INSERTED_BASE
        self._earliest = self.data.first_created
        self._mutations = 0
        self._conversations = LiveOrder(conversation_count)  # front = created via API
        self._conversation_new: dict[int, tuple[dict[str, Any], list[dict[str, Any]]]] = {}
        self._conversation_fields: dict[int, dict[str, Any]] = {}
        self._conversation_messages: dict[int, list[dict[str, Any]]] = {}
        self._next_conversation = INSERTED_BASE
        self._by_customer: dict[int, list[int]] | None = None
        self._list_counts = {"contacts": 0, "conversations": 0}
        self._list_offsets: dict[str, list[int]] = {"contacts": [], "conversations": []}
        self._hooks: dict[tuple[str, int], list[Callable[[], object]]] = {}
        self._webhooks_sent = 0  # numbers the event and appointment ids of webhook_event/appointment_event

        self.route("GET", "/contacts", self._list_contacts)
        self.route("GET", "/contacts/{contact_id}", self._get_contact)
        self.route("GET", "/conversations", self._list_conversations)
        self.route("POST", "/conversations", self._create_conversation)
        self.route("GET", "/conversations/{conversation_id}", self._get_conversation)
        self.route("PATCH", "/conversations/{conversation_id}", self._update_conversation)
        self.route("POST", "/conversations/{conversation_id}/messages", self._send_message)
        self.route("POST", "/conversations/{conversation_id}/close", self._close_conversation)

    # --- contacts ---------------------------------------------------------------------

    def _render_contact(self, index: int) -> dict[str, Any]:
        record = self.data.contact_at(index, created=self._contact_created.get(index))
        record.update(self._contact_fields.get(index, {}))
        return record

    def _list_contacts(self, request: Request) -> Response:
        limit, offset = page_args(request.query, default_limit=25, max_limit=100)
        with self._lock:
            page = self._contact_page(offset, limit)
            self._after_list("contacts", offset)
        return self._ok(page)

    def _contact_page(self, offset: int, limit: int) -> list[Any]:
        """The listing's items at [offset, offset + limit): contacts, with any injected bad items at their positions."""
        positions = [at for at, _ in self._bad_contacts]
        first_real = offset - bisect.bisect_left(positions, offset)
        real = iter(self._contacts.page(first_real, limit))
        bad = dict(self._bad_contacts)
        page: list[Any] = []
        for position in range(offset, offset + limit):
            if position in bad:
                page.append(bad[position])
                continue
            index = next(real, None)
            if index is None:
                break
            page.append(self._render_contact(index))
        return page

    def inject_bad_contacts(self, items: Iterable[Any], *, at: int = 0) -> None:
        """Serve `items` as they are in `GET /contacts`, from list position `at` on, before the contact there.

        The fault knob for broken records as platforms really serve them
        (issue 9): a JSON string among the objects, ids that are missing,
        null, lists or 300 characters long, lone surrogates, NUL, NaN (sent
        as the bare `NaN` token, as Python and some JavaScript backends
        write it), wrong types, deep nesting. The items are part of the
        listing: later contacts move down, paging stays consistent.
        """
        with self._lock:
            taken = {at for at, _ in self._bad_contacts}
            position = at
            for item in items:
                while position in taken:
                    position += 1
                self._bad_contacts.append((position, item))
                taken.add(position)
                position += 1
            self._bad_contacts.sort(key=lambda pair: pair[0])

    def _get_contact(self, request: Request) -> Response:
        index = CONTACT_IDS.decode(request.params["contact_id"])
        with self._lock:
            if index is None or not self._contacts.contains(index):
                raise HttpError(404, "Contact not found")
            return self._ok(self._render_contact(index))

    # --- conversations ----------------------------------------------------------------

    def _conversation(self, index: int) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        """(item, messages) with every stored change applied."""
        if index in self._conversation_new:
            item, messages = self._conversation_new[index]
            item, messages = dict(item), list(messages)
        else:
            item, messages = self.data.conversation_at(index)
        item.update(self._conversation_fields.get(index, {}))
        messages.extend(self._conversation_messages.get(index, ()))
        last = messages[-1] if messages else None
        item["last_message"] = last["content"] if last else None
        item["unread"] = bool(last and last["sender"] == "customer" and item["status"] == "open")
        return item, messages

    def _find_conversation(self, conversation_id: str) -> int | None:
        index = CONVERSATION_IDS.decode(conversation_id)
        return index if index is not None and self._conversations.contains(index) else None

    def _conversation_index(self, conversation_id: str) -> int:
        index = self._find_conversation(conversation_id)
        if index is None:
            raise HttpError(404, "Conversation not found")
        return index

    def _status_of(self, index: int) -> str:
        if index in self._conversation_fields and "status" in self._conversation_fields[index]:
            return self._conversation_fields[index]["status"]
        if index in self._conversation_new:
            return self._conversation_new[index][0]["status"]
        return self.data.conversation_header(index).status

    def _matches(self, index: int, channel: str | None, status: str | None, customer: int | None) -> bool:
        if index in self._conversation_new:
            item = self._conversation_new[index][0]
            found_channel, found_customer = item["channel"], CONTACT_IDS.decode(item["customer_id"])
        else:
            header = self.data.conversation_header(index)
            found_channel, found_customer = header.channel, header.customer
        return (
            (channel is None or found_channel == channel)
            and (customer is None or found_customer == customer)
            and (status is None or self._status_of(index) == status)
        )

    def _candidates(self, customer: int | None) -> Iterable[int]:
        """Conversation indices in list order, narrowed by customer when one is asked."""
        if customer is None:
            return self._conversations.iter_from(0)
        if self._by_customer is None:  # built once, on the first customer filter
            by_customer: dict[int, list[int]] = {}
            for j in range(self.data.conversations):
                by_customer.setdefault(self.data.conversation_header(j).customer, []).append(j)
            self._by_customer = by_customer
        return itertools.chain(self._conversations.front, self._by_customer.get(customer, ()))

    def _list_conversations(self, request: Request) -> Response:
        limit, offset = page_args(request.query, default_limit=25, max_limit=100)
        channel = request.query.get("channel") or None
        status = request.query.get("status") or None
        customer_id = request.query.get("customer_id") or None
        if channel is not None and channel not in CHANNELS:
            raise HttpError(400, f"Invalid channel: {channel}")
        if status is not None and status not in STATUSES:
            raise HttpError(400, f"Invalid status: {status}")
        with self._lock:
            if channel is None and status is None and customer_id is None:
                indices = self._conversations.page(offset, limit)
            else:
                customer = CONTACT_IDS.decode(customer_id) if customer_id else None
                if customer_id and customer is None:
                    indices = []
                else:
                    matching = (
                        j for j in self._candidates(customer)
                        if self._conversations.contains(j) and self._matches(j, channel, status, customer)
                    )
                    indices = list(itertools.islice(matching, offset, offset + limit))
            page = [self._conversation(j)[0] for j in indices]
            self._after_list("conversations", offset)
        return self._ok(page)

    def _get_conversation(self, request: Request) -> Response:
        with self._lock:
            item, messages = self._conversation(self._conversation_index(request.params["conversation_id"]))
        item["messages"] = messages
        return self._ok(item)

    def _create_conversation(self, request: Request) -> Response:
        body = json_body(request)
        channel = body.get("channel")
        if not channel:
            raise HttpError(400, "Missing required field: channel")
        if channel not in CHANNELS:
            raise HttpError(400, f"Invalid channel: {channel}")
        if channel in ("sms", "voice") and not body.get("customer_phone"):
            raise HttpError(400, "Missing required field: customer_phone")
        if channel == "email" and not body.get("customer_email"):
            raise HttpError(400, "Missing required field: customer_email")
        conversation_id = self.add_conversation(
            channel=channel,
            customer_name=body.get("customer_name"),
            customer_email=body.get("customer_email"),
            customer_phone=body.get("customer_phone"),
            message=body.get("message"),
        )
        with self._lock:
            item, messages = self._conversation(self._conversation_index(conversation_id))
        data = {k: item[k] for k in ("id", "customer_phone", "customer_name", "channel", "status")}
        data["message_id"] = messages[0]["id"] if messages else None
        return self._ok(data, 201)

    def _send_message(self, request: Request) -> Response:
        body = json_body(request)
        content = body.get("content")
        if not isinstance(content, str) or not content:
            raise HttpError(400, "Missing required field: content")
        sender = body.get("sender", "assistant")
        if sender not in ("customer", "assistant"):
            raise HttpError(400, "Invalid sender: must be customer or assistant")
        conversation_id = request.params["conversation_id"]
        with self._lock:
            self._conversation_index(conversation_id)
            message = self.add_message(conversation_id, content, sender=sender)
        return self._ok({
            "message_id": message["id"],
            "conversation_id": conversation_id,
            "content": content,
            "sender": sender,
            "timestamp": message["timestamp"],
        }, 201)

    def _update_conversation(self, request: Request) -> Response:
        body = json_body(request)
        status = body.get("status")
        if status is not None and status not in STATUSES:
            raise HttpError(400, "Invalid status: must be open, closed or resolved")
        tags = body.get("tags")
        if tags is not None and not (isinstance(tags, list) and all(isinstance(t, str) for t in tags)):
            raise HttpError(400, "Invalid tags: must be an array of strings")
        with self._lock:
            index = self._conversation_index(request.params["conversation_id"])
            item, _ = self._conversation(index)
            fields = self._conversation_fields.setdefault(index, {})
            if status is not None:
                fields["status"] = status
            if body.get("customer_name") is not None:
                fields["customer_name"] = body["customer_name"]
            if tags is not None:
                fields["tags"] = list(dict.fromkeys((item.get("tags") or []) + tags))
            item, _ = self._conversation(index)
        return self._ok({"id": item["id"], "status": item["status"], "tags": item.get("tags") or []})

    def _close_conversation(self, request: Request) -> Response:
        with self._lock:
            index = self._conversation_index(request.params["conversation_id"])
            closed_at = iso_z(self.clock.now())
            self._conversation_fields.setdefault(index, {}).update(status="closed", closed_at=closed_at)
            item, _ = self._conversation(index)
        return self._ok({"id": item["id"], "status": "closed", "closed_at": closed_at})

    # --- hooks ---------------------------------------------------------------------------

    def on_request(self, k: int, fn: Callable[[], object], *, stream: str = "contacts") -> None:
        """Run `fn` right after the k-th (1-based) list request of `stream` is built.

        The page already computed is served as it was; every later request
        sees the mutation. Requests refused by auth or rate limits don't count.
        `stream` is "contacts" or "conversations".
        """
        if stream not in self._list_counts:
            raise ValueError(f"unknown stream {stream!r}")
        with self._lock:
            self._hooks.setdefault((stream, k), []).append(fn)

    def list_requests(self, stream: str = "contacts") -> int:
        """How many list requests of `stream` were served so far."""
        with self._lock:
            return self._list_counts[stream]

    def list_offsets(self, stream: str = "contacts") -> list[int]:
        """The `offset` of every list request of `stream` served so far, in order."""
        with self._lock:
            return list(self._list_offsets[stream])

    def _after_list(self, stream: str, offset: int = 0) -> None:
        self._list_counts[stream] += 1
        self._list_offsets[stream].append(offset)
        for fn in self._hooks.pop((stream, self._list_counts[stream]), []):
            fn()

    # --- mutation API for tests and benchmarks ------------------------------------------

    @property
    def contact_count(self) -> int:
        with self._lock:
            return len(self._contacts)

    def contact_ids(self) -> Iterator[str]:
        """Ids of live contacts in list order (a snapshot taken on the call)."""
        with self._lock:
            order = self._contacts.copy()
        return (CONTACT_IDS.encode(i) for i in order.iter_from(0))

    def get_contact(self, contact_id: str) -> dict[str, Any] | None:
        """The contact as GET /contacts/{id} would return it, or None."""
        index = CONTACT_IDS.decode(contact_id)
        with self._lock:
            if index is None or not self._contacts.contains(index):
                return None
            return self._render_contact(index)

    def insert_contacts(self, n: int, at: str = "front", **fields: Any) -> list[str]:
        """Create `n` contacts. "front": backdated (imported) records, listed
        before every existing one, so every page shifts by n; "end": created
        now, listed last. `fields` override the generated ones."""
        if at not in ("front", "end"):
            raise ValueError("at must be 'front' or 'end'")
        with self._lock:
            indices = list(range(self._next_inserted, self._next_inserted + n))
            self._next_inserted += n
            for k, index in enumerate(indices):
                if at == "front":
                    created = self._earliest - self.data.contact_step * (n - k)
                else:
                    created = self.clock.now()
                self._contact_created[index] = created.replace(microsecond=0) if at == "front" else created
                if fields:
                    self._contact_fields[index] = dict(fields)
            if at == "front":
                self._earliest -= self.data.contact_step * n
                self._contacts.front[:0] = indices
            else:
                self._contacts.end.extend(indices)
            return [CONTACT_IDS.encode(i) for i in indices]

    def _pick(self, target: Iterable[str] | int | float, kind: str) -> list[int]:
        """Indices named by ids, or `n` (int) / a fraction (float) of live contacts,
        drawn deterministically from the seed and the number of mutations so far."""
        if isinstance(target, (int, float)) and not isinstance(target, bool):
            total = len(self._contacts)
            count = int(target) if isinstance(target, int) else round(total * float(target))
            self._mutations += 1
            rng = self.pool.rng(kind, self._mutations)
            offsets = sorted(rng.sample(range(total), min(count, total)))
            order = self._contacts
            return [next(order.iter_from(offset)) for offset in offsets]
        indices = []
        for contact_id in target:
            index = CONTACT_IDS.decode(contact_id)
            if index is None or not self._contacts.contains(index):
                raise KeyError(contact_id)
            indices.append(index)
        return indices

    def delete_contacts(self, target: Iterable[str] | int) -> list[str]:
        """Delete contacts by id, or `n` live ones at random; returns deleted ids."""
        with self._lock:
            indices = self._pick(target, "ac:delete")
            for index in indices:
                self._contacts.remove(index)
            return [CONTACT_IDS.encode(i) for i in indices]

    def update_contacts(
        self, target: Iterable[str] | int | float, *, field: str | None = None
    ) -> list[str]:
        """Change one field of some contacts and bump their updated_at to now.

        `target`: ids, a count, or a fraction of live contacts. `field`:
        "name" (tidied), "phone" (reformatted), "tags" (adds "returning") or
        "email" (a new address); by default one of name/phone/tags per record.
        """
        with self._lock:
            indices = self._pick(target, "ac:update")
            rng = self.pool.rng("ac:update-field", self._mutations)
            for index in indices:
                current = self._render_contact(index)
                person = self.pool.person(self.data.person_index(index))
                change = field or rng.choice(("name", "phone", "tags"))
                fields = self._contact_fields.setdefault(index, {})
                if change == "name":
                    fields["name"] = person.full_name if current.get("name") != person.full_name else render_name(person, rng)
                elif change == "phone":
                    fields["phone"] = format_phone(person, rng.randrange(8)) if current.get("phone") != person.phone else person.phone
                elif change == "tags":
                    fields["tags"] = list(dict.fromkeys((current.get("tags") or []) + ["returning"]))
                    if fields["tags"] == current.get("tags"):
                        fields["tags"] = fields["tags"] + ["updated"]
                elif change == "email":
                    fields["email"] = f"{person.email_local}.new{self._mutations}@example.net"
                else:
                    raise ValueError(f"unknown field {change!r}")
                fields["updated_at"] = iso_z(self.clock.now())
            return [CONTACT_IDS.encode(i) for i in indices]

    def add_conversation(
        self,
        *,
        channel: str = "sms",
        customer_id: str | None = None,
        customer_name: str | None = None,
        customer_email: str | None = None,
        customer_phone: str | None = None,
        message: str | None = None,
        sender: str = "assistant",
    ) -> str:
        """Start a conversation (listed first: it is the newest).

        With `customer_id` it belongs to that contact; otherwise, as the
        platform does for a new number or address, a contact is created.
        """
        with self._lock:
            if customer_id is None:
                fields = {"name": customer_name, "email": customer_email, "phone": customer_phone, "tags": []}
                customer_id = self.insert_contacts(1, at="end", **fields)[0]
            else:
                contact = self.get_contact(customer_id)
                if contact is None:
                    raise KeyError(customer_id)
                customer_name = customer_name or contact.get("name")
                customer_email = customer_email or contact.get("email")
                customer_phone = customer_phone or contact.get("phone")
            index = self._next_conversation
            self._next_conversation += 1
            started = self.clock.now()
            item = {
                "id": CONVERSATION_IDS.encode(index),
                "customer_id": customer_id,
                "customer_name": customer_name,
                "customer_email": customer_email,
                "customer_phone": customer_phone,
                "channel": channel,
                "subject": None,
                "timestamp": iso_z(started),
                "status": "open",
                "tags": [],
            }
            self._conversation_new[index] = (item, [])
            self._conversations.front.insert(0, index)
            if message:
                self.add_message(item["id"], message, sender=sender)
            return item["id"]

    def add_message(self, conversation_id: str, content: str = "Hi, one more question", *, sender: str = "customer") -> dict[str, Any]:
        """Append a message ("customer", "assistant" or "agent") to a conversation."""
        with self._lock:
            index = self._find_conversation(conversation_id)
            if index is None:
                raise KeyError(conversation_id)
            _, messages = self._conversation(index)
            message = {
                "id": f"msg_{conversation_id[5:]}_{len(messages) + 1:02d}",
                "sender": sender,
                "content": content,
                "timestamp": iso_z(self.clock.now()),
            }
            self._conversation_messages.setdefault(index, []).append(message)
            return dict(message)

    def conversation(self, conversation_id: str) -> dict[str, Any] | None:
        """The conversation as GET /conversations/{id} would return it (with messages), or None."""
        with self._lock:
            index = self._find_conversation(conversation_id)
            if index is None:
                return None
            item, messages = self._conversation(index)
        return {**item, "messages": messages}

    def conversation_ids(self) -> Iterator[str]:
        """Ids of conversations in list order (newest first), a snapshot."""
        with self._lock:
            order = self._conversations.copy()
        return (CONVERSATION_IDS.encode(j) for j in order.iter_from(0))

    # --- webhooks: the emulator as the sender (issue 13) ----------------------------------

    def webhook_event(self, event: str, conversation_id: str, *, with_messages: bool = True,
                      event_id: str | None = None) -> dict[str, Any]:
        """A webhook event as AgentClara is assumed to send it (DESIGN.md): `data` is the
        conversation object, with its `messages` unless `with_messages` is False (an event
        that only names the conversation)."""
        conversation = self.conversation(conversation_id)
        if conversation is None:
            raise KeyError(conversation_id)
        if not with_messages:
            conversation = {k: conversation[k] for k in ("id", "customer_id", "status") if k in conversation}
        return {"id": event_id or self._next_event_id(), "event": event, "created_at": iso_z(self.clock.now()),
                "data": conversation}

    def appointment_event(self, conversation_id: str, *, title: str = "Consultation",
                          start: str = "2026-12-04T15:00:00Z", end: str = "2026-12-04T15:30:00Z",
                          event_id: str | None = None) -> dict[str, Any]:
        """An `appointment.booked` event for the conversation's customer (the assumed shape)."""
        conversation = self.conversation(conversation_id)
        if conversation is None:
            raise KeyError(conversation_id)
        with self._lock:
            self._webhooks_sent += 1
            appointment_id = f"apt_{self._webhooks_sent:06d}"
        data = {"id": appointment_id, "conversation_id": conversation_id,
                **{k: conversation.get(k) for k in ("customer_id", "customer_name", "customer_email", "customer_phone")},
                "title": title, "start_time": start, "end_time": end, "timezone": "UTC"}
        return {"id": event_id or self._next_event_id(), "event": "appointment.booked",
                "created_at": iso_z(self.clock.now()), "data": data}

    def _next_event_id(self) -> str:
        with self._lock:
            self._webhooks_sent += 1
            return f"evt_{self._webhooks_sent:06d}"

    @staticmethod
    def emit_webhook(url: str, event: dict[str, Any] | bytes, secret: str | None = None,
                     *, signature: str | None = None, timeout_s: float = 10.0) -> tuple[int, Any]:
        """POST one event to `url` over real HTTP, signed as AgentClara is assumed to sign
        (`X-AgentClara-Signature: sha256=<hex HMAC-SHA256 of the raw body>`) when `secret`
        is given; `signature` overrides the header (a forgery). Returns (status, JSON body).

        The emulator signs on its own, as the vendor would: it does not borrow the
        receiver's code, so a test catches a receiver that disagrees with the assumption.
        """
        body = event if isinstance(event, bytes) else json.dumps(event).encode("utf-8")
        headers = {"Content-Type": "application/json"}
        if secret is not None:
            headers["X-AgentClara-Signature"] = "sha256=" + hmac.new(
                secret.encode("utf-8"), body, hashlib.sha256).hexdigest()
        if signature is not None:
            headers["X-AgentClara-Signature"] = signature
        response = httpx.post(url, content=body, headers=headers, timeout=timeout_s)
        try:
            return response.status_code, response.json()
        except ValueError:
            return response.status_code, response.text
