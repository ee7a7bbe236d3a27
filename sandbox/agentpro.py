"""AgentPro emulator: chatbots and their web/WhatsApp conversations (seeds/agentpro-api.txt).

Base URL: the server root (`ServerThread(AgentProApp()).url`); routes carry
the documented `/api/v1/...` paths, as `https://agentpro.chat/api/v1/chatbots`.

Documented: Bearer key, `{"success": true, "data": ...}` envelope, rate
limits by plan (Free 100/min and 10/s, Pro 1,000/min and 50/s). Where the
docs are silent (DESIGN.md): `GET /api/v1/conversations?chatbotId=&limit=&offset=`
(chatbotId required, limit default 20, above 100 clamped), newest first by
createdAt; visitor fields are often null; errors `{"success": false, "error": "..."}`.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

from sandbox.common import (
    Clock,
    EnvelopedSourceApp,
    HttpError,
    KeyedRateLimits,
    iso_ms,
    json_body,
    page_args,
)
from sandbox.http import Request, Response
from sandbox.seed import DEFAULT_SEED, PeoplePool, Person, render_email, render_name, render_phone

DEFAULT_KEY = "ap_sandbox_key"
TIERS: dict[str, tuple[int | None, int | None]] = {  # (per minute, per second)
    "free": (100, 10),
    "pro": (1000, 50),
    "enterprise": (None, None),
}
CHATBOT_NAMES = ("Website Assistant", "Order Helper", "WhatsApp Concierge", "Booking Bot", "FAQ Bot")
_EXCHANGES = (
    ("Hello, how can I track my order?", "I'd be happy to help you track your order! Please provide your order number."),
    ("Do you have this in size M?", "Yes, size M is in stock and ships within 2 days."),
    ("What's your return policy?", "You can return any item within 30 days for a full refund."),
    ("Can someone call me back?", "Sure! Leave your number and our team will call you today."),
    ("hi", "Hi there! What can I do for you today?"),
    ("Is there a discount for teams?", "Yes, teams of 5 or more get 15% off. Want a quote by email?"),
)
_ID_CHARS = "abcdefghijklmnopqrstuvwxyz0123456789"


def short_id(prefix: str, rng: random.Random, length: int = 12) -> str:
    """Ids in AgentPro's style: 'conv-abc123...', 'msg-xyz789...'."""
    return prefix + "".join(rng.choice(_ID_CHARS) for _ in range(length))


@dataclass
class _Conversation:
    id: str
    chatbot_id: str
    session_id: str
    visitor: dict[str, Any]  # visitorName/visitorEmail/visitorPhone (+ odd extras)
    channel: str
    created: datetime
    updated: datetime
    messages: list[dict[str, Any]] = field(default_factory=list)

    def item(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "chatbotId": self.chatbot_id,
            "sessionId": self.session_id,
            **self.visitor,
            "channel": self.channel,
            "createdAt": iso_ms(self.created),
            "updatedAt": iso_ms(self.updated),
            "messageCount": len(self.messages),
        }


def visitor_fields(person: Person | None, channel: str, rng: random.Random) -> dict[str, Any]:
    """What a chat widget learned about a visitor: often nothing at all."""
    if person is None:
        return {"visitorName": None, "visitorEmail": None, "visitorPhone": None}
    if channel == "whatsapp":
        return {
            "visitorName": render_name(person, rng) if rng.random() < 0.8 else None,
            "visitorEmail": person.email if rng.random() < 0.15 else None,
            "visitorPhone": person.phone if rng.random() < 0.7 else person.phone.lstrip("+"),
        }
    fields = {
        "visitorName": render_name(person, rng) if rng.random() < 0.75 else None,
        "visitorEmail": render_email(person, rng, invalid_rate=0.04) if rng.random() < 0.8 else None,
        "visitorPhone": render_phone(person, rng) if rng.random() < 0.25 else None,
    }
    if rng.random() < 0.12:
        fields["visitorMetadata"] = {"country": person.country, "referrer": "https://www.google.com/"}
    return fields


class AgentProApp(EnvelopedSourceApp):
    """The AgentPro REST API over seeded chatbots and conversations."""

    invalid_key_message = "Invalid or missing API key"

    def __init__(
        self,
        *,
        api_keys: Iterable[str] | None = None,
        tier: str = "pro",
        chatbots: int = 3,
        conversations: int = 300,
        seed: int = DEFAULT_SEED,
        per_minute: int | None | Literal["tier"] = "tier",
        per_second: int | None | Literal["tier"] = "tier",
        retry_after_header: bool = False,
        now: datetime | None = None,
    ) -> None:
        super().__init__()
        if tier not in TIERS:
            raise ValueError(f"tier must be one of {sorted(TIERS)}")
        self.api_keys = set(api_keys) if api_keys is not None else {DEFAULT_KEY}
        self.tier = tier
        self.retry_after_header = retry_after_header
        tier_minute, tier_second = TIERS[tier]
        self.limits = KeyedRateLimits([
            (tier_second if per_second == "tier" else per_second, 1.0),
            (tier_minute if per_minute == "tier" else per_minute, 60.0),
        ])
        self.clock = Clock(now)
        self.pool = PeoplePool(seed)
        self._rng = self.pool.rng("agentpro:live", 0)
        self._lock = threading.RLock()
        self.chatbots: list[dict[str, Any]] = []
        self._conversations: dict[str, _Conversation] = {}
        self._list_count = 0
        self._hooks: dict[int, list[Callable[[], object]]] = {}
        self._seed_data(chatbots, conversations)

        self.route("GET", "/api/v1/chatbots", self._list_chatbots)
        self.route("GET", "/api/v1/conversations", self._list_conversations)
        self.route("GET", "/api/v1/conversations/{conversation_id}", self._get_conversation)
        self.route("POST", "/api/v1/chat", self._chat)

    # --- seeding ------------------------------------------------------------------------

    def _seed_data(self, chatbots: int, conversations: int) -> None:
        rng = self.pool.rng("agentpro:chatbots", 0)
        start = self.clock.start
        for k in range(chatbots):
            self.chatbots.append({
                "id": short_id("bot-", rng),
                "name": CHATBOT_NAMES[k % len(CHATBOT_NAMES)] + ("" if k < len(CHATBOT_NAMES) else f" {k}"),
                "createdAt": iso_ms(start - timedelta(days=300 - 20 * k, seconds=rng.randrange(86400))),
            })
        if not self.chatbots:
            return
        returning = max(conversations // 3, 1)  # visitors come back: fewer people than chats
        for j in range(conversations):
            rng = self.pool.rng("agentpro:conversation", j)
            bot = self.chatbots[0] if rng.random() < 0.5 else rng.choice(self.chatbots)
            channel = "whatsapp" if rng.random() < 0.15 else "web"
            if j < 2:
                # The same visitor twice, with the email typed in different case.
                person = self.pool.person(self.pool.platform_person("agentpro", 0, share=0.0))
                visitor = {"visitorName": person.full_name, "visitorPhone": None,
                           "visitorEmail": person.email if j == 0 else person.email.upper()}
                channel = "web"
            elif rng.random() < 0.45:
                visitor = visitor_fields(None, channel, rng)
            else:
                person_index = self.pool.platform_person("agentpro", rng.randrange(returning))
                visitor = visitor_fields(self.pool.person(person_index), channel, rng)
            started = start - timedelta(seconds=rng.randrange(3600, 90 * 86400), milliseconds=rng.randrange(1000))
            conversation = _Conversation(
                short_id("conv-", rng), bot["id"], short_id("sess-", rng, 10), visitor, channel, started, started
            )
            moment = started
            for question, answer in rng.sample(_EXCHANGES, rng.randint(1, 4)):
                for role, content in (("user", question), ("assistant", answer)):
                    conversation.messages.append(
                        {"id": short_id("msg-", rng), "role": role, "content": content, "createdAt": iso_ms(moment)}
                    )
                    moment += timedelta(seconds=rng.randint(2, 240), milliseconds=rng.randrange(1000))
            if rng.random() < 0.2:
                conversation.messages.pop()  # the visitor left before the answer
            conversation.updated = moment
            self._conversations[conversation.id] = conversation

    # --- routes ------------------------------------------------------------------------------

    def _list_chatbots(self, request: Request) -> Response:
        with self._lock:
            return self._ok([dict(bot) for bot in self.chatbots])

    def _ordered(self, chatbot_id: str) -> list[_Conversation]:
        found = [c for c in self._conversations.values() if c.chatbot_id == chatbot_id]
        return sorted(found, key=lambda c: (c.created, c.id), reverse=True)

    def _list_conversations(self, request: Request) -> Response:
        chatbot_id = request.query.get("chatbotId")
        if not chatbot_id:
            raise HttpError(400, "chatbotId is required")
        limit, offset = page_args(request.query, default_limit=20, max_limit=100)
        with self._lock:
            if not any(bot["id"] == chatbot_id for bot in self.chatbots):
                raise HttpError(404, "Chatbot not found")
            page = [c.item() for c in self._ordered(chatbot_id)[offset: offset + limit]]
            self._list_count += 1
            for fn in self._hooks.pop(self._list_count, []):
                fn()
        return self._ok(page)

    def _get_conversation(self, request: Request) -> Response:
        with self._lock:
            conversation = self._conversations.get(request.params["conversation_id"])
            if conversation is None:
                raise HttpError(404, "Conversation not found")
            body = conversation.item()
            body["messages"] = [dict(m) for m in conversation.messages]
        return self._ok(body)

    def _chat(self, request: Request) -> Response:
        body = json_body(request)
        chatbot_id, message = body.get("chatbotId"), body.get("message")
        if not chatbot_id or not isinstance(message, str) or not message.strip():
            raise HttpError(400, "chatbotId and message are required")
        with self._lock:
            if not any(bot["id"] == chatbot_id for bot in self.chatbots):
                raise HttpError(404, "Chatbot not found")
            session_id = body.get("sessionId") or short_id("sess-", self._rng, 10)
            conversation = next(
                (c for c in self._conversations.values() if c.chatbot_id == chatbot_id and c.session_id == session_id),
                None,
            )
            if conversation is None:
                conversation_id = self.add_conversation(chatbot_id, session_id=session_id, messages=0)
                conversation = self._conversations[conversation_id]
            self.add_message(conversation.id, message, role="user")
            reply = self.add_message(
                conversation.id, "Thanks for reaching out! Let me look into that for you.", role="assistant"
            )
        return self._ok({
            "response": reply["content"],
            "conversationId": conversation.id,
            "messageId": reply["id"],
            "tokensUsed": 12 + len(message.split()) * 2,
        })

    # --- mutation API for tests and benchmarks ------------------------------------------------

    def add_conversation(
        self,
        chatbot_id: str,
        *,
        session_id: str | None = None,
        visitor_name: str | None = None,
        visitor_email: str | None = None,
        visitor_phone: str | None = None,
        channel: str = "web",
        messages: int = 2,
    ) -> str:
        """Start a conversation now (first in lists); `messages` alternating turns."""
        with self._lock:
            now = self.clock.now()
            conversation = _Conversation(
                short_id("conv-", self._rng), chatbot_id, session_id or short_id("sess-", self._rng, 10),
                {"visitorName": visitor_name, "visitorEmail": visitor_email, "visitorPhone": visitor_phone},
                channel, now, now,
            )
            self._conversations[conversation.id] = conversation
            for k in range(messages):
                question, answer = _EXCHANGES[k // 2 % len(_EXCHANGES)]
                role = "user" if k % 2 == 0 else "assistant"
                self.add_message(conversation.id, question if role == "user" else answer, role=role)
            return conversation.id

    def add_message(self, conversation_id: str, content: str, *, role: str = "user") -> dict[str, Any]:
        """Append a message; bumps updatedAt and messageCount."""
        with self._lock:
            conversation = self._conversations.get(conversation_id)
            if conversation is None:
                raise KeyError(conversation_id)
            now = self.clock.now()
            message = {"id": short_id("msg-", self._rng), "role": role, "content": content, "createdAt": iso_ms(now)}
            conversation.messages.append(message)
            conversation.updated = now
            return dict(message)

    def on_request(self, k: int, fn: Callable[[], object]) -> None:
        """Run `fn` right after the k-th (1-based) conversations list request is built."""
        with self._lock:
            self._hooks.setdefault(k, []).append(fn)

    def conversation_ids(self, chatbot_id: str) -> Iterator[str]:
        """Conversation ids of a chatbot in list order (newest first), a snapshot."""
        with self._lock:
            return iter([c.id for c in self._ordered(chatbot_id)])
